package pusher

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cablehub/cablehub/server/protocol"
	"github.com/cablehub/cablehub/server/streams"
)

// The documented example: socket 1234.1234 of app 278d425bdf160c739803.
const docSocket = "1234.1234"

// Signatures from Pusher's documentation (authorizing users).
const (
	docPrivateAuth     = "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
	docPresenceData    = `{"user_id":10,"user_info":{"name":"Mr. Channels"}}`
	docPresenceAuth    = "278d425bdf160c739803:31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80"
	docPrivateChannel  = "private-foobar"
	docPresenceChannel = "presence-foobar"
)

// route routes a pusher:subscribe of channel with data d for sid, as the
// session hands it over (the command Decode makes).
func routeCmd(t *testing.T, sid, channel string, d subscribeData) (*streams.Subscription, error) {
	t.Helper()
	d.Channel = channel
	data, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	r := &Router{App: &docApp}
	return r.Route(sid, &protocol.Command{Command: "subscribe", Identifier: channel, Data: data})
}

// A public channel is open to every valid name; the name is the stream.
func TestRoutePublic(t *testing.T) {
	for _, channel := range []string{"news", "a", strings.Repeat("x", MaxChannelName), "A-Z_a-z0-9=@,.;", "private", "presence"} {
		sub, err := routeCmd(t, docSocket, channel, subscribeData{})
		if err != nil {
			t.Errorf("%q: %v", channel, err)
			continue
		}
		if want := (streams.Subscription{Stream: channel}); *sub != want {
			t.Errorf("%q: %+v", channel, sub)
		}
	}
	// No data at all (a session's own subscribe): still routed.
	sub, err := (&Router{App: &docApp}).Route(docSocket, &protocol.Command{Command: "subscribe", Identifier: "news"})
	if err != nil || sub.Stream != "news" {
		t.Errorf("without data: %+v, %v", sub, err)
	}
	if _, err := (&Router{App: &docApp}).Route(docSocket, &protocol.Command{Identifier: "news", Data: []byte(`{`)}); err == nil {
		t.Error("malformed data routed")
	}
}

// Names over 164 bytes, empty, or with a byte outside [A-Za-z0-9_-=@,.;]
// are refused, on every kind of channel, signed or not.
func TestRouteInvalidNames(t *testing.T) {
	private := "private-" + strings.Repeat("x", MaxChannelName-len("private-")+1)
	for _, channel := range []string{
		"", strings.Repeat("x", MaxChannelName+1), "bad channel", "news/x", "news#1", "caf\u00e9", "news\x00", "a:b",
		"#server-to-user", private, "private-a b",
	} {
		d := subscribeData{Auth: docApp.ChannelAuth(docSocket, channel, "")}
		if sub, err := routeCmd(t, docSocket, channel, d); err == nil {
			t.Errorf("%q routed: %+v", channel, sub)
		}
	}
}

// A private channel needs the app's signature of "<socket_id>:<channel>":
// the documented one passes, any other is refused.
func TestRoutePrivate(t *testing.T) {
	sub, err := routeCmd(t, docSocket, docPrivateChannel, subscribeData{Auth: docPrivateAuth})
	if err != nil {
		t.Fatal(err)
	}
	if want := (streams.Subscription{Stream: docPrivateChannel, Whisper: true}); *sub != want {
		t.Errorf("%+v", sub)
	}
	other := App{Key: docApp.Key, Secret: "another secret"}
	for name, c := range map[string]struct{ socket, channel, auth string }{
		"wrong secret":  {docSocket, docPrivateChannel, other.ChannelAuth(docSocket, docPrivateChannel, "")},
		"other socket":  {"1234.1235", docPrivateChannel, docPrivateAuth},
		"other channel": {docSocket, "private-foobaz", docPrivateAuth},
		"missing":       {docSocket, docPrivateChannel, ""},
		"other key":     {docSocket, docPrivateChannel, "other" + docPrivateAuth[len(docApp.Key):]},
		"no key":        {docSocket, docPrivateChannel, docPrivateAuth[len(docApp.Key)+1:]},
		"upper case":    {docSocket, docPrivateChannel, strings.ToUpper(docPrivateAuth)},
		"presence signature": {docSocket, docPrivateChannel,
			docApp.ChannelAuth(docSocket, docPrivateChannel, docPresenceData)},
	} {
		if sub, err := routeCmd(t, c.socket, c.channel, subscribeData{Auth: c.auth}); err == nil {
			t.Errorf("%s: routed %+v", name, sub)
		}
	}
}

// private-encrypted- channels are private channels to the server: the
// same signature (the clients hold the key).
func TestRoutePrivateEncrypted(t *testing.T) {
	const channel = "private-encrypted-foobar"
	sub, err := routeCmd(t, docSocket, channel, subscribeData{Auth: docApp.ChannelAuth(docSocket, channel, "")})
	if err != nil || sub.Stream != channel || sub.Presence || sub.Member != nil {
		t.Fatalf("%+v, %v", sub, err)
	}
	if _, err := routeCmd(t, docSocket, channel, subscribeData{Auth: docPrivateAuth}); err == nil {
		t.Error("private-foobar's signature opened private-encrypted-foobar")
	}
	if _, err := routeCmd(t, docSocket, channel, subscribeData{}); err == nil {
		t.Error("routed without a signature")
	}
}

// A presence channel needs the signature of
// "<socket_id>:<channel>:<channel_data>"; the member is channel_data's
// user_id (a number as its decimal text) with its user_info normalised.
func TestRoutePresence(t *testing.T) {
	sub, err := routeCmd(t, docSocket, docPresenceChannel, subscribeData{Auth: docPresenceAuth, ChannelData: docPresenceData})
	if err != nil {
		t.Fatal(err)
	}
	if sub.Stream != docPresenceChannel || !sub.Whisper || !sub.Presence || sub.Member == nil ||
		sub.Member.ID != "10" || string(sub.Member.Info) != `{"name":"Mr. Channels"}` {
		t.Fatalf("%+v (member %+v)", sub, sub.Member)
	}
	cases := []struct {
		name, data, id, info string
	}{
		{"string id", `{"user_id":"u1"}`, "u1", ""},
		{"info normalised", `{"user_info":{"z":1, "a":[1, 2]} , "user_id":"u1"}`, "u1", `{"a":[1,2],"z":1}`},
		{"null info", `{"user_id":"u1","user_info":null}`, "u1", ""},
		{"negative id", `{"user_id":-3}`, "-3", ""},
		{"largest id", `{"user_id":"` + strings.Repeat("i", MaxUserID) + `"}`, strings.Repeat("i", MaxUserID), ""},
		{"largest info", `{"user_id":"u1","user_info":"` + strings.Repeat("i", MaxUserInfo-2) + `"}`,
			"u1", `"` + strings.Repeat("i", MaxUserInfo-2) + `"`},
	}
	for _, c := range cases {
		auth := docApp.ChannelAuth(docSocket, "presence-r", c.data)
		sub, err := routeCmd(t, docSocket, "presence-r", subscribeData{Auth: auth, ChannelData: c.data})
		if err != nil || sub.Member == nil || sub.Member.ID != c.id || string(sub.Member.Info) != c.info {
			t.Errorf("%s: %+v, %v", c.name, sub, err)
		}
	}
}

// A presence subscription is refused without a member the server can
// name: no channel_data, no usable user_id, too large a user_info; and
// with any signature but the one over its own channel_data.
func TestRoutePresenceRefused(t *testing.T) {
	for name, data := range map[string]string{
		"float id":        `{"user_id":1.5}`,
		"exponent id":     `{"user_id":1e3}`,
		"huge id":         `{"user_id":123456789012345678901234567890}`,
		"empty id":        `{"user_id":""}`,
		"long id":         `{"user_id":"` + strings.Repeat("i", MaxUserID+1) + `"}`,
		"object id":       `{"user_id":{"id":1}}`,
		"bool id":         `{"user_id":true}`,
		"null id":         `{"user_id":null}`,
		"no id":           `{"user_info":{}}`,
		"info too large":  `{"user_id":"u1","user_info":"` + strings.Repeat("i", MaxUserInfo-1) + `"}`,
		"not an object":   `"u1"`,
		"not json":        `{"user_id":"u1"`,
		"no channel_data": ``,
	} {
		auth := docApp.ChannelAuth(docSocket, "presence-r", data)
		if sub, err := routeCmd(t, docSocket, "presence-r", subscribeData{Auth: auth, ChannelData: data}); err == nil {
			t.Errorf("%s: routed %+v (member %+v)", name, sub, sub.Member)
		}
	}
	for name, d := range map[string]subscribeData{
		"other channel_data":   {Auth: docPresenceAuth, ChannelData: `{"user_id":11,"user_info":{"name":"Mr. Channels"}}`},
		"reformatted":          {Auth: docPresenceAuth, ChannelData: `{"user_id": 10,"user_info":{"name":"Mr. Channels"}}`},
		"private signature":    {Auth: docApp.ChannelAuth(docSocket, docPresenceChannel, ""), ChannelData: docPresenceData},
		"missing signature":    {ChannelData: docPresenceData},
		"signature, no member": {Auth: docPresenceAuth},
	} {
		if sub, err := routeCmd(t, docSocket, docPresenceChannel, d); err == nil {
			t.Errorf("%s: routed %+v", name, sub)
		}
	}
	if sub, err := routeCmd(t, "1234.1235", docPresenceChannel, subscribeData{Auth: docPresenceAuth, ChannelData: docPresenceData}); err == nil {
		t.Errorf("another socket: routed %+v", sub)
	}
}

// A user's stream is open to a sign-in's signature of its user_data whose
// id names the stream, and to nothing else.
func TestRouteUserStream(t *testing.T) {
	ud := `{"id":"u2","name":"B"}`
	auth := docApp.UserAuth(docSocket, ud)
	sub, err := routeCmd(t, docSocket, "#server-to-user-u2", subscribeData{Auth: auth, UserData: ud})
	if err != nil {
		t.Fatal(err)
	}
	if want := (streams.Subscription{Stream: "#server-to-user-u2"}); *sub != want {
		t.Errorf("%+v", sub)
	}
	numeric := `{"id":7}`
	if sub, err := routeCmd(t, docSocket, "#server-to-user-7", subscribeData{Auth: docApp.UserAuth(docSocket, numeric), UserData: numeric}); err != nil || sub.Stream != "#server-to-user-7" {
		t.Errorf("numeric id: %+v, %v", sub, err)
	}
	other := App{Key: docApp.Key, Secret: "another secret"}
	for name, c := range map[string]struct{ socket, channel, auth, ud string }{
		"wrong id":         {docSocket, "#server-to-user-u3", auth, ud},
		"id prefix":        {docSocket, "#server-to-user-u", auth, ud},
		"other socket":     {"1234.1235", "#server-to-user-u2", auth, ud},
		"forged":           {docSocket, "#server-to-user-u2", other.UserAuth(docSocket, ud), ud},
		"missing":          {docSocket, "#server-to-user-u2", "", ud},
		"channel auth":     {docSocket, "#server-to-user-u2", docApp.ChannelAuth(docSocket, "#server-to-user-u2", ""), ud},
		"other user_data":  {docSocket, "#server-to-user-u2", auth, `{"id":"u2"}`},
		"signed, no id":    {docSocket, "#server-to-user-", docApp.UserAuth(docSocket, `{"name":"B"}`), `{"name":"B"}`},
		"signed, empty id": {docSocket, "#server-to-user-", docApp.UserAuth(docSocket, `{"id":""}`), `{"id":""}`},
		"signed, float id": {docSocket, "#server-to-user-1.5", docApp.UserAuth(docSocket, `{"id":1.5}`), `{"id":1.5}`},
	} {
		if sub, err := routeCmd(t, c.socket, c.channel, subscribeData{Auth: c.auth, UserData: c.ud}); err == nil {
			t.Errorf("%s: routed %+v", name, sub)
		}
	}
}

// An app without a secret opens no private, presence or user channel.
func TestRouteWithoutSecret(t *testing.T) {
	app := &App{Key: "k"}
	r := &Router{App: app}
	data, _ := json.Marshal(subscribeData{Channel: "private-a", Auth: app.ChannelAuth("1.1", "private-a", "")})
	if sub, err := r.Route("1.1", &protocol.Command{Identifier: "private-a", Data: data}); err == nil {
		t.Errorf("routed %+v", sub)
	}
}
