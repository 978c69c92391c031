package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
)

// requireRedis skips nothing: CI starts Redis; a missing one is a failure.
func redisURL(t *testing.T, db int) string {
	t.Helper()
	return fmt.Sprintf("redis://127.0.0.1:6379/%d", db)
}

// uniqueStream keeps Redis channels of different tests apart (pub/sub
// channels ignore the DB number).
func uniqueStream(t *testing.T, name string) string {
	return fmt.Sprintf("%s-%s-%d", t.Name(), name, time.Now().UnixNano())
}

func clusterDelivery(t *testing.T, a, b *server) {
	t.Helper()
	stream := uniqueStream(t, "chat")
	ca := dialWS(t, a, dialOpts{})
	ca.welcome()
	cb := dialWS(t, b, dialOpts{})
	bSID := cb.welcome()
	id := ca.subscribe(stream)
	cb.subscribe(stream)
	q := quoted(id)

	// Through A's REST API: both nodes' clients get it.
	publish(t, a, fmt.Sprintf(`{"stream":%q,"data":"{\"from\":\"a\"}"}`, stream))
	ca.expect(`{"identifier":` + q + `,"message":{"from":"a"}}`)
	cb.expect(`{"identifier":` + q + `,"message":{"from":"a"}}`)

	// Through B's gRPC API, a batch in order.
	c := dialGRPC(t, b.GRPC)
	ctx, cancel := withToken("")
	defer cancel()
	if _, err := c.Publish(ctx, &cablehubv1.PublishRequest{Publications: []*cablehubv1.Publication{
		{Stream: stream, Data: "1"}, {Stream: stream, Data: "2"},
	}}); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*wsClient{ca, cb} {
		cl.expect(`{"identifier":` + q + `,"message":1}`)
		cl.expect(`{"identifier":` + q + `,"message":2}`)
	}

	// exclude_socket names a session on the other node.
	publish(t, a, fmt.Sprintf(`{"stream":%q,"data":"3","meta":{"exclude_socket":%q}}`, stream, bSID))
	ca.expect(`{"identifier":` + q + `,"message":3}`)
	cb.barrier()
}

func TestClusterRedisPubSub(t *testing.T) {
	args := []string{"--public", "--broker", "none", "--pubsub", "redis", "--redis_url", redisURL(t, 1)}
	a := startServer(t, nil, args...)
	b := startServer(t, nil, args...)
	if !strings.Contains(a.Logs(), "Using Redis pub/sub") {
		t.Errorf("log:\n%s", a.Logs())
	}
	clusterDelivery(t, a, b)
}

func TestClusterRemoteDisconnect(t *testing.T) {
	args := []string{"--secret", "test-secret", "--noauth", "--public_streams", "--broker", "none", "--pubsub", "redis", "--redis_url", redisURL(t, 1)}
	a := startServer(t, nil, args...)
	b := startServer(t, nil, args...)
	tok := jwtToken(t, "test-secret", jwt.MapClaims{"ext": `{"user_id":"cluster"}`})
	ca := dialWS(t, a, dialOpts{query: "?jid=" + tok})
	cb := dialWS(t, b, dialOpts{query: "?jid=" + tok})
	ca.welcome()
	cb.welcome()
	r := do(t, "POST", "http://"+a.Main+"/api/disconnect", `{"identifier":"{\"user_id\":\"cluster\"}","reconnect":true}`,
		"Authorization: Bearer 598bc7d3c9d5515311f23dc9ed694257b88e3f5fd8c746c60680fdc9c5caa580")
	if r.Status != 201 {
		t.Fatalf("disconnect: %d %s", r.Status, r.Body)
	}
	for _, c := range []*wsClient{ca, cb} {
		c.expect(`{"type":"disconnect","reason":"remote","reconnect":true}`)
		c.expectClose(1000, "Closed remotely")
	}
}

func TestClusterEmbeddedNATS(t *testing.T) {
	port := freePort(t)
	addr := fmt.Sprintf("nats://127.0.0.1:%d", port)
	a := startServer(t, nil, "--public", "--broker", "none", "--pubsub", "nats", "--embed_nats", "--enats_addr", addr)
	b := startServer(t, nil, "--public", "--broker", "none", "--pubsub", "nats", "--nats_servers", addr)
	clusterDelivery(t, a, b)
}

func TestClusterEmbeddedNATSRoutes(t *testing.T) {
	clusterA, clusterB := freePort(t), freePort(t)
	a := startServer(t, nil, "--public", "--broker", "none", "--pubsub", "nats", "--embed_nats",
		"--enats_addr", fmt.Sprintf("nats://127.0.0.1:%d", freePort(t)),
		"--enats_cluster", fmt.Sprintf("nats://127.0.0.1:%d", clusterA),
		"--enats_cluster_routes", fmt.Sprintf("nats://127.0.0.1:%d", clusterB))
	b := startServer(t, nil, "--public", "--broker", "none", "--pubsub", "nats", "--embed_nats",
		"--enats_addr", fmt.Sprintf("nats://127.0.0.1:%d", freePort(t)),
		"--enats_cluster", fmt.Sprintf("nats://127.0.0.1:%d", clusterB),
		"--enats_cluster_routes", fmt.Sprintf("nats://127.0.0.1:%d", clusterA))
	// Routes take a moment to form: publish until B's client hears A.
	stream := uniqueStream(t, "routes")
	cb := dialWS(t, b, dialOpts{})
	cb.welcome()
	id := cb.subscribe(stream)
	deadline := time.Now().Add(15 * time.Second)
	for {
		publish(t, a, fmt.Sprintf(`{"stream":%q,"data":"ping"}`, stream))
		select {
		case f := <-cb.frames:
			if f == `{"identifier":`+quoted(id)+`,"message":"ping"}` {
				clusterDelivery(t, a, b)
				return
			}
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("embedded NATS servers never routed to each other")
		}
	}
}

// startRedis runs a redis-server of the test's own on a random port.
func startRedis(t *testing.T, port int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(serviceBinary(t, "redis-server"), "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	// Its own directory: redis-server loads any dump.rdb in its working
	// directory at startup, which would bring back data a test means lost.
	cmd.Dir = t.TempDir()
	if err := cmd.Start(); err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := exec.Command("redis-cli", "-p", fmt.Sprint(port), "ping").Output()
		if strings.TrimSpace(string(out)) == "PONG" {
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitHealth(t *testing.T, s *server, status int) response {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := do(t, "GET", "http://"+s.Main+"/health", "")
		if r.Status == status {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health stayed %d %s, want %d", r.Status, r.Body, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestClusterSurvivesRedisRestart(t *testing.T) {
	port := freePort(t)
	redisProc := startRedis(t, port)
	args := []string{"--public", "--broker", "none", "--pubsub", "redis", "--redis_url", fmt.Sprintf("redis://127.0.0.1:%d/0", port)}
	a := startServer(t, nil, args...)
	b := startServer(t, nil, args...)
	stream := uniqueStream(t, "s")
	ca, cb := dialWS(t, a, dialOpts{}), dialWS(t, b, dialOpts{})
	ca.welcome()
	cb.welcome()
	id := ca.subscribe(stream)
	cb.subscribe(stream)
	q := quoted(id)
	publish(t, a, fmt.Sprintf(`{"stream":%q,"data":"before"}`, stream))
	cb.expect(`{"identifier":` + q + `,"message":"before"}`)
	ca.expect(`{"identifier":` + q + `,"message":"before"}`)

	redisProc.Process.Kill()
	redisProc.Wait()
	r := waitHealth(t, a, 503)
	if !strings.Contains(r.Body, `"redis"`) || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("health while Redis is down: %s", r.Body)
	}
	if r := do(t, "POST", "http://"+a.Main+"/api/publish", fmt.Sprintf(`{"stream":%q,"data":"lost"}`, stream)); r.Status != 501 {
		t.Errorf("publish while Redis is down: %d %s", r.Status, r.Body)
	}
	c := dialGRPC(t, a.GRPC)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Publish(ctx, onePub(stream, "lost"))
	wantCode(t, err, 14) // UNAVAILABLE
	// Clients stay connected meanwhile.
	ca.barrier()
	cb.barrier()

	startRedis(t, port)
	waitHealth(t, a, 200)
	waitHealth(t, b, 200)
	// Subscriptions come back without client action; go-redis resubscribes
	// on its reconnect, which may trail the health check a little.
	// Each node's pub/sub re-subscribes on its own, so publish until both
	// clients have heard again.
	deadline := time.Now().Add(20 * time.Second)
	gotA, gotB := false, false
	for i := 0; !gotA || !gotB; i++ {
		publish(t, a, fmt.Sprintf(`{"stream":%q,"data":"after-%d"}`, stream, i))
		wait := time.After(300 * time.Millisecond)
	drain:
		for {
			select {
			case f := <-ca.frames:
				gotA = gotA || strings.Contains(f, `"after-`)
			case f := <-cb.frames:
				gotB = gotB || strings.Contains(f, `"after-`)
			case <-wait:
				break drain
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery did not resume after Redis came back (node A: %v, node B: %v)", gotA, gotB)
		}
	}
}

// redisCluster starts two nodes sharing a Redis broker (and pub/sub) in DB
// db, emptied first.
func redisCluster(t *testing.T, db int, extra ...string) (*server, *server) {
	t.Helper()
	if out, err := exec.Command("redis-cli", "-n", fmt.Sprint(db), "flushdb").CombinedOutput(); err != nil {
		t.Fatalf("flushdb: %v %s", err, out)
	}
	args := append([]string{"--public", "--broker", "redis", "--redis_url", redisURL(t, db)}, extra...)
	a := startServer(t, nil, args...)
	b := startServer(t, nil, args...)
	return a, b
}

func TestClusterRedisBrokerPresence(t *testing.T) {
	a, b := redisCluster(t, 3, "--presence_ttl", "1")
	if !strings.Contains(a.Logs(), "Using Redis broker") {
		t.Errorf("log:\n%s", a.Logs())
	}
	stream := uniqueStream(t, "room")
	ca := dialWS(t, a, dialOpts{})
	ca.welcome()
	cb := dialWS(t, b, dialOpts{})
	cb.welcome()
	id := ca.subscribe(stream)
	cb.subscribe(stream)
	q := quoted(id)

	ca.send(joinCmd(id, `{"id":"alice","info":{"node":"a"}}`))
	ca.expect(`{"type":"presence","identifier":` + q + `,"message":{"id":"alice","info":{"node":"a"},"type":"join"}}`)
	cb.expect(`{"type":"presence","identifier":` + q + `,"message":{"id":"alice","info":{"node":"a"},"type":"join"}}`)
	// The same id from the other node: no second join event anywhere.
	cb.send(joinCmd(id, `{"id":"alice","info":{"node":"b"}}`))
	cb.barrier()
	ca.barrier()
	want := `{"type":"info","total":1,"records":[{"id":"alice","info":{"node":"b"}}]}`
	for _, s := range []*server{a, b} {
		if r := do(t, "GET", presenceURL(s, stream), ""); r.Body != want {
			t.Errorf("presence through %s: %s", s.Main, r.Body)
		}
	}
	// A's client leaves: alice still has B's session.
	ca.send(`{"command":"leave","identifier":` + q + `}`)
	ca.barrier()
	// B's client drops: after the TTL, exactly one leave reaches A's client.
	cb.conn.UnderlyingConn().Close()
	ca.expect(`{"type":"presence","identifier":` + q + `,"message":{"id":"alice","type":"leave"}}`)
	ca.barrier()
	if r := do(t, "GET", presenceURL(a, stream), ""); r.Body != `{"type":"info","total":0}` {
		t.Errorf("after the drop: %s", r.Body)
	}
}

func TestClusterRedisBrokerHistoryOnAnotherNode(t *testing.T) {
	a, b := redisCluster(t, 4)
	restoreOnAnotherNode(t, a, b, a, uniqueStream(t, "feed"))
}

// restoreOnAnotherNode subscribes a client on node a to stream, drops it
// after the first publication (made through first) while two more go
// through b and a, restores its session on node b with ?sid=, and checks
// that history from its last (epoch, offset) brings exactly the missed
// range, followed by live messages. It returns the old sid, the restored
// client and the subscription's identifier.
func restoreOnAnotherNode(t *testing.T, a, b, first *server, stream string) (string, *wsClient, string) {
	t.Helper()
	ca := dialWS(t, a, dialOpts{})
	oldSID := ca.welcome()
	id := ca.subscribe(stream)
	q := quoted(id)
	publish(t, first, fmt.Sprintf(`{"stream":%q,"data":"1"}`, stream))
	msg := ca.next(5 * time.Second)
	epoch := msg[strings.Index(msg, `"epoch":"`)+9:]
	epoch = epoch[:strings.Index(epoch, `"`)]
	stamp := func(n int) string { return fmt.Sprintf(`,"stream_id":%q,"epoch":%q,"offset":%d`, stream, epoch, n) }
	if msg != `{"identifier":`+q+`,"message":1`+stamp(1)+`}` {
		t.Fatalf("first: %s", msg)
	}
	ca.conn.UnderlyingConn().Close()
	publish(t, b, fmt.Sprintf(`{"stream":%q,"data":"2"}`, stream))
	publish(t, a, fmt.Sprintf(`{"stream":%q,"data":"3"}`, stream))

	cb := dialWS(t, b, dialOpts{query: "?sid=" + oldSID})
	if w := cb.next(5 * time.Second); !strings.Contains(w, `"restored":true`) {
		t.Fatalf("restore on another node: %s", w)
	}
	cb.send(historyCmd(id, fmt.Sprintf(`{"streams":{%q:{"epoch":%q,"offset":1}}}`, stream, epoch)))
	cb.expect(`{"identifier":` + q + `,"message":2` + stamp(2) + `}`)
	cb.expect(`{"identifier":` + q + `,"message":3` + stamp(3) + `}`)
	cb.expect(`{"type":"confirm_history","identifier":` + q + `}`)
	publish(t, a, fmt.Sprintf(`{"stream":%q,"data":"4"}`, stream))
	cb.expect(`{"identifier":` + q + `,"message":4` + stamp(4) + `}`)
	return oldSID, cb, id
}

// concurrentPublishers publishes n messages to stream from several
// goroutines through the given nodes and checks that a client receives each
// exactly once, with offsets strictly increasing.
func concurrentPublishers(t *testing.T, client *wsClient, stream string, nodes []*server, n int) {
	t.Helper()
	errs := make(chan error, 16)
	for w := range 16 {
		go func() {
			node := nodes[w%len(nodes)]
			for i := w; i < n; i += 16 {
				r, err := postJSON(node, fmt.Sprintf(`{"stream":%q,"data":"%d"}`, stream, i))
				if err == nil && r != 201 {
					err = fmt.Errorf("status %d", r)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	last := 0
	for range n {
		f := client.next(10 * time.Second)
		i := strings.Index(f, `"offset":`)
		var off int
		fmt.Sscanf(f[i+9:], "%d", &off)
		if off <= last {
			t.Fatalf("offset %d after %d: %s", off, last, f)
		}
		last = off
		msg := f[strings.Index(f, `"message":`)+10 : strings.Index(f, `,"stream_id"`)]
		if seen[msg] {
			t.Fatalf("message %s twice", msg)
		}
		seen[msg] = true
	}
	client.barrier()
}

func postJSON(s *server, body string) (int, error) {
	resp, err := publishClient.Post("http://"+s.Main+"/api/publish", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// publishClient bounds every publication a test sends, so a request the
// server never answers fails the test instead of hanging it.
var publishClient = &http.Client{Timeout: 15 * time.Second}

func TestConcurrentPublishersKeepOffsetsInOrder(t *testing.T) {
	s := startServer(t, nil, "--public")
	c := dialWS(t, s, dialOpts{})
	c.welcome()
	c.subscribe("busy")
	concurrentPublishers(t, c, "busy", []*server{s}, 800)
}

func TestClusterConcurrentPublishersKeepOffsetsInOrder(t *testing.T) {
	a, b := redisCluster(t, 7)
	stream := uniqueStream(t, "busy")
	c := dialWS(t, b, dialOpts{})
	c.welcome()
	c.subscribe(stream)
	concurrentPublishers(t, c, stream, []*server{a, b}, 800)
}

// TestNATSDownAtStartThenUp: a node whose NATS is not up yet reports it,
// refuses publishes, and does not confirm a subscription it cannot listen
// to: the client is told to reconnect. Once NATS is up, subscribing works
// and publications arrive.
func TestNATSDownAtStartThenUp(t *testing.T) {
	port := freePort(t)
	addr := fmt.Sprintf("nats://127.0.0.1:%d", port)
	s := startServer(t, nil, "--public", "--broker", "none", "--pubsub", "nats", "--nats_servers", addr)
	r := waitHealth(t, s, 503)
	if !strings.Contains(r.Body, `"nats"`) {
		t.Errorf("health: %s", r.Body)
	}
	if r := do(t, "POST", "http://"+s.Main+"/api/publish", okPub); r.Status != 501 {
		t.Errorf("publish without NATS: %d", r.Status)
	}
	stream := uniqueStream(t, "n")
	down := dialWS(t, s, dialOpts{})
	down.welcome()
	down.send(subscribeCmd(identifier(stream)))
	down.expect(`{"type":"disconnect","reason":"stream_unavailable","reconnect":true}`)
	down.expectClose(1000, "")

	nats := exec.Command(serviceBinary(t, "nats-server"), "-a", "127.0.0.1", "-p", fmt.Sprint(port))
	if err := nats.Start(); err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	t.Cleanup(func() { nats.Process.Kill(); nats.Wait() })
	waitHealth(t, s, 200)
	c := dialWS(t, s, dialOpts{})
	c.welcome()
	id := c.subscribe(stream)
	publish(t, s, fmt.Sprintf(`{"stream":%q,"data":"up"}`, stream))
	c.expect(`{"identifier":` + quoted(id) + `,"message":"up"}`)
}

// serviceBinary finds a server binary the tests run themselves, also in
// sbin directories a non-login PATH may lack.
func serviceBinary(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/local/bin"} {
		p := dir + "/" + name
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	t.Fatalf("%s is not installed (.ci/run installs it)", name)
	return ""
}
