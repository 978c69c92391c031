package e2e

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/cablehub/cablehub/server/config"
)

// sseServer runs a node with SSE on, public streams and a memory broker.
func sseServer(t *testing.T, extra ...string) *server {
	t.Helper()
	return startServer(t, nil, append([]string{"--public", "--norpc", "--sse", "--broker", "memory"}, extra...)...)
}

// What AnyCable's /events sends a GET subscriber, event by event: welcome,
// confirmation, each publication's payload with its offset/epoch/stream
// id (a string as itself, its line breaks as data lines), the stream
// headers, and the startup line.
func TestSSEStream(t *testing.T) {
	t.Parallel()
	s := sseServer(t)
	// The line comes after the health line, as in AnyCable.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(s.Logs(), "Handle SSE requests at http://"+s.Main+"/events"); {
		if time.Now().After(deadline) {
			t.Fatalf("startup lines:\n%s", s.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	stream := uniqueStream(t, "chat")
	c := openSSE(t, s, "GET", "/events?stream="+url.QueryEscape(stream), "")
	h := c.res.Header
	if c.res.StatusCode != 200 || h.Get("Content-Type") != "text/event-stream; charset=utf-8" ||
		h.Get("Cache-Control") != "private, no-cache, no-store, must-revalidate, max-age=0" ||
		h.Get("X-Accel-Buffering") != "no" || h.Get("Access-Control-Allow-Origin") != "*" || len(c.res.TransferEncoding) != 1 {
		t.Fatalf("answer: %d %v %v", c.res.StatusCode, h, c.res.TransferEncoding)
	}
	c.welcome(pubsubID(stream))
	for _, d := range []string{`"{\"text\":\"hello\"}"`, `"plain string"`, `"line1\nline2"`} {
		publish(t, s, fmt.Sprintf(`{"stream":%q,"data":%s}`, stream, d))
	}
	id := func(n int) string { return fmt.Sprintf("%d/%s/%s", n, s.Epoch, stream) }
	c.expect(
		`|{"text":"hello"}|`+id(1),
		`|plain string|`+id(2),
		"|line1\nline2|"+id(3),
	)
	// Pings come as events at the ping interval.
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-c.events:
			if ev.Name == "ping" && strings.HasPrefix(ev.Data, `{"type":"ping","message":`) {
				return
			}
			t.Fatalf("before a ping: %s", ev)
		case <-deadline:
			t.Fatal("no ping")
		}
	}
}

// A client that comes back with Last-Event-ID gets exactly what it missed,
// then confirm_history; a wrong epoch gets reject_history; history_since
// replays by time; raw=1 gets data events only; a POST gets the whole
// Action Cable message for each of its subscriptions.
func TestSSERecovery(t *testing.T) {
	t.Parallel()
	s := sseServer(t)
	stream := uniqueStream(t, "feed")
	q := "/events?stream=" + url.QueryEscape(stream)
	for i := 1; i <= 5; i++ {
		publish(t, s, fmt.Sprintf(`{"stream":%q,"data":"m%d"}`, stream, i))
	}
	id := func(n int) string { return fmt.Sprintf("%d/%s/%s", n, s.Epoch, stream) }
	confirmHistory := fmt.Sprintf(`confirm_history|{"type":"confirm_history","identifier":%q}|`, pubsubID(stream))

	c := openSSE(t, s, "GET", q, "", "Last-Event-ID: "+id(3))
	c.welcome(pubsubID(stream))
	c.expect("|m4|"+id(4), "|m5|"+id(5), confirmHistory)
	publish(t, s, fmt.Sprintf(`{"stream":%q,"data":"m6"}`, stream))
	c.expect("|m6|" + id(6))

	wrong := openSSE(t, s, "GET", q, "", fmt.Sprintf("Last-Event-ID: 3/nope/%s", stream))
	wrong.welcome(pubsubID(stream))
	wrong.expect(fmt.Sprintf(`reject_history|{"type":"reject_history","identifier":%q}|`, pubsubID(stream)))

	since := openSSE(t, s, "GET", q+fmt.Sprintf("&history_since=%d", time.Now().Add(-time.Minute).Unix()), "")
	since.welcome(pubsubID(stream))
	since.expect("|m1|"+id(1), "|m2|"+id(2), "|m3|"+id(3), "|m4|"+id(4), "|m5|"+id(5), "|m6|"+id(6), confirmHistory)

	raw := openSSE(t, s, "GET", q+"&raw=1", "", "Last-Event-ID: "+id(5))
	raw.expect("|m6|" + id(6))
	publish(t, s, fmt.Sprintf(`{"stream":%q,"data":"{\"n\":7}"}`, stream))
	raw.expect(`|{"n":7}|` + id(7))

	other := uniqueStream(t, "room")
	body := fmt.Sprintf("{\"command\":\"subscribe\",\"identifier\":%q}\n{\"command\":\"subscribe\",\"identifier\":%q,\"history\":{\"since\":1}}\n",
		pubsubID(stream), pubsubID(other))
	post := openSSE(t, s, "POST", "/events", body, "Content-Type: application/x-ndjson")
	post.welcome(pubsubID(stream))
	post.expect(fmt.Sprintf(`confirm_subscription|{"type":"confirm_subscription","identifier":%q}|`, pubsubID(other)),
		fmt.Sprintf(`confirm_history|{"type":"confirm_history","identifier":%q}|`, pubsubID(other)))
	publish(t, s, fmt.Sprintf(`{"stream":%q,"data":"hi room"}`, other))
	post.expect(fmt.Sprintf(`|{"identifier":%q,"message":"hi room","stream_id":%q,"epoch":%q,"offset":1}|1/%s/%s`,
		pubsubID(other), other, s.Epoch, s.Epoch, other))
	empty := openSSE(t, s, "POST", "/events", "")
	empty.welcome("")
}

// Requests the endpoint refuses, with the status AnyCable gives (and the
// headers RFC 9110 asks for).
func TestSSERefusals(t *testing.T) {
	t.Parallel()
	s := sseServer(t)
	base := "http://" + s.Main
	for _, c := range []struct {
		target, header string
		want           int
	}{
		{"/events", "", 400},
		{"/events?stream=x&history_since=abc", "", 400},
		{"/events?signed_stream=bogus--abc", "", 400},
		{"/events?identifier=notjson", "", 400},
		{"/events?channel=ChatChannel", "", 400},
		{"/events?turbo_signed_stream_name=x--y", "", 400},
		{"/events?stream=x", "Last-Event-ID: x/e/s", 400},
	} {
		var r response
		if c.header != "" {
			r = do(t, "GET", base+c.target, "", c.header)
		} else {
			r = do(t, "GET", base+c.target, "")
		}
		if r.Status != c.want || r.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" || r.Body != "" {
			t.Errorf("%s %s: %d %q %v", c.target, c.header, r.Status, r.Body, r.Header)
		}
	}
	for _, m := range []string{"PUT", "HEAD", "DELETE"} {
		if r := do(t, m, base+"/events?stream=x", ""); r.Status != 405 || r.Header.Get("Allow") != "GET, POST, OPTIONS" {
			t.Errorf("%s: %d %v", m, r.Status, r.Header)
		}
	}
	r := do(t, "OPTIONS", base+"/events", "", "Origin: https://app.example.com", "Access-Control-Request-Method: GET")
	if r.Status != 200 || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		r.Header.Get("Access-Control-Allow-Credentials") != "true" || !strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "Last-Event-ID") {
		t.Errorf("preflight: %d %v", r.Status, r.Header)
	}
	if r := do(t, "POST", base+"/events", "not json"); r.Status != 400 {
		t.Errorf("POST not json: %d", r.Status)
	}
	if r := do(t, "POST", base+"/events", strings.Repeat("a", 70000)); r.Status != 400 {
		t.Errorf("POST 70000 bytes: %d", r.Status)
	}
	if r := do(t, "POST", base+"/events", `{"command":"message","identifier":"x","data":"{}"}`); r.Status != 400 {
		t.Errorf("POST of a command other than subscribe: %d", r.Status)
	}
}

// Authentication as on WebSocket (a JWT in ?jid= or X-JID; 401 without),
// CORS by --allowed_origins (served either way, the origin echoed only
// when allowed), and a remote disconnect or a shutdown ends the body
// after the disconnect event (retry: forever when it says not to
// reconnect).
func TestSSEAuthAndEnd(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--norpc", "--sse", "--secret", "s3cr3t", "--public_streams", "--broker", "memory",
		"--allowed_origins", "example.com,*.trusted.io")
	tok := jwtToken(t, "s3cr3t", jwt.MapClaims{"ext": `{"user_id":42}`})
	stream := uniqueStream(t, "s1")
	q := "/events?stream=" + url.QueryEscape(stream)
	refused := openSSE(t, s, "GET", q, "", "Origin: https://app.example.com")
	if refused.res.StatusCode != 401 || refused.res.Header.Get("Www-Authenticate") != "Bearer" || refused.res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("no token: %d %v", refused.res.StatusCode, refused.res.Header)
	}
	if bad := openSSE(t, s, "GET", q+"&jid=abc.def.ghi", ""); bad.res.StatusCode != 401 {
		t.Errorf("bad token: %d", bad.res.StatusCode)
	}
	a := openSSE(t, s, "GET", q+"&jid="+tok, "", "Origin: https://x.trusted.io")
	if a.res.StatusCode != 200 || a.res.Header.Get("Access-Control-Allow-Origin") != "https://x.trusted.io" {
		t.Fatalf("token in the query: %d %v", a.res.StatusCode, a.res.Header)
	}
	a.welcome(pubsubID(stream))
	b := openSSE(t, s, "GET", q, "", "X-JID: "+tok)
	b.welcome(pubsubID(stream))

	r := do(t, "POST", "http://"+s.Main+"/api/disconnect", `{"identifier":"{\"user_id\":42}","reconnect":false}`, "Authorization: Bearer "+s3cr3tToken)
	if r.Status != 201 {
		t.Fatalf("disconnect: %d %s", r.Status, r.Body)
	}
	for _, c := range []*sseClient{a, b} {
		ev := c.next()
		if ev.Name != "disconnect" || ev.Data != `{"type":"disconnect","reason":"remote","reconnect":false}` || ev.Retry != "2147483647" {
			t.Errorf("remote disconnect: %s", ev)
		}
		c.ended()
	}
	last := openSSE(t, s, "GET", q+"&jid="+tok, "")
	last.welcome(pubsubID(stream))
	s.stop()
	if ev := last.next(); ev.Name != "disconnect" || ev.Data != `{"type":"disconnect","reason":"server_restart","reconnect":true}` || ev.Retry != "" {
		t.Errorf("shutdown: %s", ev)
	}
	last.ended()
}

// SSE clients count against --max-conn with WebSocket clients (503 over
// it), and in clients_num and sse_clients_num.
func TestSSECountsAsConnections(t *testing.T) {
	t.Parallel()
	s := sseServer(t, "--max-conn", "2", "--metrics_http", "/metrics")
	ws := dialWS(t, s, dialOpts{})
	ws.welcome()
	stream := uniqueStream(t, "n")
	c := openSSE(t, s, "GET", "/events?stream="+url.QueryEscape(stream), "")
	c.welcome(pubsubID(stream))
	over := openSSE(t, s, "GET", "/events?stream="+url.QueryEscape(stream), "")
	if over.res.StatusCode != 503 || over.res.Header.Get("Retry-After") == "" {
		t.Errorf("over --max-conn: %d %v", over.res.StatusCode, over.res.Header)
	}
	m := do(t, "GET", "http://"+s.Main+"/metrics", "")
	for _, want := range []string{"anycable_go_sse_clients_num 1\n", "anycable_go_clients_num 2\n"} {
		if !strings.Contains(m.Body, want) {
			t.Errorf("metrics lack %q", strings.TrimSpace(want))
		}
	}
	c.nc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(do(t, "GET", "http://"+s.Main+"/metrics", "").Body, "anycable_go_sse_clients_num 0\n") {
		if time.Now().After(deadline) {
			t.Fatal("sse_clients_num not back to 0 after the client left")
		}
		time.Sleep(50 * time.Millisecond)
	}
	again := openSSE(t, s, "GET", "/events?stream="+url.QueryEscape(stream), "")
	again.welcome(pubsubID(stream))
}

// Two nodes on Redis: an SSE client whose node is killed reconnects to the
// other node with its Last-Event-ID and gets exactly what was published
// meanwhile, once.
func TestSSERecoversOnAnotherNode(t *testing.T) {
	// The RPC cluster tests' DB: tests there keep apart by unique streams
	// and flush nothing.
	args := []string{"--public", "--norpc", "--sse", "--broker", "redis", "--redis_url", redisURL(t, rpcClusterDB)}
	a, b := startServer(t, nil, args...), startServer(t, nil, args...)
	stream := uniqueStream(t, "kill")
	q := "/events?stream=" + url.QueryEscape(stream)
	c := openSSE(t, a, "GET", q, "")
	c.welcome(pubsubID(stream))
	publish(t, b, fmt.Sprintf(`{"stream":%q,"data":"m1"}`, stream))
	first := c.next()
	if first.Data != "m1" || !strings.HasPrefix(first.ID, "1/") {
		t.Fatalf("first: %s", first)
	}
	a.cmd.Process.Kill()
	for i := 2; i <= 6; i++ {
		publish(t, b, fmt.Sprintf(`{"stream":%q,"data":"m%d"}`, stream, i))
	}
	epoch := strings.Split(first.ID, "/")[1]
	r := openSSE(t, b, "GET", q, "", "Last-Event-ID: "+first.ID)
	r.welcome(pubsubID(stream))
	for i := 2; i <= 6; i++ {
		r.expect(fmt.Sprintf("|m%d|%d/%s/%s", i, i, epoch, stream))
	}
	r.expect(fmt.Sprintf(`confirm_history|{"type":"confirm_history","identifier":%q}|`, pubsubID(stream)))
	publish(t, b, fmt.Sprintf(`{"stream":%q,"data":"m7"}`, stream))
	r.expect(fmt.Sprintf("|m7|7/%s/%s", epoch, stream))
}

// Through the RPC back end: the request's cookies identify the client to
// the application's Connect (refused without: 401), and an application
// channel named by ?identifier= is confirmed by the application, then
// delivers its stream's publications.
func TestSSEThroughRPC(t *testing.T) {
	be := startRPCBackend(t, "grpc")
	s := startServer(t, nil, "--secret", rpcClusterSecret, "--rpc_host", be.host, "--sse", "--broker", "memory")
	token := config.DeriveSecret(rpcClusterSecret, "api-cable")
	room := uniqueStream(t, "room")
	id := chatIdentifier(room)
	q := "/events?identifier=" + url.QueryEscape(id)
	if anon := openSSE(t, s, "GET", q, ""); anon.res.StatusCode != 401 {
		t.Errorf("without the user cookie: %d", anon.res.StatusCode)
	}
	c := openSSE(t, s, "GET", q, "", "Cookie: theme=dark; user=sse-alice")
	if c.res.StatusCode != 200 {
		t.Fatalf("with the user cookie: %d", c.res.StatusCode)
	}
	if ev := c.next(); ev.Name != "welcome" {
		t.Fatalf("welcome: %s", ev)
	}
	if ev := c.next(); ev.Name != "confirm_subscription" || !strings.Contains(ev.Data, `"identifier":`+quoted(id)) {
		t.Fatalf("confirmation: %s", ev)
	}
	publish(t, s, fmt.Sprintf(`{"stream":%q,"data":"{\"text\":\"hi\"}"}`, be.room(room)), "Authorization: Bearer "+token)
	for {
		ev := c.next()
		if ev.Name != "" {
			continue // the application's own transmissions
		}
		if ev.Data != `{"text":"hi"}` || !strings.HasPrefix(ev.ID, "1/") {
			t.Fatalf("publication: %s", ev)
		}
		return
	}
}
