package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/cablehub/cablehub/server/streams"
)

// dsOffset is the Durable Streams offset of position n in epoch.
func dsOffset(epoch string, n int) string { return fmt.Sprintf("%020d::%s", n, epoch) }

// dsEpoch reads a stream's epoch from its HEAD.
func dsEpoch(t *testing.T, base, stream string) string {
	t.Helper()
	r := do(t, "HEAD", base+"/ds/"+stream, "")
	_, epoch, ok := strings.Cut(r.Header.Get("Stream-Next-Offset"), "::")
	if r.Status != 200 || !ok {
		t.Fatalf("HEAD %s: %d %v", stream, r.Status, r.Header)
	}
	return epoch
}

func dsPublish(t *testing.T, s *server, stream, data string, headers ...string) {
	t.Helper()
	publish(t, s, fmt.Sprintf(`{"stream":%q,"data":%q}`, stream, data), headers...)
}

// TestDSCatchUp reads a stream from its start, from a position, from
// "now", through HEAD, with an ETag, and the refusals of malformed
// requests (T-DS1, T-DS2, T-DS6, T-DS7).
func TestDSCatchUp(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public", "--ds", "--broker", "memory")
	base := "http://" + s.Main
	for i := 0; !strings.Contains(s.Logs(), "Handle Durable Streams requests at http://"+s.Main+"/ds/*"); i++ {
		if i == 50 {
			t.Errorf("no startup line:\n%s", s.Logs())
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	r := do(t, "GET", base+"/ds/chat/room-42?offset=-1", "")
	if r.Status != 200 || r.Body != "[]" || r.Header.Get("Stream-Next-Offset") != "0" || r.Header.Get("Stream-Up-To-Date") != "true" {
		t.Fatalf("empty stream: %d %q %v", r.Status, r.Body, r.Header)
	}
	for i := 1; i <= 3; i++ {
		dsPublish(t, s, "chat/room-42", fmt.Sprintf(`{"id":%d}`, i))
	}
	dsPublish(t, s, "chat/room-42", "plain text")
	e := dsEpoch(t, base, "chat/room-42")
	for _, q := range []string{"?offset=-1", "?offset=0", "", "?offset="} {
		r = do(t, "GET", base+"/ds/chat/room-42"+q, "")
		if r.Status != 200 || r.Body != `[{"id":1},{"id":2},{"id":3},"plain text"]` || r.Header.Get("Stream-Next-Offset") != dsOffset(e, 4) {
			t.Errorf("%q: %d %q %v", q, r.Status, r.Body, r.Header)
		}
	}
	if got := r.Header.Get("Cache-Control"); got != "public, max-age=60, stale-while-revalidate=300" {
		t.Errorf("cache-control %q", got)
	}
	if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-Content-Type-Options") != "nosniff" || !regexp.MustCompile(`^\d+$`).MatchString(r.Header.Get("Stream-Cursor")) {
		t.Errorf("headers: %v", r.Header)
	}
	// Resume from a position, padded or not.
	for _, off := range []string{dsOffset(e, 1), "1::" + e, "00000000000000000001%3A%3A" + e} {
		r = do(t, "GET", base+"/ds/chat/room-42?offset="+off, "")
		if r.Status != 200 || r.Body != `[{"id":2},{"id":3},"plain text"]` {
			t.Errorf("from %s: %d %q", off, r.Status, r.Body)
		}
	}
	// At the tail: nothing, up to date.
	r = do(t, "GET", base+"/ds/chat/room-42?offset="+dsOffset(e, 4), "")
	if r.Status != 200 || r.Body != "[]" || r.Header.Get("Stream-Up-To-Date") != "true" {
		t.Errorf("at the tail: %d %q", r.Status, r.Body)
	}
	// ETag and If-None-Match.
	r = do(t, "GET", base+"/ds/chat/room-42?offset=-1", "")
	tag := r.Header.Get("ETag")
	if tag == "" {
		t.Fatal("no ETag")
	}
	if r = do(t, "GET", base+"/ds/chat/room-42?offset=-1", "", "If-None-Match: "+tag); r.Status != 304 || r.Body != "" {
		t.Errorf("If-None-Match: %d %q", r.Status, r.Body)
	}
	// "now": nothing, the tail, never stored.
	r = do(t, "GET", base+"/ds/chat/room-42?offset=now", "")
	if r.Status != 200 || r.Body != "[]" || r.Header.Get("Stream-Next-Offset") != dsOffset(e, 4) || r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("ETag") != "" {
		t.Errorf("now: %d %q %v", r.Status, r.Body, r.Header)
	}
	// HEAD: the tail; an unknown stream is at 0.
	r = do(t, "HEAD", base+"/ds/chat/room-42", "")
	if r.Status != 200 || r.Header.Get("Stream-Next-Offset") != dsOffset(e, 4) || r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("HEAD: %d %v", r.Status, r.Header)
	}
	if r = do(t, "HEAD", base+"/ds/nope", ""); r.Status != 200 || r.Header.Get("Stream-Next-Offset") != "0" {
		t.Errorf("HEAD unknown: %d %v", r.Status, r.Header)
	}
	dsRefusals(t, base, e)
}

// dsRefusals checks the error answers against stream chat/room-42 at 4 in
// epoch e.
func dsRefusals(t *testing.T, base, e string) {
	t.Helper()
	cases := []struct {
		method, target string
		want           int
	}{
		{"GET", "/ds/chat/room-42?live=bogus&offset=-1", 400},
		{"GET", "/ds/chat/room-42?live=long-poll", 400},
		{"GET", "/ds/chat/room-42?offset=abc", 400},
		{"GET", "/ds/chat/room-42?offset=-5", 400},
		{"GET", "/ds/chat/room-42?offset=2", 400},                  // no epoch
		{"GET", "/ds/chat/room-42?offset=" + dsOffset(e, 99), 400}, // past the tail
		{"GET", "/ds/", 400},                                       // no stream
		{"POST", "/ds/chat/room-42?offset=abc", 400},               // parameters first
		{"GET", "/ds/chat/room-42?offset=2::WRONG", 410},           // another epoch
		{"GET", "/ds/chat/room-42?offset=2::WRONG&live=long-poll", 410},
		{"GET", "/ds/chat/room-42?offset=2::WRONG&live=sse", 410},
		{"POST", "/ds/chat/room-42", 405},
		{"PUT", "/ds/chat/room-42", 405},
		{"DELETE", "/ds/chat/room-42", 405},
		{"GET", "/ds", 404},
		{"OPTIONS", "/ds/chat/room-42?offset=-1", 200},
	}
	for _, c := range cases {
		r := do(t, c.method, base+c.target, "")
		if r.Status != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.target, r.Status, c.want)
		}
		switch c.want {
		case 405:
			if r.Header.Get("Allow") != "GET, HEAD, OPTIONS" {
				t.Errorf("%s: Allow %q", c.method, r.Header.Get("Allow"))
			}
		case 410:
			if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Content-Type") != "" {
				t.Errorf("410 headers: %v", r.Header)
			}
		case 200:
			if !strings.Contains(r.Header.Get("Access-Control-Expose-Headers"), "Stream-Next-Offset") ||
				!strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "X-Signed") {
				t.Errorf("preflight: %v", r.Header)
			}
		}
	}
}

// TestDSLongPoll: a long-poll at the tail is woken by a publication, times
// out with 204 (with the offset and up to date), and answers at once when
// behind (T-DS3).
func TestDSLongPoll(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public", "--ds", "--broker", "memory", "--ds_poll_interval", "2")
	dsLongPoll(t, s, s, "feed")
}

// dsLongPoll runs the long-poll scenario: publications through pub, reads
// through read.
func dsLongPoll(t *testing.T, pub, read *server, stream string) {
	t.Helper()
	base := "http://" + read.Main
	dsPublish(t, pub, stream, `{"n":1}`)
	e := dsEpoch(t, base, stream)
	go func() {
		time.Sleep(300 * time.Millisecond)
		dsPublish(t, pub, stream, `{"n":2}`)
	}()
	start := time.Now()
	r := do(t, "GET", base+"/ds/"+stream+"?offset="+dsOffset(e, 1)+"&live=long-poll", "")
	if r.Status != 200 || r.Body != `[{"n":2}]` || r.Header.Get("Stream-Next-Offset") != dsOffset(e, 2) || time.Since(start) > 1500*time.Millisecond {
		t.Fatalf("woken: %d %q %v after %v", r.Status, r.Body, r.Header, time.Since(start))
	}
	start = time.Now()
	r = do(t, "GET", base+"/ds/"+stream+"?offset="+dsOffset(e, 2)+"&live=long-poll", "")
	if r.Status != 204 || r.Header.Get("Stream-Next-Offset") != dsOffset(e, 2) || r.Header.Get("Stream-Up-To-Date") != "true" ||
		r.Header.Get("Stream-Cursor") == "" || r.Header.Get("Cache-Control") != "no-store" || time.Since(start) < 1500*time.Millisecond {
		t.Errorf("timeout: %d %v after %v", r.Status, r.Header, time.Since(start))
	}
	r = do(t, "GET", base+"/ds/"+stream+"?offset=-1&live=long-poll", "")
	if r.Status != 200 || r.Body != `[{"n":1},{"n":2}]` {
		t.Errorf("behind: %d %q", r.Status, r.Body)
	}
	// "now" waits at once; a never-published stream is woken by its first.
	other := stream + "-new"
	go func() {
		time.Sleep(300 * time.Millisecond)
		dsPublish(t, pub, other, `"first"`)
	}()
	r = do(t, "GET", base+"/ds/"+other+"?offset=now&live=long-poll", "")
	if r.Status != 200 || r.Body != `["first"]` || !strings.HasSuffix(r.Header.Get("Stream-Next-Offset"), fmt.Sprintf("%020d", 1)+"::"+dsEpoch(t, base, other)) {
		t.Errorf("new stream: %d %q %v", r.Status, r.Body, r.Header)
	}
}

// sseEvents reads an SSE answer's events ("event\ndata") until n are read.
func sseEvents(t *testing.T, url string, n int, during func()) (*http.Response, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return resp, nil
	}
	if during != nil {
		go during()
	}
	var events []string
	var cur []string
	sc := bufio.NewScanner(resp.Body)
	for len(events) < n && sc.Scan() {
		if line := sc.Text(); line != "" {
			cur = append(cur, line)
			continue
		}
		events = append(events, strings.Join(cur, "\n"))
		cur = nil
	}
	return resp, events
}

var cursorField = regexp.MustCompile(`"streamCursor":"\d+"`)

// TestDSSSE: an SSE read sends the catch-up and a control event at once,
// then a data and a control event per publication, all up to date, and
// ends after --ds_sse_ttl (T-DS4, T-DS5).
func TestDSSSE(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public", "--ds", "--broker", "memory", "--ds_sse_ttl", "3")
	base := "http://" + s.Main
	dsPublish(t, s, "live", `{"id":1}`)
	dsPublish(t, s, "live", `{"id":2}`)
	e := dsEpoch(t, base, "live")
	resp, events := sseEvents(t, base+"/ds/live?offset=-1&live=sse", 4, func() {
		time.Sleep(200 * time.Millisecond)
		dsPublish(t, s, "live", "bare text")
	})
	want := []string{
		"event: data\ndata:[{\"id\":1},{\"id\":2}]",
		`event: control` + "\n" + `data:{"streamCursor":"C","streamNextOffset":"` + dsOffset(e, 2) + `","upToDate":true}`,
		"event: data\ndata:[\"bare text\"]",
		`event: control` + "\n" + `data:{"streamCursor":"C","streamNextOffset":"` + dsOffset(e, 3) + `","upToDate":true}`,
	}
	for i := range events {
		events[i] = cursorField.ReplaceAllString(events[i], `"streamCursor":"C"`)
	}
	if strings.Join(events, "\n\n") != strings.Join(want, "\n\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(events, "\n\n"), strings.Join(want, "\n\n"))
	}
	if resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("X-Accel-Buffering") != "no" {
		t.Errorf("headers: %v", resp.Header)
	}
	// At the tail of an empty stream: a control event at once.
	_, events = sseEvents(t, base+"/ds/empty/one?offset=-1&live=sse", 1, nil)
	if len(events) != 1 || cursorField.ReplaceAllString(events[0], `"streamCursor":"C"`) != "event: control\ndata:{\"streamCursor\":\"C\",\"streamNextOffset\":\"0\",\"upToDate\":true}" {
		t.Errorf("empty: %q", events)
	}
	// The answer ends after the TTL.
	start := time.Now()
	r := do(t, "GET", base+"/ds/live?offset=now&live=sse", "")
	if r.Status != 200 || time.Since(start) < 2500*time.Millisecond || !strings.Contains(r.Body, dsOffset(e, 3)) {
		t.Errorf("ttl: %d after %v: %q", r.Status, time.Since(start), r.Body)
	}
}

// TestDSAuth: readers authenticate like other clients (JWT here), and a
// stream needs a signed name for that very stream (T-DS8, with the
// signed-name check AnyCable lacks); --ds_skip_auth skips the first only.
func TestDSAuth(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--ds", "--norpc", "--jwt_secret", "jwtkey", "--streams_secret", "s3cr3t", "--broker", "memory", "--api_secret", "apikey")
	base := "http://" + s.Main
	dsPublish(t, s, "chat/room-42", `{"id":1}`, "Authorization: Bearer apikey")
	token := jwtToken(t, "jwtkey", jwt.MapClaims{"ext": `{"user":"u1"}`})
	signed := streams.Sign("chat/room-42", "s3cr3t")
	other := streams.Sign("secret_room", "s3cr3t")
	cases := []struct {
		query   string
		headers []string
		want    int
	}{
		{"", nil, 401},
		{"&jid=" + token, nil, 401},
		{"&jid=" + token + "&signed=" + signed, nil, 200},
		{"", []string{"X-JID: " + token, "X-Signed: " + signed}, 200},
		{"", []string{"X-JID: " + token, "X-Signed: " + other}, 401},
		{"", []string{"X-Signed: " + signed}, 401},
		{"", []string{"X-JID: " + token, "X-Signed: ImNoYXQvcm9vbS00MiI=--00"}, 401},
		{"&jid=bad&signed=" + signed, nil, 401},
	}
	for i, c := range cases {
		r := do(t, "GET", base+"/ds/chat/room-42?offset=-1"+c.query, "", c.headers...)
		if r.Status != c.want {
			t.Errorf("case %d: %d, want %d", i, r.Status, c.want)
		}
		if r.Status == 401 && r.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("case %d: 401 without WWW-Authenticate", i)
		}
		if r.Status == 200 && (r.Body != `[{"id":1}]` || !strings.HasPrefix(r.Header.Get("Cache-Control"), "private")) {
			t.Errorf("case %d: %q %v", i, r.Body, r.Header)
		}
	}
	// Long-poll and SSE authenticate too.
	if r := do(t, "GET", base+"/ds/chat/room-42?offset=now&live=long-poll&signed="+signed, ""); r.Status != 401 {
		t.Errorf("long-poll without JWT: %d", r.Status)
	}
	if r := do(t, "GET", base+"/ds/chat/room-42?offset=now&live=sse&signed="+signed, ""); r.Status != 401 {
		t.Errorf("SSE without JWT: %d", r.Status)
	}

	sk := startServer(t, nil, "--ds", "--ds_skip_auth", "--norpc", "--jwt_secret", "jwtkey", "--streams_secret", "s3cr3t", "--broker", "memory", "--api_secret", "apikey")
	dsPublish(t, sk, "chat/room-42", `{"id":1}`, "Authorization: Bearer apikey")
	if r := do(t, "GET", "http://"+sk.Main+"/ds/chat/room-42?offset=-1&signed="+signed, ""); r.Status != 200 || r.Body != `[{"id":1}]` {
		t.Errorf("skip auth, signed: %d %q", r.Status, r.Body)
	}
	if r := do(t, "GET", "http://"+sk.Main+"/ds/chat/room-42?offset=-1", ""); r.Status != 401 {
		t.Errorf("skip auth, unsigned: %d", r.Status)
	}
}

// TestDSRetention: history beyond --history_limit is gone (410 for a
// position before it), and what is kept is served (T-DS9).
func TestDSRetention(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public", "--ds", "--broker", "memory", "--history_limit", "5")
	base := "http://" + s.Main
	for i := 1; i <= 8; i++ {
		dsPublish(t, s, "r", fmt.Sprint(i))
	}
	e := dsEpoch(t, base, "r")
	r := do(t, "GET", base+"/ds/r?offset=-1", "")
	if r.Body != "[4,5,6,7,8]" || r.Header.Get("Stream-Next-Offset") != dsOffset(e, 8) {
		t.Errorf("kept: %q %v", r.Body, r.Header)
	}
	if r = do(t, "GET", base+"/ds/r?offset="+dsOffset(e, 2), ""); r.Status != 410 {
		t.Errorf("before the kept range: %d", r.Status)
	}
}

// TestDSNeedsHistory: --ds with --broker none does not start.
func TestDSNeedsHistory(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(binary, "--ds", "--broker", "none", "--port", "0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--ds needs a broker that keeps history") {
		t.Errorf("started, or said: %v %s", err, out)
	}
}

// TestDSRedis: on Redis, a stream published through node A is read on
// node B, and a long-poll on B is woken by a publication through A.
func TestDSRedis(t *testing.T) {
	t.Parallel()
	args := []string{"--public", "--ds", "--broker", "redis", "--redis_url", redisURL(t, 3), "--ds_poll_interval", "2"}
	a := startServer(t, nil, args...)
	b := startServer(t, nil, args...)
	stream := uniqueStream(t, "feed")
	dsLongPoll(t, a, b, stream)
	r := do(t, "GET", "http://"+a.Main+"/ds/"+stream+"?offset=-1", "")
	if r.Status != 200 || r.Body != `[{"n":1},{"n":2}]` {
		t.Errorf("on A: %d %q", r.Status, r.Body)
	}
	// SSE on B, live from a publication through A.
	_, events := sseEvents(t, "http://"+b.Main+"/ds/"+stream+"?offset=now&live=sse", 3, func() {
		time.Sleep(200 * time.Millisecond)
		dsPublish(t, a, stream, `{"n":3}`)
	})
	if len(events) != 3 || events[1] != "event: data\ndata:[{\"n\":3}]" {
		t.Errorf("SSE on B: %q", events)
	}
}

// TestDSJetStream: on the NATS JetStream broker, a stream published
// through node A is read on node B, and a long-poll on B is woken by a
// publication through A.
func TestDSJetStream(t *testing.T) {
	t.Parallel()
	a, b := jetstreamCluster(t, "--ds", "--ds_poll_interval", "2")
	stream := uniqueStream(t, "feed")
	dsLongPoll(t, a, b, stream)
	_, events := sseEvents(t, "http://"+b.Main+"/ds/"+stream+"?offset=-1&live=sse", 2, nil)
	if len(events) != 2 || events[0] != "event: data\ndata:[{\"n\":1},{\"n\":2}]" {
		t.Errorf("SSE on B: %q", events)
	}
}

// TestDSRPCAuth: without a JWT, a reader is identified by the RPC
// application's Connect, as a WebSocket client is: refused there, 401.
func TestDSRPCAuth(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--secret", "test-secret", "--public_streams", "--ds", "--rpc_host", rpcConnectApp(t))
	dsPublish(t, s, "feed", `{"id":1}`, "Authorization: Bearer 598bc7d3c9d5515311f23dc9ed694257b88e3f5fd8c746c60680fdc9c5caa580")
	base := "http://" + s.Main + "/ds/feed"
	if r := do(t, "GET", base+"?offset=-1", "", "Cookie: user=ann"); r.Status != 200 || r.Body != `[{"id":1}]` {
		t.Errorf("identified by Connect: %d %q", r.Status, r.Body)
	}
	if r := do(t, "GET", base+"?offset=-1", ""); r.Status != 401 {
		t.Errorf("refused by Connect: %d %q", r.Status, r.Body)
	}
	if r := do(t, "GET", base+"?offset=now&live=long-poll", ""); r.Status != 401 {
		t.Errorf("long-poll refused by Connect: %d", r.Status)
	}
}

// TestDSExpiredHistory: once a stream's history has expired, its tail
// offset stays where it was (offsets never go back) and a reader at it is
// up to date, not gone; the next publication follows it.
func TestDSExpiredHistory(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public", "--ds", "--broker", "memory", "--history_ttl", "1")
	base := "http://" + s.Main + "/ds/x"
	dsPublish(t, s, "x", "1")
	dsPublish(t, s, "x", "2")
	e := dsEpoch(t, "http://"+s.Main, "x")
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := do(t, "GET", base+"?offset=-1", "")
		if r.Body == "[]" {
			if r.Header.Get("Stream-Next-Offset") != dsOffset(e, 2) {
				t.Errorf("tail after expiry: %v", r.Header)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("history did not expire: %q", r.Body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if r := do(t, "GET", base+"?offset="+dsOffset(e, 2), ""); r.Status != 200 || r.Body != "[]" || r.Header.Get("Stream-Up-To-Date") != "true" {
		t.Errorf("at the old tail: %d %q", r.Status, r.Body)
	}
	if r := do(t, "GET", base+"?offset="+dsOffset(e, 1), ""); r.Status != 410 {
		t.Errorf("before the old tail: %d", r.Status)
	}
	dsPublish(t, s, "x", "3")
	if r := do(t, "GET", base+"?offset="+dsOffset(e, 2), ""); r.Body != "[3]" || r.Header.Get("Stream-Next-Offset") != dsOffset(e, 3) {
		t.Errorf("after the next publication: %q %v", r.Body, r.Header)
	}
}
