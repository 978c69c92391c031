package e2e

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

func publish(t *testing.T, s *server, body string, headers ...string) {
	t.Helper()
	if r := do(t, "POST", "http://"+s.Main+"/api/publish", body, headers...); r.Status != 201 {
		t.Fatalf("publish %s: %d %s", body, r.Status, r.Body)
	}
}

func TestWelcomeAndSubprotocols(t *testing.T) {
	s := startServer(t, nil, "--public")
	cases := []struct {
		offered []string
		chosen  string
	}{
		{[]string{"actioncable-v1-json"}, "actioncable-v1-json"},
		{[]string{"actioncable-v1-ext-json"}, "actioncable-v1-ext-json"},
		{[]string{"actioncable-v1-ext-json", "actioncable-v1-json"}, "actioncable-v1-ext-json"},
		{[]string{"actioncable-v1-json", "actioncable-v1-ext-json"}, "actioncable-v1-json"},
		{[]string{}, ""},
		{[]string{"foo-proto"}, ""},
	}
	sidRe := regexp.MustCompile(`^[A-Za-z0-9_-]{21}$`)
	for _, c := range cases {
		ws := dialWS(t, s, dialOpts{protocols: c.offered})
		if got := ws.resp.Header.Get("Sec-WebSocket-Protocol"); got != c.chosen {
			t.Errorf("offered %v: chose %q, want %q", c.offered, got, c.chosen)
		}
		if sid := ws.welcome(); !sidRe.MatchString(sid) {
			t.Errorf("sid %q is not a 21-char id", sid)
		}
	}
	// X-Request-ID is not the sid (it would let clients choose sids).
	ws := dialWS(t, s, dialOpts{header: http.Header{"X-Request-Id": {"my-request-id-1"}}})
	if sid := ws.welcome(); !sidRe.MatchString(sid) {
		t.Errorf("with X-Request-ID: sid %q is not a 21-char id", sid)
	}
}

func TestPlainGETAndHealth(t *testing.T) {
	s := startServer(t, nil, "--public")
	if r := do(t, "GET", "http://"+s.Main+"/cable", ""); r.Status != 400 {
		t.Errorf("plain GET: %d", r.Status)
	}
	if r := do(t, "GET", "http://"+s.Main+"/health", ""); r.Status != 200 {
		t.Errorf("health: %d", r.Status)
	}
}

func TestPings(t *testing.T) {
	s := startServer(t, nil, "--public")
	ws := dialWS(t, s, dialOpts{query: "?pi=1"})
	ws.keepPings = true
	ws.welcome()
	for range 2 {
		f := ws.next(3 * time.Second)
		if !regexp.MustCompile(`^\{"type":"ping","message":\d{10}\}$`).MatchString(f) {
			t.Fatalf("ping %s", f)
		}
	}
	ms := dialWS(t, s, dialOpts{query: "?pi=1&ptp=ms"})
	ms.keepPings = true
	ms.welcome()
	if f := ms.next(3 * time.Second); !regexp.MustCompile(`^\{"type":"ping","message":\d{13}\}$`).MatchString(f) {
		t.Fatalf("ms ping %s", f)
	}
	ws.send(`{"command":"ping"}`)
	ws.keepPings = false
	ws.expect(`{"type":"pong"}`)
}

func TestPongTimeout(t *testing.T) {
	s := startServer(t, nil, "--public", "--pong_timeout", "1")
	ws := dialWS(t, s, dialOpts{query: "?pi=1"})
	ws.welcome()
	ws.keepPings = true
	ws.next(3 * time.Second) // a ping
	ws.expect(`{"type":"disconnect","reason":"no_pong","reconnect":true}`)
	ws.expectClose(1000, "No Pong")

	// A plain-protocol client is not held to it.
	plain := dialWS(t, s, dialOpts{query: "?pi=1", protocols: []string{"actioncable-v1-json"}})
	plain.welcome()
	plain.keepPings = true
	for range 3 {
		if f := plain.next(3 * time.Second); !strings.HasPrefix(f, `{"type":"ping"`) {
			t.Fatalf("plain client got %s", f)
		}
	}
}

func TestSubscribeAndDeliver(t *testing.T) {
	s := startServer(t, nil, "--public")
	a := dialWS(t, s, dialOpts{protocols: []string{"actioncable-v1-json"}})
	a.welcome()
	b := dialWS(t, s, dialOpts{})
	bSID := b.welcome()
	id := a.subscribe("chat/1")
	b.subscribe("chat/1")
	qid := quoted(id)

	publish(t, s, `{"stream":"chat/1","data":"{\"text\":\"hello\"}"}`)
	for _, c := range []*wsClient{a, b} {
		c.expect(`{"identifier":` + qid + `,"message":{"text":"hello"}` + s.stamp("chat/1", 1) + `}`)
	}
	publish(t, s, `[{"stream":"chat/1","data":"{\"n\":1}"},{"stream":"other","data":"{\"n\":2}"},{"stream":"chat/1","data":"{\"n\":3}"}]`)
	for _, c := range []*wsClient{a, b} {
		c.expect(`{"identifier":` + qid + `,"message":{"n":1}` + s.stamp("chat/1", 2) + `}`)
		c.expect(`{"identifier":` + qid + `,"message":{"n":3}` + s.stamp("chat/1", 3) + `}`)
	}
	publish(t, s, `{"stream":"chat/1","data":"plain string, not json"}`)
	a.expect(`{"identifier":` + qid + `,"message":"plain string, not json"` + s.stamp("chat/1", 4) + `}`)
	b.expect(`{"identifier":` + qid + `,"message":"plain string, not json"` + s.stamp("chat/1", 4) + `}`)
	publish(t, s, `{"stream":"chat/1","data":"{\"b\":1,\"a\":\"<&>\"}","meta":{"broadcast_type":"custom"}}`)
	a.expect(`{"type":"custom","identifier":` + qid + `,"message":{"a":"\u003c\u0026\u003e","b":1}` + s.stamp("chat/1", 5) + `}`)
	b.expect(`{"type":"custom","identifier":` + qid + `,"message":{"a":"\u003c\u0026\u003e","b":1}` + s.stamp("chat/1", 5) + `}`)

	// exclude_socket skips b only.
	publish(t, s, fmt.Sprintf(`{"stream":"chat/1","data":"{\"excl\":\"B\"}","meta":{"exclude_socket":%q}}`, bSID))
	a.expect(`{"identifier":` + qid + `,"message":{"excl":"B"}` + s.stamp("chat/1", 6) + `}`)
	b.barrier()

	// Duplicate subscribe: nothing. Unsubscribe: nothing, and no more
	// deliveries to a.
	a.send(subscribeCmd(id))
	a.barrier()
	a.send(`{"command":"unsubscribe","identifier":` + qid + `}`)
	a.barrier()
	publish(t, s, `{"stream":"chat/1","data":"{\"after\":\"unsub\"}"}`)
	b.expect(`{"identifier":` + qid + `,"message":{"after":"unsub"}` + s.stamp("chat/1", 7) + `}`)
	a.barrier()
}

func TestRejectedSubscriptions(t *testing.T) {
	// --norpc: with the RPC back end on, channels it would run are its to
	// confirm or reject.
	s := startServer(t, nil, "--noauth", "--secret", "s3cr3t", "--norpc")
	ws := dialWS(t, s, dialOpts{})
	ws.welcome()
	for _, id := range []string{
		`{"channel":"$pubsub"}`,
		`{"channel":"$pubsub","stream_name":"room/9"}`, // public streams off
		`{"channel":"ChatChannel","id":1}`,
		`not-json`,
		`{"channel":"Turbo::StreamsChannel","signed_stream_name":"x"}`,
	} {
		ws.send(subscribeCmd(id))
		ws.expect(`{"type":"reject_subscription","identifier":` + quoted(id) + `}`)
	}
}

func TestMalformedFramesKeepConnectionWorking(t *testing.T) {
	s := startServer(t, nil, "--public", "--metrics_http", "/metrics")
	ws := dialWS(t, s, dialOpts{})
	ws.welcome()
	for _, f := range []string{
		`this is not json`,
		`{"command":"subscribe","identifier":42}`,
		`{"command":"bogus","identifier":"x"}`,
		`[]`,
		`{"command":"message","identifier":"{}","data":"{}"}`,
	} {
		ws.send(f)
	}
	ws.subscribe("after-garbage")
	r := do(t, "GET", "http://"+s.Main+"/metrics", "")
	if !regexp.MustCompile(`(?m)^anycable_go_failed_client_msg_total [34]$`).MatchString(r.Body) {
		t.Errorf("failed messages not counted:\n%s", grep(r.Body, "failed_client"))
	}
}

func grep(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestWhisper(t *testing.T) {
	s := startServer(t, nil, "--public")
	a, b := dialWS(t, s, dialOpts{}), dialWS(t, s, dialOpts{})
	a.welcome()
	b.welcome()
	id := a.subscribe("room")
	b.subscribe("room")
	a.send(`{"command":"whisper","identifier":` + quoted(id) + `,"data":{"event":"typing","name":"A"}}`)
	b.expect(`{"identifier":` + quoted(id) + `,"message":{"event":"typing","name":"A"}}`)
	a.barrier()
}

func TestOriginCheck(t *testing.T) {
	s := startServer(t, nil, "--public", "--allowed_origins", "example.com,*.trusted.io")
	dialWS(t, s, dialOpts{header: http.Header{"Origin": {"http://evil.com"}}, expectStatus: 403})
	dialWS(t, s, dialOpts{expectStatus: 403})
	for _, origin := range []string{"http://example.com", "https://a.trusted.io"} {
		ws := dialWS(t, s, dialOpts{header: http.Header{"Origin": {origin}}})
		ws.welcome()
	}
}

func TestOversizeFrameCloses1009(t *testing.T) {
	s := startServer(t, nil, "--public", "--max_message_size", "1024")
	ws := dialWS(t, s, dialOpts{})
	ws.welcome()
	ws.send(`{"command":"ping","x":"` + strings.Repeat("x", 2000) + `"}`)
	ws.expectClose(1009, "")
	// Others are unaffected.
	other := dialWS(t, s, dialOpts{})
	other.welcome()
	other.barrier()
}
