package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// redisCLI runs redis-cli against the Redis on port and returns its
// trimmed output.
func redisCLI(t *testing.T, port int, args ...string) string {
	t.Helper()
	// redis-cli waits for good on a Redis that accepts but does not
	// answer (SIGSTOPped, as the deadline and failover tests make one).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "redis-cli", append([]string{"-p", fmt.Sprint(port)}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli %v: %v %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// redisPublish is `redis-cli PUBLISH <channel> <payload>`, what the
// anycable gem's redis adapter sends; it returns how many subscribers
// got it.
func redisPublish(t *testing.T, port int, channel, payload string) int {
	t.Helper()
	n, err := strconv.Atoi(redisCLI(t, port, "PUBLISH", channel, payload))
	if err != nil {
		t.Fatalf("PUBLISH: %v", err)
	}
	return n
}

// waitSubscribers waits until channel has n subscribers in the Redis on
// port.
func waitSubscribers(t *testing.T, port int, channel string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	want := fmt.Sprintf("%s\n%d", channel, n)
	for redisCLI(t, port, "PUBSUB", "NUMSUB", channel) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s never had %d subscribers", channel, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// uniqueChannel is a Redis channel for one test (pub/sub channels are
// shared by every test using the Redis).
func uniqueChannel(t *testing.T) string {
	return "bcast-" + uniqueStream(t, "ch")
}

// TestBroadcastRedis runs AnyCable's redis adapter transcript: payloads
// PUBLISHed as the anycable gem does reach subscribers, stamped by the
// broker (AnyCable delivers them unstamped and passes forged positions
// through), in order, with meta and the disconnect command. A malformed
// payload is dropped with a WARN and does not stop the adapter.
func TestBroadcastRedis(t *testing.T) {
	t.Parallel()
	ch := uniqueChannel(t)
	s := startServer(t, nil, "--secret", "s3cr3t", "--noauth", "--public_streams", "--broadcast_adapter", "redis", "--redis_channel", ch)
	if !strings.Contains(s.Logs(), "Starting Redis broadcaster at localhost:6379 (channel: "+ch+")") {
		t.Errorf("startup line missing:\n%s", s.Logs())
	}
	waitSubscribers(t, 6379, ch, 1)
	stream := uniqueStream(t, "feed")
	p := newBroadcastPair(t, s, s, stream)
	pub := func(payload string) { redisPublish(t, 6379, ch, payload) }

	pub(fmt.Sprintf(`{"stream":%q,"data":"{\"n\":1}"}`, stream))
	p.both("", `{"n":1}`, s.stamp(stream, 1))
	pub(fmt.Sprintf(`[{"stream":%q,"data":"{\"n\":2}"},{"stream":%q,"data":"{\"n\":3}"}]`, stream, stream))
	p.both("", `{"n":2}`, s.stamp(stream, 2))
	p.both("", `{"n":3}`, s.stamp(stream, 3))
	pub(fmt.Sprintf(`{"stream":%q,"data":"{\"n\":4}","meta":{"exclude_socket":%q}}`, stream, p.sidA))
	p.b.expect(`{"identifier":` + p.q + `,"message":{"n":4}` + s.stamp(stream, 4) + `}`)
	pub(fmt.Sprintf(`{"stream":%q,"data":"{\"n\":5}","meta":{"transient":true,"broadcast_type":"custom"}}`, stream))
	p.both("custom", `{"n":5}`, "")
	pub(fmt.Sprintf(`{"stream":%q,"data":"{\"n\":6}","offset":99,"epoch":"fake"}`, stream))
	p.both("", `{"n":6}`, s.stamp(stream, 5))
	pub(`{"stream":"x","data":{"a":1}}`)
	pub(fmt.Sprintf(`{"stream":%q,"data":"{\"n\":7}"}`, stream))
	p.both("", `{"n":7}`, s.stamp(stream, 6))
	waitWarned(t, s, "malformed broadcast dropped", "data must be a string")
	pub(`{"command":"disconnect","payload":{"identifier":"{\"user\":\"b\"}","reconnect":false}}`)
	p.b.expect(`{"type":"disconnect","reason":"remote","reconnect":false}`)
	p.b.expectClose(1000, "Closed remotely")
	p.a.barrier()
}

// TestBroadcastRedisDefaultChannel: without flags both of AnyCable's
// default adapters run, and PUBLISH __anycable__ (the gem's default
// channel, shared with every other server the tests run) reaches the
// stream's subscribers.
func TestBroadcastRedisDefaultChannel(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--secret", "s3cr3t", "--noauth", "--public_streams")
	for _, line := range []string{"Starting Redis broadcaster at localhost:6379 (channel: __anycable__)", "Accept broadcast requests at http://" + s.Main + "/_broadcast (authorization required)"} {
		if !strings.Contains(s.Logs(), line) {
			t.Errorf("no %q in:\n%s", line, s.Logs())
		}
	}
	stream := uniqueStream(t, "feed")
	c := dialWS(t, s, dialOpts{})
	c.welcome()
	q := quoted(c.subscribe(stream))
	waitHealthJSON(t, s, func(h healthBody) bool { return h.Broadcast["redis"].Role == "listening" })
	redisPublish(t, 6379, "__anycable__", fmt.Sprintf(`{"stream":%q,"data":"{\"via\":\"redis\"}"}`, stream))
	c.expect(`{"identifier":` + q + `,"message":{"via":"redis"}` + s.stamp(stream, 1) + `}`)
	postBroadcast(t, "http://"+s.Main+"/_broadcast", broadcastKey, fmt.Sprintf(`{"stream":%q,"data":"{\"via\":\"http\"}"}`, stream))
	c.expect(`{"identifier":` + q + `,"message":{"via":"http"}` + s.stamp(stream, 2) + `}`)
}

// healthBody is what the tests read of /health.
type healthBody struct {
	Status    string   `json:"status"`
	Down      []string `json:"down"`
	Broadcast map[string]struct {
		Status   string `json:"status"`
		Error    string `json:"error"`
		Role     string `json:"role"`
		Required bool   `json:"required"`
	} `json:"broadcast"`
	code int
}

// waitHealthJSON polls /health until cond holds for it, or 20 s pass.
func waitHealthJSON(t *testing.T, s *server, cond func(healthBody) bool) healthBody {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := do(t, "GET", "http://"+s.Main+"/health", "")
		var h healthBody
		if err := json.Unmarshal([]byte(r.Body), &h); err != nil {
			t.Fatalf("/health: %v: %s", err, r.Body)
		}
		h.code = r.Status
		if cond(h) {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health never matched: %d %s", r.Status, r.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBroadcastRedisRecovery: broadcasts PUBLISHed to Redis are in the
// history, so a client that dropped gets the ones it missed when it
// restores its session, and live ones after.
func TestBroadcastRedisRecovery(t *testing.T) {
	t.Parallel()
	ch := uniqueChannel(t)
	s := startServer(t, nil, "--public", "--broadcast_adapter", "redis", "--redis_channel", ch)
	waitSubscribers(t, 6379, ch, 1)
	stream := uniqueStream(t, "feed")
	c := dialWS(t, s, dialOpts{})
	sid := c.welcome()
	id := c.subscribe(stream)
	q := quoted(id)
	pub := func(n int) { redisPublish(t, 6379, ch, fmt.Sprintf(`{"stream":%q,"data":"%d"}`, stream, n)) }
	pub(1)
	c.expect(`{"identifier":` + q + `,"message":1` + s.stamp(stream, 1) + `}`)
	c.conn.UnderlyingConn().Close()
	pub(2)
	pub(3)

	r := dialWS(t, s, dialOpts{query: "?sid=" + sid})
	if w := r.next(5 * time.Second); !strings.Contains(w, `"restored":true`) {
		t.Fatalf("restore: %s", w)
	}
	r.send(historyCmd(id, fmt.Sprintf(`{"streams":{%q:{"epoch":%q,"offset":1}}}`, stream, s.Epoch)))
	r.expect(`{"identifier":` + q + `,"message":2` + s.stamp(stream, 2) + `}`)
	r.expect(`{"identifier":` + q + `,"message":3` + s.stamp(stream, 3) + `}`)
	r.expect(`{"type":"confirm_history","identifier":` + q + `}`)
	pub(4)
	r.expect(`{"identifier":` + q + `,"message":4` + s.stamp(stream, 4) + `}`)
}

// TestBroadcastRedisOutage: the redis adapter outlives its Redis (AnyCable
// exits after ~40 s): the server keeps serving WebSockets, /health reports
// the adapter down (503, as it was listed explicitly), a WARN is logged
// per attempt, and after Redis is back a PUBLISH is delivered again.
func TestBroadcastRedisOutage(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	redisProc := startRedis(t, port)
	ch := uniqueChannel(t)
	s := startServer(t, nil, "--public", "--broadcast_adapter", "redis", "--redis_url", fmt.Sprintf("redis://127.0.0.1:%d/0", port), "--redis_channel", ch)
	waitSubscribers(t, port, ch, 1)
	stream := uniqueStream(t, "s")
	c := dialWS(t, s, dialOpts{})
	c.welcome()
	q := quoted(c.subscribe(stream))
	redisPublish(t, port, ch, fmt.Sprintf(`{"stream":%q,"data":"before"}`, stream))
	c.expect(`{"identifier":` + q + `,"message":"before"` + s.stamp(stream, 1) + `}`)

	redisProc.Process.Kill()
	redisProc.Wait()
	h := waitHealthJSON(t, s, func(h healthBody) bool { return h.Broadcast["redis"].Status == "unavailable" })
	if h.code != 503 || h.Status != "unavailable" || len(h.Down) != 1 || h.Down[0] != "broadcast:redis" || !h.Broadcast["redis"].Required ||
		!strings.Contains(h.Broadcast["redis"].Error, "subscribing to "+ch+" in Redis") {
		t.Errorf("/health while Redis is down: %d %+v", h.code, h)
	}
	// WebSockets are served meanwhile: the client, and a new one.
	c.barrier()
	n := dialWS(t, s, dialOpts{})
	n.welcome()
	n.subscribe(stream)
	waitWarned(t, s, "Redis broadcast channel unavailable, next attempt in")

	startRedis(t, port)
	waitHealthJSON(t, s, func(h healthBody) bool { return h.code == 200 && h.Broadcast["redis"].Role == "listening" })
	waitSubscribers(t, port, ch, 1)
	redisPublish(t, port, ch, fmt.Sprintf(`{"stream":%q,"data":"after"}`, stream))
	for _, cl := range []*wsClient{c, n} {
		cl.expect(`{"identifier":` + q + `,"message":"after"` + s.stamp(stream, 2) + `}`)
	}
	if !strings.Contains(s.Logs(), "Redis broadcast channel restored") {
		t.Errorf("no line about the restored channel:\n%s", s.Logs())
	}
}

// TestBroadcastRedisDefaultWithoutRedis: with the default adapter list and
// no Redis, the server runs: /health is 200 with the redis adapter's
// outage in its JSON, and WebSocket clients and the http adapter work.
func TestBroadcastRedisDefaultWithoutRedis(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--secret", "s3cr3t", "--noauth", "--public_streams", "--redis_url", fmt.Sprintf("redis://127.0.0.1:%d", freePort(t)))
	h := waitHealthJSON(t, s, func(h healthBody) bool { return h.Broadcast["redis"].Status == "unavailable" })
	if h.code != 200 || h.Status != "ok" || h.Broadcast["redis"].Required || h.Broadcast["http"].Status != "ok" {
		t.Errorf("/health: %d %+v", h.code, h)
	}
	stream := uniqueStream(t, "s")
	c := dialWS(t, s, dialOpts{})
	c.welcome()
	q := quoted(c.subscribe(stream))
	if r := postBroadcast(t, "http://"+s.Main+"/_broadcast", broadcastKey, fmt.Sprintf(`{"stream":%q,"data":"1"}`, stream)); r.Status != 201 {
		t.Fatalf("POST: %d %s", r.Status, r.Body)
	}
	c.expect(`{"identifier":` + q + `,"message":1` + s.stamp(stream, 1) + `}`)
}

// waitWarned waits until s has logged a WARN line containing every part.
func waitWarned(t *testing.T, s *server, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !warned(s.Logs(), parts...) {
		if time.Now().After(deadline) {
			t.Fatalf("no WARN with %q:\n%s", parts, s.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBroadcastRedisCluster: in a two-node cluster (Redis broker and
// pub/sub) a PUBLISH reaches the subscribers of both nodes once, stamped
// once (one node at a time listens to the channel, the other stands by);
// a client that dropped recovers the broadcasts it missed on the other
// node; when the listening node stops, the other takes over.
func TestBroadcastRedisCluster(t *testing.T) {
	t.Parallel()
	ch := uniqueChannel(t)
	a, b := redisCluster(t, 11, "--broadcast_adapter", "redis", "--redis_channel", ch)
	waitSubscribers(t, 6379, ch, 1)
	roles := map[*server]string{}
	for _, s := range []*server{a, b} {
		h := waitHealthJSON(t, s, func(h healthBody) bool { r := h.Broadcast["redis"].Role; return r == "listening" || r == "standby" })
		roles[s] = h.Broadcast["redis"].Role
	}
	if roles[a] == roles[b] {
		t.Fatalf("roles %q and %q, want one listening and one standby", roles[a], roles[b])
	}
	leader, survivor := a, b
	if roles[b] == "listening" {
		leader, survivor = b, a
	}

	stream := uniqueStream(t, "feed")
	ca, cb := dialWS(t, a, dialOpts{}), dialWS(t, b, dialOpts{})
	sidA := ca.welcome()
	cb.welcome()
	id := ca.subscribe(stream)
	cb.subscribe(stream)
	q := quoted(id)
	pub := func(n int) { redisPublish(t, 6379, ch, fmt.Sprintf(`{"stream":%q,"data":"%d"}`, stream, n)) }
	pub(1)
	first := ca.next(5 * time.Second)
	epoch := first[strings.Index(first, `"epoch":"`)+9:]
	epoch = epoch[:strings.Index(epoch, `"`)]
	stamp := func(n int) string { return fmt.Sprintf(`,"stream_id":%q,"epoch":%q,"offset":%d`, stream, epoch, n) }
	if first != `{"identifier":`+q+`,"message":1`+stamp(1)+`}` {
		t.Fatalf("first: %s", first)
	}
	cb.expect(`{"identifier":` + q + `,"message":1` + stamp(1) + `}`)
	// Exactly once on each node.
	ca.barrier()
	cb.barrier()

	// A drops; two broadcasts later it restores on B and recovers them.
	ca.conn.UnderlyingConn().Close()
	pub(2)
	pub(3)
	cb.expect(`{"identifier":` + q + `,"message":2` + stamp(2) + `}`)
	cb.expect(`{"identifier":` + q + `,"message":3` + stamp(3) + `}`)
	r := dialWS(t, b, dialOpts{query: "?sid=" + sidA})
	if w := r.next(5 * time.Second); !strings.Contains(w, `"restored":true`) {
		t.Fatalf("restore on the other node: %s", w)
	}
	r.send(historyCmd(id, fmt.Sprintf(`{"streams":{%q:{"epoch":%q,"offset":1}}}`, stream, epoch)))
	r.expect(`{"identifier":` + q + `,"message":2` + stamp(2) + `}`)
	r.expect(`{"identifier":` + q + `,"message":3` + stamp(3) + `}`)
	r.expect(`{"type":"confirm_history","identifier":` + q + `}`)

	// The listening node stops; the other takes the channel over.
	leader.stop()
	waitHealthJSON(t, survivor, func(h healthBody) bool { return h.Broadcast["redis"].Role == "listening" })
	waitSubscribers(t, 6379, ch, 1)
	c := dialWS(t, survivor, dialOpts{})
	c.welcome()
	c.subscribe(stream)
	pub(4)
	c.expect(`{"identifier":` + q + `,"message":4` + stamp(4) + `}`)
	c.barrier()
}

// TestBroadcastRedisNoFeedback: with Redis pub/sub a stream's publications
// travel on the Redis channel named as the stream, in the broadcast format;
// a stream named like --redis_channel travels on a channel of its own
// (pubsub.RedisEscape), so its publications never reach the redis adapter
// and are delivered once.
func TestBroadcastRedisNoFeedback(t *testing.T) {
	t.Parallel()
	ch := uniqueChannel(t)
	s := startServer(t, nil, "--public", "--broker", "none", "--pubsub", "redis", "--redis_url", redisURL(t, 0), "--broadcast_adapter", "redis", "--redis_channel", ch)
	waitSubscribers(t, 6379, ch, 1)
	c := dialWS(t, s, dialOpts{})
	c.welcome()
	q := quoted(c.subscribe(ch))
	if out := strings.Fields(redisCLI(t, 6379, "pubsub", "numsub", "cablehub:stream:"+ch)); len(out) != 2 || out[1] != "1" {
		t.Errorf("subscribers of the stream's channel: %q", out)
	}
	publish(t, s, fmt.Sprintf(`{"stream":%q,"data":"once"}`, ch))
	c.expect(`{"identifier":` + q + `,"message":"once"}`)
	c.barrier()
	if strings.Contains(s.Logs(), "malformed broadcast dropped") {
		t.Errorf("the adapter got the stream's publication:\n%s", s.Logs())
	}
}
