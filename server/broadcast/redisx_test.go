package broadcast

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
)

// redisxDB is the Redis database of this package's stream tests; streams
// are named per test, so nothing is flushed.
const redisxDB = 15

// redisxClient returns a client on the Redis the tests run against
// (127.0.0.1:6379); under -short the test is skipped.
func redisxClient(t *testing.T) *redis.Client {
	t.Helper()
	if testing.Short() {
		t.Skip("needs Redis at 127.0.0.1:6379 (make test runs it)")
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DB: redisxDB})
	t.Cleanup(func() { c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("Redis at 127.0.0.1:6379: %v", err)
	}
	return c
}

// redisxStream is a stream key of the test's own, deleted afterwards.
func redisxStream(t *testing.T, c *redis.Client) string {
	s := fmt.Sprintf("test:%s:%d", t.Name(), time.Now().UnixNano())
	t.Cleanup(func() { c.Del(context.Background(), s) })
	return s
}

// received records the payloads a handler was given, in order.
type received struct {
	mu       sync.Mutex
	payloads []string
	// fail, when set, decides the handler's answer per payload and try.
	fail func(payload string, try int) error
}

func (r *received) handle(_ context.Context, payload []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := string(payload)
	tries := 0
	for _, q := range r.payloads {
		if q == p {
			tries++
		}
	}
	r.payloads = append(r.payloads, p)
	if r.fail != nil {
		return r.fail(p, tries+1)
	}
	return nil
}

func (r *received) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.payloads)
}

// waitFor polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// logBuffer collects an adapter's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// runAdapter runs a until the returned stop is called (or the test ends);
// stop waits for Run to return.
func runUntilStopped(t *testing.T, a Adapter) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.Run(ctx); err != nil {
			t.Errorf("%s Run: %v", a.Name(), err)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Errorf("%s Run did not return", a.Name())
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// startRedisX runs a redisx adapter on stream and waits until its group
// exists.
func startRedisX(t *testing.T, c *redis.Client, cfg redisxConfig, h func(context.Context, []byte) error, log *logBuffer) (*RedisX, func()) {
	t.Helper()
	if log == nil {
		log = &logBuffer{}
	}
	a := newRedisXAdapter(c, cfg, h, log.logger())
	stop := runUntilStopped(t, a)
	eventually(t, "the consumer group", func() bool {
		groups, _ := c.XInfoGroups(context.Background(), cfg.Stream).Result()
		return len(groups) == 1 && groups[0].Name == a.cfg.Group
	})
	return a, stop
}

// xadd adds an entry as the anycable gem does: XADD <stream> * payload <json>.
func xadd(t *testing.T, c *redis.Client, stream string, fields ...string) string {
	t.Helper()
	id, err := c.XAdd(context.Background(), &redis.XAddArgs{Stream: stream, Values: fields}).Result()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// drained waits until the stream holds no entries and the group none
// pending.
func drained(t *testing.T, c *redis.Client, stream, group string) {
	t.Helper()
	ctx := context.Background()
	eventually(t, "an empty stream with nothing pending", func() bool {
		n, _ := c.XLen(ctx, stream).Result()
		p, err := c.XPending(ctx, stream, group).Result()
		return n == 0 && err == nil && p.Count == 0
	})
}

func TestRedisXDeliversGemEntries(t *testing.T) {
	c := redisxClient(t)
	stream := redisxStream(t, c)
	before := xadd(t, c, stream, "payload", `{"stream":"feed","data":"before the group"}`)
	var got received
	startRedisX(t, c, redisxConfig{RedisXOptions: RedisXOptions{Stream: stream, ReadBlock: 200 * time.Millisecond}}, got.handle, nil)

	payloads := []string{
		`{"stream":"feed","data":"{\"n\":1}"}`,
		`[{"stream":"feed","data":"{\"n\":2}"},{"stream":"feed","data":"{\"n\":3}"}]`,
		`{"stream":"feed","data":"{\"n\":4}","meta":{"transient":true,"exclude_socket":"sidA","broadcast_type":"custom"}}`,
		`{"command":"disconnect","payload":{"identifier":"{\"sid\":\"sidB\"}","reconnect":true}}`,
	}
	for _, p := range payloads {
		xadd(t, c, stream, "payload", p)
	}
	// Other fields are ignored.
	xadd(t, c, stream, "payload", `{"stream":"feed","data":"6"}`, "extra", "ignored")
	want := append(payloads, `{"stream":"feed","data":"6"}`)
	eventually(t, "every entry", func() bool { return len(got.all()) >= len(want) })
	if g := got.all(); !slices.Equal(g, want) {
		t.Errorf("delivered\n%q\nwant\n%q", g, want)
	}
	// The entry added before the group existed stays unread, the others
	// are acknowledged and deleted.
	eventually(t, "handled entries deleted", func() bool {
		ids, _ := c.XRange(context.Background(), stream, "-", "+").Result()
		return len(ids) == 1 && ids[0].ID == before
	})
	if p, err := c.XPending(context.Background(), stream, "bx").Result(); err != nil || p.Count != 0 {
		t.Errorf("pending after delivery: %+v, %v", p, err)
	}
}

func TestRedisXDropsMalformedEntries(t *testing.T) {
	c := redisxClient(t)
	stream := redisxStream(t, c)
	got := received{fail: func(p string, _ int) error {
		if p == "garbage" {
			return status.Error(codes.InvalidArgument, "request body is not valid JSON")
		}
		return nil
	}}
	var log logBuffer
	startRedisX(t, c, redisxConfig{RedisXOptions: RedisXOptions{Stream: stream, ReadBlock: 100 * time.Millisecond}}, got.handle, &log)
	noPayload := xadd(t, c, stream, "data", `{"stream":"feed","data":"x"}`)
	xadd(t, c, stream, "payload", "garbage")
	xadd(t, c, stream, "payload", `{"stream":"feed","data":"after"}`)

	// Both are acknowledged and deleted (so never retried).
	drained(t, c, stream, "bx")
	if g := got.all(); !slices.Equal(g, []string{"garbage", `{"stream":"feed","data":"after"}`}) {
		t.Errorf("handled %q", g)
	}
	l := log.String()
	if !strings.Contains(l, "no payload field") || !strings.Contains(l, noPayload) {
		t.Errorf("no warning naming the entry without payload:\n%s", l)
	}
	if !strings.Contains(l, "not deliverable") || !strings.Contains(l, "payload=garbage") {
		t.Errorf("no warning naming the undecodable payload:\n%s", l)
	}
}

// TestRedisXThroughTheHandler: the adapter New builds hands the gem's
// entries to the sink as publications and commands, drops malformed ones
// and retries those the sink cannot take.
func TestRedisXThroughTheHandler(t *testing.T) {
	c := redisxClient(t)
	stream := redisxStream(t, c)
	sink := &sinkCalls{}
	var log logBuffer
	o := DefaultOptions()
	o.Redis, o.NodeID = c, "node-a"
	o.RedisX.Stream, o.RedisX.ReadBlock = stream, 100*time.Millisecond
	a, err := New(NameRedisX, o, sink, log.logger())
	if err != nil {
		t.Fatal(err)
	}
	if a.Name() != "redisx" || a.(*RedisX).Consumer() != "node-a" {
		t.Errorf("name %q, consumer %q", a.Name(), a.(*RedisX).Consumer())
	}
	if d := a.Describe(); d != "Starting Redis broadcaster at 127.0.0.1:6379 (stream: "+stream+", group: bx, consumer: node-a)" {
		t.Errorf("Describe: %s", d)
	}
	runUntilStopped(t, a)
	eventually(t, "the consumer group", func() bool {
		groups, _ := c.XInfoGroups(context.Background(), stream).Result()
		return len(groups) == 1
	})
	for _, p := range []string{
		`{"stream":"feed","data":"{\"n\":1}"}`,
		`[{"stream":"feed","data":"{\"n\":2}"},{"stream":"feed","data":"{\"n\":3}"}]`,
		`{"stream":"feed","data":"{\"n\":4}","meta":{"transient":true,"exclude_socket":"sidA","broadcast_type":"custom"}}`,
		`{"stream":"feed","data":{"n":5}}`,
		`{"command":"disconnect","payload":{"identifier":"{\"sid\":\"sidB\"}","reconnect":true}}`,
	} {
		xadd(t, c, stream, "payload", p)
	}
	want := []string{
		`publish {"publications":[{"stream":"feed","data":"{\"n\":1}"}]}`,
		`publish {"publications":[{"stream":"feed","data":"{\"n\":2}"},{"stream":"feed","data":"{\"n\":3}"}]}`,
		`publish {"publications":[{"stream":"feed","data":"{\"n\":4}","meta":{"exclude_socket":"sidA","broadcast_type":"custom","transient":true}}]}`,
		`disconnect {"identifier":"{\"sid\":\"sidB\"}","reconnect":true}`,
	}
	drained(t, c, stream, "bx")
	if g := sink.got(); !slices.Equal(g, want) {
		t.Errorf("sink got\n%s\nwant\n%s", strings.Join(g, "\n"), strings.Join(want, "\n"))
	}
	if l := log.String(); !strings.Contains(l, "malformed broadcast dropped") || !strings.Contains(l, "data must be a string") {
		t.Errorf("the malformed entry is not logged:\n%s", l)
	}

	// The broker is down for the first two tries.
	sink.fail(2, status.Error(codes.Unavailable, "publish: the broker or pub/sub (Redis, NATS) did not answer"))
	xadd(t, c, stream, "payload", `{"stream":"feed","data":"retried"}`)
	drained(t, c, stream, "bx")
	tries := 0
	for _, call := range sink.got() {
		if strings.Contains(call, "retried") {
			tries++
		}
	}
	if tries != 3 {
		t.Errorf("%d tries, want 3:\n%s", tries, strings.Join(sink.got(), "\n"))
	}
}

// sinkCalls is a Sink recording what it is given, as compact protojson.
type sinkCalls struct {
	mu    sync.Mutex
	calls []string
	// failing calls left to fail with failErr.
	failing int
	failErr error
}

func (s *sinkCalls) fail(n int, err error) {
	s.mu.Lock()
	s.failing, s.failErr = n, err
	s.mu.Unlock()
}

func (s *sinkCalls) record(kind string, m proto.Message) error {
	b, _ := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	var compact bytes.Buffer
	if err := json.Compact(&compact, b); err != nil {
		panic(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, kind+" "+compact.String())
	if s.failing > 0 {
		s.failing--
		return s.failErr
	}
	return nil
}

func (s *sinkCalls) Publish(_ context.Context, req *cablehubv1.PublishRequest) (*cablehubv1.PublishResponse, error) {
	if err := s.record("publish", req); err != nil {
		return nil, err
	}
	return &cablehubv1.PublishResponse{}, nil
}

func (s *sinkCalls) Disconnect(_ context.Context, req *cablehubv1.DisconnectRequest) (*cablehubv1.DisconnectResponse, error) {
	if err := s.record("disconnect", req); err != nil {
		return nil, err
	}
	return &cablehubv1.DisconnectResponse{}, nil
}

func (s *sinkCalls) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

func TestRedisXRetriesWhileTheBrokerIsUnavailable(t *testing.T) {
	c := redisxClient(t)
	stream := redisxStream(t, c)
	unavailable := status.Error(codes.Unavailable, "publish: the broker or pub/sub (Redis, NATS) did not answer")
	got := received{fail: func(p string, try int) error {
		if p == "never" || try < 3 {
			return unavailable
		}
		return nil
	}}
	var log logBuffer
	startRedisX(t, c, redisxConfig{RedisXOptions: RedisXOptions{Stream: stream, ReadBlock: 100 * time.Millisecond}, maxDeliveries: 4}, got.handle, &log)

	// Delivered on the third try.
	xadd(t, c, stream, "payload", "late")
	drained(t, c, stream, "bx")
	if g := got.all(); !slices.Equal(g, []string{"late", "late", "late"}) {
		t.Errorf("tries %q, want three", g)
	}
	// Never deliverable: dropped after MaxDeliveries, with an error logged.
	xadd(t, c, stream, "payload", "never")
	drained(t, c, stream, "bx")
	n := 0
	for _, p := range got.all() {
		if p == "never" {
			n++
		}
	}
	if n != 4 {
		t.Errorf("tried %d times, want 4", n)
	}
	if l := log.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "deliveries=4") {
		t.Errorf("no error logged for the dropped entry:\n%s", l)
	}
}

func TestRedisXGroupHandlesEachEntryOnce(t *testing.T) {
	c := redisxClient(t)
	stream := redisxStream(t, c)
	var a, b received
	startRedisX(t, c, redisxConfig{RedisXOptions: RedisXOptions{Stream: stream}}, a.handle, nil)
	startRedisX(t, c, redisxConfig{RedisXOptions: RedisXOptions{Stream: stream}}, b.handle, nil)
	const n = 500
	pipe := c.Pipeline()
	for i := range n {
		pipe.XAdd(context.Background(), &redis.XAddArgs{Stream: stream, Values: []string{"payload", fmt.Sprint(i)}})
		if i%50 == 49 {
			if _, err := pipe.Exec(context.Background()); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond)
		}
	}
	drained(t, c, stream, "bx")
	count := map[string]int{}
	for _, p := range append(a.all(), b.all()...) {
		count[p]++
	}
	for i := range n {
		if count[fmt.Sprint(i)] != 1 {
			t.Errorf("entry %d handled %d times", i, count[fmt.Sprint(i)])
		}
	}
	if len(count) != n {
		t.Errorf("%d distinct entries handled, want %d", len(count), n)
	}
	t.Logf("node A handled %d, node B %d", len(a.all()), len(b.all()))
}

func TestRedisXReclaimsADeadConsumersEntries(t *testing.T) {
	c := redisxClient(t)
	stream := redisxStream(t, c)
	ctx := context.Background()
	if err := c.XGroupCreateMkStream(ctx, stream, "bx", "$").Err(); err != nil {
		t.Fatal(err)
	}
	xadd(t, c, stream, "payload", "orphan")
	// A node reads the entry and dies before acknowledging it.
	if _, err := c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "bx", Consumer: "dead", Streams: []string{stream, ">"}}).Result(); err != nil {
		t.Fatal(err)
	}
	var got received
	startRedisX(t, c, redisxConfig{RedisXOptions: RedisXOptions{Stream: stream, ReadBlock: 200 * time.Millisecond}}, got.handle, nil)
	drained(t, c, stream, "bx")
	if g := got.all(); !slices.Equal(g, []string{"orphan"}) {
		t.Errorf("handled %q", g)
	}
}

func TestRedisXShutdownLeavesPendingEntriesForOthers(t *testing.T) {
	c := redisxClient(t)
	stream := redisxStream(t, c)
	ctx := context.Background()
	// The first node is stopped while an entry waits for an unavailable
	// broker.
	stuck := received{fail: func(string, int) error { return status.Error(codes.Unavailable, "broker down") }}
	a, stopA := startRedisX(t, c, redisxConfig{RedisXOptions: RedisXOptions{Stream: stream}, maxDeliveries: 100}, stuck.handle, nil)
	xadd(t, c, stream, "payload", "pending")
	eventually(t, "the first try", func() bool { return len(stuck.all()) > 0 })
	stopA()
	p, err := c.XPending(ctx, stream, "bx").Result()
	if err != nil || p.Count != 1 || p.Consumers[a.Consumer()] != 1 {
		t.Fatalf("after shutdown, pending %+v (%v), want the entry still held by %s", p, err, a.Consumer())
	}
	// Another node picks it up.
	var got received
	b, stopB := startRedisX(t, c, redisxConfig{RedisXOptions: RedisXOptions{Stream: stream, ReadBlock: 200 * time.Millisecond}}, got.handle, nil)
	drained(t, c, stream, "bx")
	if g := got.all(); !slices.Equal(g, []string{"pending"}) {
		t.Errorf("handled %q", g)
	}
	// A consumer holding nothing leaves the group at shutdown.
	stopB()
	consumers, err := c.XInfoConsumers(ctx, stream, "bx").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, cons := range consumers {
		if cons.Name == b.Consumer() {
			t.Errorf("consumer %s with nothing pending still in the group: %+v", b.Consumer(), consumers)
		}
	}
}

func TestRedisXSurvivesRedisRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server")
	}
	port := freeTCPPort(t)
	srv := startRedisServer(t, port)
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), DialTimeout: time.Second})
	t.Cleanup(func() { c.Close() })
	var got received
	var log logBuffer
	a, _ := startRedisX(t, c, redisxConfig{RedisXOptions: RedisXOptions{Stream: "s", ReadBlock: 100 * time.Millisecond}}, got.handle, &log)
	xadd(t, c, "s", "payload", "before")
	eventually(t, "the first entry", func() bool { return len(got.all()) == 1 })

	srv.Process.Kill()
	srv.Wait()
	eventually(t, "Err to report the outage", func() bool { return a.Err() != nil })
	startRedisServer(t, port)
	// The restarted Redis has neither the stream nor the group: the adapter
	// creates them again and reads what was added meanwhile.
	xadd(t, c, "s", "payload", "after")
	eventually(t, "the entry after the restart", func() bool { return len(got.all()) == 2 })
	eventually(t, "Err to clear", func() bool { return a.Err() == nil })
	if g := got.all(); !slices.Equal(g, []string{"before", "after"}) {
		t.Errorf("handled %q", g)
	}
	if l := log.String(); !strings.Contains(l, "Redis is unavailable") || !strings.Contains(l, "resumed") {
		t.Errorf("outage not logged:\n%s", l)
	}
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRedisServer runs a redis-server of the test's own on port.
func startRedisServer(t *testing.T, port int) *exec.Cmd {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		bin = "/usr/bin/redis-server"
	}
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer c.Close()
	eventually(t, "redis-server to start", func() bool { return c.Ping(context.Background()).Err() == nil })
	return cmd
}
