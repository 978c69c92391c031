package e2e

import (
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/cablehub/cablehub/server/streams"
)

// warned reports whether the server logged a WARN line containing every
// part.
func warned(logs string, parts ...string) bool {
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, "level=WARN") {
			continue
		}
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

// Item 1: without a streams secret, names signed with the empty key are
// rejected on $pubsub and Turbo, and the startup log says why.
func TestHardeningSignedStreamsFailClosed(t *testing.T) {
	for _, args := range [][]string{
		{"--noauth", "--turbo_streams"},
		{"--jwt_secret", "jj", "--noauth", "--turbo_streams"},
	} {
		s := startServer(t, nil, args...)
		if !warned(s.Logs(), "signed streams cannot be used", "--streams_secret", "--secret") ||
			!warned(s.Logs(), "Turbo streams cannot be used", "--turbo_streams_secret") {
			t.Errorf("%v: no WARN naming the flags:\n%s", args, s.Logs())
		}
		c := dialWS(t, s, dialOpts{})
		c.welcome()
		forged := streams.Sign("victim/1", "")
		for _, id := range []string{
			signedIdentifier(forged),
			`{"channel":"Turbo::StreamsChannel","signed_stream_name":` + quoted(forged) + `}`,
		} {
			c.send(subscribeCmd(id))
			c.expect(`{"type":"reject_subscription","identifier":` + quoted(id) + `}`)
		}
	}
}

// rssKiB reads a process's resident set size.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// Item 2: a cached session is restorable once, so restoring one big session
// over and over yields one restored session and fresh ones after it, and
// memory does not grow with the restores.
func TestHardeningRestoreOnce(t *testing.T) {
	s := startServer(t, nil, "--public")
	a := dialWS(t, s, dialOpts{})
	sid := a.welcome()
	pad := strings.Repeat("x", 1000)
	const subs = 200
	for i := range subs {
		a.send(subscribeCmd(identifier(fmt.Sprintf("big/%d/%s", i, pad))))
	}
	for range subs {
		if f := a.next(5 * time.Second); !strings.Contains(f, "confirm_subscription") {
			t.Fatalf("subscribe: %s", f)
		}
	}
	a.conn.Close()
	before := rssKiB(t, s.cmd.Process.Pid)
	restored := 0
	for range 100 {
		c := dialWS(t, s, dialOpts{query: "?sid=" + sid})
		w := c.next(5 * time.Second)
		if strings.Contains(w, `"restored":true`) {
			restored++
		} else if !strings.HasPrefix(w, `{"type":"welcome","sid":"`) {
			t.Fatalf("not a welcome: %.200s", w)
		}
	}
	if restored != 1 {
		t.Errorf("one cached session restored %d times, want once", restored)
	}
	// Before the fix each of the 100 connections held 200 restored
	// subscriptions (+tens of MiB); now 99 of them hold none.
	if after := rssKiB(t, s.cmd.Process.Pid); after > before*3/2+20<<10 {
		t.Errorf("RSS grew from %d KiB to %d KiB over 100 restores of one sid", before, after)
	}
}

// Item 3 (and issue 22, item 13): X-Request-ID never becomes the sid,
// whatever it holds, so no two live connections share one and no client
// chooses its own.
func TestHardeningRequestIDs(t *testing.T) {
	s := startServer(t, nil, "--public")
	sidRe := regexp.MustCompile(`^[A-Za-z0-9_-]{21}$`)
	seen := map[string]bool{}
	for _, id := range []string{"req-1.a:b_C", "req-1.a:b_C", strings.Repeat("c", 128), strings.Repeat("a", 129),
		strings.Repeat("b", 900_000), "a b", `x"y`, "<script>", "ü", "abcdefghijklmnopqrstu"} {
		c := dialWS(t, s, dialOpts{header: http.Header{"X-Request-Id": {id}}})
		sid := c.welcome()
		if sid == id || !sidRe.MatchString(sid) || seen[sid] {
			t.Errorf("X-Request-ID %.40q gave sid %.40q, want a new random one", id, sid)
		}
		seen[sid] = true
	}
}

// cpuSeconds is the CPU time a process has used so far.
func cpuSeconds(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ
}

// subscribeMany subscribes c to n new streams and waits for every answer.
func subscribeMany(t *testing.T, c *wsClient, prefix string, n int) {
	t.Helper()
	for i := range n {
		c.send(subscribeCmd(identifier(fmt.Sprintf("%s/%d", prefix, i))))
	}
	for range n {
		if f := c.next(10 * time.Second); !strings.Contains(f, "confirm_subscription") {
			t.Fatalf("subscribe: %s", f)
		}
	}
}

// Item 4: subscribing on the extended protocol costs the same per
// subscription however many a connection holds (4x the subscriptions take
// about 4x the CPU, not 16x), and a connection's subscriptions are capped.
func TestHardeningSubscribeCostAndCap(t *testing.T) {
	s := startServer(t, nil, "--public", "--max_subscriptions_per_connection", "6000")
	pid := s.cmd.Process.Pid
	cost := func(n int) float64 {
		c := dialWS(t, s, dialOpts{})
		c.welcome()
		start := cpuSeconds(t, pid)
		subscribeMany(t, c, fmt.Sprintf("cost%d", n), n)
		used := cpuSeconds(t, pid) - start
		c.conn.Close()
		return used
	}
	small, large := cost(1000), cost(4000)
	t.Logf("CPU: 1000 subscriptions %.2fs, 4000 subscriptions %.2fs", small, large)
	if large > 10*max(small, 0.05) {
		t.Errorf("4x the subscriptions cost %.1fx the CPU: quadratic", large/max(small, 0.05))
	}

	capped := startServer(t, nil, "--public", "--max_subscriptions_per_connection", "20")
	c := dialWS(t, capped, dialOpts{})
	c.welcome()
	subscribeMany(t, c, "cap", 20)
	over := identifier("cap/over")
	c.send(subscribeCmd(over))
	c.expect(`{"type":"reject_subscription","identifier":` + quoted(over) + `}`)
	c.send(`{"command":"unsubscribe","identifier":` + quoted(identifier("cap/0")) + `}`)
	c.send(subscribeCmd(over))
	c.expect(`{"type":"confirm_subscription","identifier":` + quoted(over) + `}`)
}

// Item 5: presence info and joins per connection are bounded, and with
// --presence_id_from_identifiers a client cannot take another's id.
func TestHardeningPresenceLimits(t *testing.T) {
	s := startServer(t, nil, "--public", "--max_presence_info_size", "100", "--max_presence_per_connection", "2")
	c := dialWS(t, s, dialOpts{})
	c.welcome()
	ids := []string{c.subscribe("p/1"), c.subscribe("p/2"), c.subscribe("p/3")}
	big := `{"id":"u","info":"` + strings.Repeat("i", 120) + `"}`
	c.send(joinCmd(ids[0], big))
	c.expect(`{"type":"presence","identifier":` + quoted(ids[0]) + `,"message":{"type":"error","reason":"presence_info_too_large"}}`)
	for _, id := range ids[:2] {
		c.send(joinCmd(id, `{"id":"u","info":"ok"}`))
		c.expect(`{"type":"presence","identifier":` + quoted(id) + `,"message":{"id":"u","info":"ok","type":"join"}}`)
	}
	c.send(joinCmd(ids[2], `{"id":"u","info":"ok"}`))
	c.expect(`{"type":"presence","identifier":` + quoted(ids[2]) + `,"message":{"type":"error","reason":"presence_limit"}}`)
	// Re-joining a stream it is present on is no new join.
	c.send(joinCmd(ids[0], `{"id":"u","info":"again"}`))
	c.send(`{"command":"presence","identifier":` + quoted(ids[0]) + `}`)
	c.expect(`{"type":"presence","identifier":` + quoted(ids[0]) + `,"message":{"type":"info","total":1,"records":[{"info":"again","id":"u"}]}}`)
	if r := do(t, "GET", presenceURL(s, "p%2F3"), ""); r.Body != `{"type":"info","total":0}` {
		t.Errorf("refused join recorded: %s", r.Body)
	}
}

func TestHardeningPresenceIDFromIdentifiers(t *testing.T) {
	s := startServer(t, nil, "--jwt_secret", "k", "--public_streams", "--presence_id_from_identifiers")
	token := func(user string) string {
		return jwtToken(t, "k", jwt.MapClaims{"ext": `{"user":"` + user + `"}`})
	}
	alice := dialWS(t, s, dialOpts{query: "?jid=" + token("alice")})
	alice.welcome()
	id := alice.subscribe("room")
	alice.send(joinCmd(id, `{"id":"alice","info":"real"}`))
	aliceID := `{"user":"alice"}`
	alice.expect(`{"type":"presence","identifier":` + quoted(id) + `,"message":{"id":` + quoted(aliceID) + `,"info":"real","type":"join"}}`)

	mallory := dialWS(t, s, dialOpts{query: "?jid=" + token("mallory")})
	mallory.welcome()
	mallory.subscribe("room")
	mallory.send(joinCmd(id, `{"id":`+quoted(aliceID)+`,"info":"fake"}`))
	mallory.expect(`{"type":"presence","identifier":` + quoted(id) + `,"message":{"id":` + quoted(`{"user":"mallory"}`) + `,"info":"fake","type":"join"}}`)
	mallory.send(`{"command":"presence","identifier":` + quoted(id) + `}`)
	mallory.expect(`{"type":"presence","identifier":` + quoted(id) + `,"message":{"type":"info","total":2,"records":[{"info":"real","id":` + quoted(aliceID) + `},{"info":"fake","id":` + quoted(`{"user":"mallory"}`) + `}]}}`)
}

// Item 5: a history reply to a client that cannot take it stops at the
// too_slow cut, and the server serves others meanwhile. Each entry alone is
// over the client's pending limit, so the cut comes with the first one
// whatever the client's speed.
func TestHardeningHistoryToSlowClient(t *testing.T) {
	s := startServer(t, nil, "--public", "--ws_max_pending_size", "50000")
	big := strings.Repeat("h", 60_000)
	for range 50 {
		publish(t, s, `{"stream":"hist","data":"`+big+`"}`)
	}
	c := dialWS(t, s, dialOpts{})
	c.welcome()
	c.send(`{"command":"subscribe","identifier":` + quoted(identifier("hist")) + `,"history":{"since":1}}`)
	c.conn.SetReadDeadline(time.Now().Add(20 * time.Second)) // a timeout fails below
	var last string
	for f := range c.frames {
		last = f
	}
	if last != `{"type":"disconnect","reason":"too_slow","reconnect":true}` {
		t.Errorf("last frame before the close: %.100s", last)
	}
	if ce := <-c.closed; ce.Code != 1000 {
		t.Errorf("closed with %d, want 1000", ce.Code)
	}
	d := dialWS(t, s, dialOpts{})
	d.welcome()
	d.subscribe("still-serving")
}

// Items 6 and 10: setups that leave everything refused, or listeners open
// without a token, are logged as WARN lines naming the flags. Without
// flags the RPC back end (on by default) authenticates connections, so
// only --norpc leaves nothing that can.
func TestHardeningStartupWarnings(t *testing.T) {
	s := startServer(t, nil, "--norpc")
	if !warned(s.Logs(), "every WebSocket connection will be refused", "API is off", "--rpc_host", "--secret", "--public") {
		t.Errorf("no WARN for a server nobody can use:\n%s", s.Logs())
	}
	if d := startServer(t, nil); warned(d.Logs(), "will be refused") {
		t.Errorf("WARN that connections will be refused with the RPC back end on:\n%s", d.Logs())
	}
	g := startServer(t, nil, "--noauth", "--grpc_port", fmt.Sprint(freePort(t)))
	if !warned(g.Logs(), "--grpc_port", "without a token", "--api_secret") {
		t.Errorf("no WARN for an open --grpc_port:\n%s", g.Logs())
	}
	a := startServer(t, nil, "--noauth", "--api_port", fmt.Sprint(freePort(t)))
	if !warned(a.Logs(), "--api_port", "without a token") {
		t.Errorf("no WARN for an open --api_port:\n%s", a.Logs())
	}
	ok := startServer(t, nil, "--secret", "s")
	if strings.Contains(ok.Logs(), "level=WARN") {
		t.Errorf("WARN for a complete setup:\n%s", ok.Logs())
	}
}
