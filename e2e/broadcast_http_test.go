package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// broadcastKey is the http adapter's key derived from --secret s3cr3t, as
// AnyCable and the anycable gem derive it (HMAC-SHA256 of
// "broadcast-cable").
const broadcastKey = "83149057b2f956b5f862c0ef5ad6a24d3677dc076d77e8999c24f77ca17d7a20"

// broadcastPair is two extended-protocol clients subscribed to one stream:
// A (JWT user "a") and B (JWT user "b"), on servers started with --secret
// s3cr3t --noauth --public_streams, where JWTs are signed with the secret.
type broadcastPair struct {
	stream, q string
	a, b      *wsClient
	sidA      string
}

func newBroadcastPair(t *testing.T, sa, sb *server, stream string) *broadcastPair {
	t.Helper()
	p := &broadcastPair{stream: stream}
	p.a = dialWS(t, sa, dialOpts{query: "?jid=" + jwtToken(t, "s3cr3t", jwt.MapClaims{"ext": `{"user":"a"}`})})
	p.b = dialWS(t, sb, dialOpts{query: "?jid=" + jwtToken(t, "s3cr3t", jwt.MapClaims{"ext": `{"user":"b"}`})})
	p.sidA = p.a.welcome()
	p.b.welcome()
	id := p.a.subscribe(stream)
	p.b.subscribe(stream)
	p.q = quoted(id)
	return p
}

// both expects the frame {"identifier":…,"message":<message><tail>} on
// both clients; typ, when set, is its "type".
func (p *broadcastPair) both(typ, message, tail string) {
	f := `{"identifier":` + p.q + `,"message":` + message + tail + `}`
	if typ != "" {
		f = `{"type":"` + typ + `",` + f[1:]
	}
	p.a.expect(f)
	p.b.expect(f)
}

// postBroadcast POSTs body to the http adapter at addr+path with the
// headers the anycable gem sends.
func postBroadcast(t *testing.T, url, key, body string) response {
	t.Helper()
	headers := []string{"Content-Type: application/json"}
	if key != "" {
		headers = append(headers, "Authorization: Bearer "+key)
	}
	return do(t, "POST", url, body, headers...)
}

// TestBroadcastHTTP runs AnyCable's /_broadcast transcript against the
// binary with a key derived from --secret, on the main port: what
// subscribers receive (stamped by the broker: stream_id, epoch, offset),
// and the answers, including Cablehub's 422 with a JSON error where
// AnyCable answers 201 to a body it drops.
func TestBroadcastHTTP(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--secret", "s3cr3t", "--noauth", "--public_streams", "--broadcast_adapter", "http")
	if !strings.Contains(s.Logs(), "Accept broadcast requests at http://"+s.Main+"/_broadcast (authorization required)") {
		t.Errorf("startup line missing:\n%s", s.Logs())
	}
	stream := uniqueStream(t, "feed")
	p := newBroadcastPair(t, s, s, stream)
	url := "http://" + s.Main + "/_broadcast"
	post := func(body string) {
		t.Helper()
		if r := postBroadcast(t, url, broadcastKey, body); r.Status != 201 || r.Body != "" {
			t.Fatalf("POST %s: %d %q, want 201 with no body", body, r.Status, r.Body)
		}
	}

	post(fmt.Sprintf(`{"stream":%q,"data":"{\"n\":1}"}`, stream))
	p.both("", `{"n":1}`, s.stamp(stream, 1))
	post(fmt.Sprintf(`{"stream":%q,"data":"plain text"}`, stream))
	p.both("", `"plain text"`, s.stamp(stream, 2))
	post(fmt.Sprintf(`[{"stream":%q,"data":"{\"n\":2}"},{"stream":"%s-other","data":"x"},{"stream":%q,"data":"{\"n\":3}"}]`, stream, stream, stream))
	p.both("", `{"n":2}`, s.stamp(stream, 3))
	p.both("", `{"n":3}`, s.stamp(stream, 4))
	post(fmt.Sprintf(`{"stream":%q,"data":"{\"n\":4}","meta":{"exclude_socket":%q}}`, stream, p.sidA))
	p.b.expect(`{"identifier":` + p.q + `,"message":{"n":4}` + s.stamp(stream, 5) + `}`)
	post(fmt.Sprintf(`{"stream":%q,"data":"{\"n\":5}","meta":{"transient":true}}`, stream))
	p.both("", `{"n":5}`, "")
	post(fmt.Sprintf(`{"stream":%q,"data":"{\"n\":6}","meta":{"broadcast_type":"custom"}}`, stream))
	p.both("custom", `{"n":6}`, s.stamp(stream, 6))
	// A publisher cannot forge a position: the broker stamps it.
	post(fmt.Sprintf(`{"stream":%q,"data":"{\"n\":7}","offset":99,"epoch":"fake"}`, stream))
	p.both("", `{"n":7}`, s.stamp(stream, 7))

	for _, c := range []struct{ body, want string }{
		{fmt.Sprintf(`{"stream":%q,"data":{"a":1}}`, stream), `{"code":3,"message":"data must be a string (encode the payload as a JSON string)"}`},
		{`garbage`, `{"code":3,"message":"request body is not valid JSON: invalid character 'g' looking for beginning of value"}`},
		{`{}`, `{"code":3,"message":"stream is required"}`},
		{`[]`, `{"code":3,"message":"publications array is empty"}`},
		{`{"command":"reload"}`, `{"code":3,"message":"unknown command \"reload\": only \"disconnect\" is supported"}`},
	} {
		r := postBroadcast(t, url, broadcastKey, c.body)
		if r.Status != 422 || r.Body != c.want || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("POST %s: %d %s (%s), want 422 %s", c.body, r.Status, r.Body, r.Header.Get("Content-Type"), c.want)
		}
	}
	for _, m := range []string{"GET", "PUT"} {
		if r := do(t, m, url, ""); r.Status != 422 || r.Body != `{"code":3,"message":"method `+m+` is not allowed here, use POST"}` {
			t.Errorf("%s: %d %s", m, r.Status, r.Body)
		}
	}
	unauthorized := `{"code":16,"message":"missing or invalid broadcast key: send Authorization: Bearer <key> (--broadcast_key, or derived from --secret)"}`
	for _, auth := range []string{"", "Authorization: Bearer x", "Authorization: bearer " + broadcastKey} {
		headers := []string{}
		if auth != "" {
			headers = append(headers, auth)
		}
		r := do(t, "POST", url, fmt.Sprintf(`{"stream":%q,"data":"no"}`, stream), headers...)
		if r.Status != 401 || r.Body != unauthorized || r.Header.Get("WWW-Authenticate") != "Bearer" {
			t.Errorf("POST with %q: %d %s", auth, r.Status, r.Body)
		}
	}
	// Nothing of the refused requests reached the subscribers.
	p.a.barrier()
	p.b.barrier()

	post(`{"command":"disconnect","payload":{"identifier":"{\"user\":\"b\"}","reconnect":true}}`)
	p.b.expect(`{"type":"disconnect","reason":"remote","reconnect":true}`)
	p.b.expectClose(1000, "Closed remotely")
	p.a.barrier()
}

// TestBroadcastHTTPPorts: without a key the http adapter listens on a
// port of its own (AnyCable's 8090, here --http_broadcast_port) with no
// authorization, and not on the main port; --http_broadcast_path and
// --broadcast_key move and guard it on the main port, in public mode too.
func TestBroadcastHTTPPorts(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	s := startServer(t, nil, "--public", "--broker", "none", "--broadcast_adapter", "http", "--http_broadcast_port", fmt.Sprint(port))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if !strings.Contains(s.Logs(), "Accept broadcast requests at http://"+addr+"/_broadcast (no authorization)") {
		t.Errorf("startup line missing:\n%s", s.Logs())
	}
	stream := uniqueStream(t, "s")
	c := dialWS(t, s, dialOpts{})
	c.welcome()
	q := quoted(c.subscribe(stream))
	if r := postBroadcast(t, "http://"+addr+"/_broadcast", "", fmt.Sprintf(`{"stream":%q,"data":"1"}`, stream)); r.Status != 201 {
		t.Errorf("POST without a key: %d %s", r.Status, r.Body)
	}
	c.expect(`{"identifier":` + q + `,"message":1}`)
	if r := postBroadcast(t, "http://"+s.Main+"/_broadcast", "", `{"stream":"x","data":"1"}`); r.Status != 404 {
		t.Errorf("main port /_broadcast: %d", r.Status)
	}

	// --public keeps the key (AnyCable drops it), as it keeps the API's.
	k2 := startServer(t, nil, "--public", "--broker", "none", "--broadcast_adapter", "http", "--broadcast_key", "k", "--http_broadcast_path", "/pub")
	if !strings.Contains(k2.Logs(), "Accept broadcast requests at http://"+k2.Main+"/pub (authorization required)") {
		t.Errorf("startup line missing:\n%s", k2.Logs())
	}
	for _, c := range []struct {
		path, key string
		status    int
	}{{"/pub", "k", 201}, {"/pub", "x", 401}, {"/pub", "", 401}, {"/_broadcast", "k", 404}} {
		if r := postBroadcast(t, "http://"+k2.Main+c.path, c.key, `{"stream":"x","data":"1"}`); r.Status != c.status {
			t.Errorf("POST %s with key %q: %d, want %d", c.path, c.key, r.Status, c.status)
		}
	}
}
