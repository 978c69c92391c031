package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// hugeBroadcast is a well-formed 40 MB publication to stream: only its
// size is wrong (the default --api_max_body_size is 1 MiB).
func hugeBroadcast(stream string) string {
	head := fmt.Sprintf(`{"stream":%q,"data":"`, stream)
	return head + strings.Repeat("x", 40<<20-len(head)-2) + `"}`
}

// expectNumbered expects the broadcasts 1..n of stream, in order, each
// stamped with its offset (the huge one got none: it never reached the
// broker).
func expectNumbered(c *wsClient, s *server, q, stream string, n int) {
	c.t.Helper()
	for i := 1; i <= n; i++ {
		c.expect(fmt.Sprintf(`{"identifier":%s,"message":%d%s}`, q, i, s.stamp(stream, i)))
	}
}

// metricLine fails the test unless /metrics has a line matching re.
func metricLine(t *testing.T, s *server, re string) {
	t.Helper()
	body := do(t, "GET", "http://"+s.Main+"/metrics", "").Body
	if !regexp.MustCompile(re).MatchString(body) {
		t.Errorf("metrics lack %s:\n%s", re, grep(body, "cablehub_"))
	}
}

// TestBroadcastRedisHugePayload: a 40 MB payload PUBLISHed on the redis
// adapter's channel makes Redis drop the subscriber (its output buffer
// passes client-output-buffer-limit pubsub); the adapter subscribes again
// within milliseconds, not after a backoff step (AnyCable's and, before,
// Cablehub's: every broadcast of that second reached no one), so the 200
// broadcasts published once it says so all reach the subscriber. The
// loss and the return are logged once each and counted.
func TestBroadcastRedisHugePayload(t *testing.T) {
	t.Parallel()
	ch := uniqueChannel(t)
	s := startServer(t, nil, "--public", "--broadcast_adapter", "redis", "--redis_channel", ch, "--metrics_http", "/metrics")
	waitSubscribers(t, 6379, ch, 1)
	stream := uniqueStream(t, "big")
	c := dialWS(t, s, dialOpts{})
	c.welcome()
	q := quoted(c.subscribe(stream))
	rc := redisxClient(t)
	ctx := context.Background()

	if err := rc.Publish(ctx, ch, hugeBroadcast(stream)).Err(); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	for !strings.Contains(s.Logs(), "Redis broadcast channel restored") {
		if time.Since(sent) > 500*time.Millisecond {
			t.Fatalf("the adapter did not subscribe again within 500 ms of the huge message:\n%s", s.Logs())
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := 1; i <= 200; i++ {
		if err := rc.Publish(ctx, ch, fmt.Sprintf(`{"stream":%q,"data":"%d"}`, stream, i)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	expectNumbered(c, s, q, stream, 200)
	c.barrier()
	waitWarned(t, s, "Redis broadcast subscription lost, subscribing again at once")
	if n := strings.Count(s.Logs(), "Redis broadcast channel restored"); n != 1 {
		t.Errorf("%d lines about the return, want 1:\n%s", n, s.Logs())
	}
	metricLine(t, s, `(?m)^cablehub_dependency_lost_total\{component="broadcast:redis"\} 1$`)
	metricLine(t, s, `(?m)^cablehub_dependency_restored_total\{component="broadcast:redis"\} 1$`)
}

// TestBroadcastRedisXHugePayload: a 40 MB entry is acknowledged and
// deleted without being decoded (a WARN with its size, a count), and the
// 200 entries added right after it all reach the subscriber, which the
// huge one would have cut as too slow.
func TestBroadcastRedisXHugePayload(t *testing.T) {
	t.Parallel()
	rc := redisxClient(t)
	xstream := uniqueStream(t, "bx")
	t.Cleanup(func() { rc.Del(context.Background(), xstream) })
	s := startServer(t, nil, "--public", "--broadcast_adapter", "redisx", "--redis_url", redisURL(t, redisxDB), "--redisx_stream", xstream, "--metrics_http", "/metrics")
	waitGroup(t, rc, xstream)
	stream := uniqueStream(t, "big")
	c := dialWS(t, s, dialOpts{})
	c.welcome()
	q := quoted(c.subscribe(stream))

	gemXAdd(t, rc, xstream, "payload", hugeBroadcast(stream))
	for i := 1; i <= 200; i++ {
		gemXAdd(t, rc, xstream, "payload", fmt.Sprintf(`{"stream":%q,"data":"%d"}`, stream, i))
	}
	expectNumbered(c, s, q, stream, 200)
	c.barrier()
	waitStreamEmpty(t, rc, xstream)
	waitWarned(t, s, "broadcast dropped: larger than --api_max_body_size", fmt.Sprintf("size=%d", 40<<20), "limit=1048576")
	metricLine(t, s, `(?m)^cablehub_broadcast_too_large_total\{adapter="redisx"\} 1$`)
}

// TestBroadcastNATSHugePayload: on a NATS server that allows 64 MB
// messages (the default is 1 MB), a 40 MB message on the nats adapter's
// subject is dropped undecoded, and the 200 published right after it all
// reach the subscriber.
func TestBroadcastNATSHugePayload(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	conf := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("listen: 127.0.0.1:%d\nmax_payload: 64MB\n", port)), 0o600); err != nil {
		t.Fatal(err)
	}
	ns := exec.Command(serviceBinary(t, "nats-server"), "-c", conf)
	if err := ns.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Process.Kill(); ns.Wait() })
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	s := startServer(t, nil, "--public", "--broadcast_adapter", "nats", "--nats_servers", url, "--nats_channel", "bcast", "--metrics_http", "/metrics")
	waitAdapterUp(t, s, "nats")
	stream := uniqueStream(t, "big")
	c := dialWS(t, s, dialOpts{})
	c.welcome()
	q := quoted(c.subscribe(stream))
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	if err := nc.Publish("bcast", []byte(hugeBroadcast(stream))); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 200; i++ {
		if err := nc.Publish("bcast", []byte(fmt.Sprintf(`{"stream":%q,"data":"%d"}`, stream, i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	expectNumbered(c, s, q, stream, 200)
	c.barrier()
	waitWarned(t, s, "broadcast dropped: larger than --api_max_body_size", fmt.Sprintf("size=%d", 40<<20))
	metricLine(t, s, `(?m)^cablehub_broadcast_too_large_total\{adapter="nats"\} 1$`)
}

// TestRedisOutageLoggedOnce: with the Redis broker and pub/sub, Redis
// going away for a moment is logged when it happens (a WARN, however many
// calls fail during it) and when it is back (an INFO with the outage's
// length), once each, and counted, even with nothing published meanwhile.
func TestRedisOutageLoggedOnce(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	redisProc := startRedis(t, port)
	s := startServer(t, nil, "--public", "--broker", "redis", "--pubsub", "redis", "--broadcast_adapter", "",
		"--redis_url", fmt.Sprintf("redis://127.0.0.1:%d/0", port), "--metrics_http", "/metrics")
	waitHealth(t, s, 200)
	if logs := s.Logs(); strings.Contains(logs, "Redis connection lost") {
		t.Fatalf("Redis was lost before the test stopped it:\n%s", logs)
	}
	redisProc.Process.Kill()
	redisProc.Wait()
	waitWarned(t, s, "Redis connection lost", "context=redis", "component=redis")
	waitHealth(t, s, 503)
	startRedis(t, port)
	waitHealth(t, s, 200)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.Logs(), "Redis connection restored") {
		if time.Now().After(deadline) {
			t.Fatalf("no line about Redis being back:\n%s", s.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	logs := s.Logs()
	if strings.Count(logs, "Redis connection lost") != 1 || strings.Count(logs, "Redis connection restored") != 1 || strings.Contains(logs, "redis unavailable") {
		t.Errorf("want one line for the loss and one for the return:\n%s", logs)
	}
	metricLine(t, s, `(?m)^cablehub_dependency_lost_total\{component="redis"\} 1$`)
	metricLine(t, s, `(?m)^cablehub_dependency_restored_total\{component="redis"\} 1$`)
}
