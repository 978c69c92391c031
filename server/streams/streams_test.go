package streams

import "testing"

func TestSignMatchesAnyCable(t *testing.T) {
	const want = "InNpZ25lZC8xIg==--be5e598680e09acb9807e0649e226e9984bf46071b5c0f263da561ff8beb1e67"
	if got := Sign("signed/1", "s3cr3t"); got != want {
		t.Errorf("got %s", got)
	}
	if name, err := Verify(want, "s3cr3t"); err != nil || name != "signed/1" {
		t.Errorf("verify: %q %v", name, err)
	}
}

func TestVerifyRejects(t *testing.T) {
	good := Sign("room", "k")
	for _, s := range []string{
		good[:len(good)-1] + "0",
		Sign("room", "other"),
		"garbage",
		good + "--x",
		"NDI=--" + digest("NDI=", "k"), // payload 42 is not a JSON string
		"!!!--" + digest("!!!", "k"),   // not base64
	} {
		if _, err := Verify(s, "k"); err == nil {
			t.Errorf("%q verified", s)
		}
	}
}

func TestControllerRules(t *testing.T) {
	signed := Sign("secret/1", "k")
	c := NewController(Config{Secret: "k", Presence: true})
	pub := NewController(Config{Secret: "k", Public: true, Presence: true})
	turbo := NewController(Config{Turbo: true, TurboSecret: "t"})
	cases := []struct {
		c      *Controller
		id     string
		stream string
	}{
		{c, `{"channel":"$pubsub","signed_stream_name":"` + signed + `"}`, "secret/1"},
		{c, `{"channel":"$pubsub","stream_name":"open"}`, ""},
		{pub, `{"channel":"$pubsub","stream_name":"open"}`, "open"},
		{pub, `{"channel":"$pubsub","stream_name":"pub","signed_stream_name":"` + signed + `"}`, "secret/1"},
		{pub, `{"channel":"$pubsub","stream_name":"pub","signed_stream_name":"bad"}`, ""},
		{pub, `{"channel":"$pubsub"}`, ""},
		{pub, `{"channel":"ChatChannel"}`, ""},
		{pub, `not-json`, ""},
		{turbo, `{"channel":"Turbo::StreamsChannel","signed_stream_name":"` + Sign("turbo/1", "t") + `"}`, "turbo/1"},
		{turbo, `{"channel":"Turbo::StreamsChannel","signed_stream_name":"` + signed + `"}`, ""},
		{c, `{"channel":"Turbo::StreamsChannel","signed_stream_name":"` + Sign("turbo/1", "k") + `"}`, ""},
	}
	for _, tc := range cases {
		sub, err := tc.c.Subscribe(tc.id)
		if tc.stream == "" {
			if err == nil {
				t.Errorf("%s: accepted as %q", tc.id, sub.Stream)
			}
			continue
		}
		if err != nil || sub.Stream != tc.stream {
			t.Errorf("%s: %v %v", tc.id, sub, err)
		}
	}
	if sub, _ := pub.Subscribe(`{"channel":"$pubsub","stream_name":"open"}`); !sub.Whisper || !sub.Presence {
		t.Errorf("public stream flags: %+v", sub)
	}
	if sub, _ := c.Subscribe(`{"channel":"$pubsub","signed_stream_name":"` + signed + `"}`); sub.Whisper {
		t.Errorf("signed stream whisper without --streams_whisper")
	}
}

// A missing secret verifies nothing: names signed with the empty key are
// refused on both signed channels, while everything else is unchanged.
func TestNoSecretFailsClosed(t *testing.T) {
	forged := Sign("victim/1", "")
	if _, err := Verify(forged, ""); err != ErrNoSecret {
		t.Errorf("empty-key signature with no secret: %v", err)
	}
	c := NewController(Config{Public: true, Presence: true, Turbo: true})
	for _, id := range []string{
		`{"channel":"$pubsub","signed_stream_name":"` + forged + `"}`,
		`{"channel":"Turbo::StreamsChannel","signed_stream_name":"` + forged + `"}`,
	} {
		if sub, err := c.Subscribe(id); err == nil {
			t.Errorf("%s: accepted as %q", id, sub.Stream)
		}
	}
	if sub, err := c.Subscribe(`{"channel":"$pubsub","stream_name":"open"}`); err != nil || sub.Stream != "open" {
		t.Errorf("public stream: %v %v", sub, err)
	}
}

// Reserved names cannot be reached by a plain stream name, public streams
// or not; signed, they can.
func TestReservedStreams(t *testing.T) {
	c := NewController(Config{Public: true, Secret: "s", Reserved: func(n string) bool { return n == "private-x" }})
	if _, err := c.Subscribe(`{"channel":"$pubsub","stream_name":"private-x"}`); err == nil {
		t.Error("a reserved name was subscribed by plain name")
	}
	if _, err := c.Subscribe(`{"channel":"$pubsub","stream_name":"news"}`); err != nil {
		t.Errorf("a public name: %v", err)
	}
	signed := Sign("private-x", "s")
	if sub, err := c.Subscribe(`{"channel":"$pubsub","signed_stream_name":"` + signed + `"}`); err != nil || sub.Stream != "private-x" {
		t.Errorf("a signed reserved name: %v %v", sub, err)
	}
}
