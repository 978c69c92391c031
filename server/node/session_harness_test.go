package node

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cablehub/cablehub/server/broker"
	"github.com/cablehub/cablehub/server/hub"
	"github.com/cablehub/cablehub/server/identity"
	"github.com/cablehub/cablehub/server/metrics"
	"github.com/cablehub/cablehub/server/protocol"
	"github.com/cablehub/cablehub/server/streams"
)

// The in-process session tests drive sessions through fakeConn, a
// Connection in memory, on a node with the memory broker: the frames a
// client would read are asserted exactly, in order, without a socket.

// waitFor bounds how long a test waits for something asynchronous (a
// timer, a session's end); it is never slept, only polled against.
const waitFor = 10 * time.Second

// fakeConn is a Connection in memory. It records the frames a session
// sends and how the session closes it, and ends as ws.Conn does: once,
// after Close or Abort (or the client going away), never while a client
// message is being handled.
type fakeConn struct {
	mu       sync.Mutex
	changed  chan struct{} // closed, and replaced, on every change below
	frames   []string      // sent and not yet taken by the test
	closing  bool
	code     int // close code, 0 for none (or Abort)
	reason   string
	aborted  bool
	finished bool
	served   bool
	endTaken bool
	handle   func([]byte)
	end      func()
	onSlow   func()

	handling sync.Mutex    // held while handle or end runs: one at a time
	ended    chan struct{} // closed once end has returned
}

func newFakeConn() *fakeConn {
	return &fakeConn{changed: make(chan struct{}), ended: make(chan struct{})}
}

func (c *fakeConn) OnSlow(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onSlow = f
}

func (c *fakeConn) Send(frame, _ []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	c.frames = append(c.frames, string(frame))
	c.notify()
	return true
}

func (c *fakeConn) Close(code int, reason string, last []byte) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing, c.code, c.reason = true, code, reason
	if last != nil {
		c.frames = append(c.frames, string(last))
	}
	c.notify()
	c.mu.Unlock()
	c.finish()
}

func (c *fakeConn) Abort() {
	c.mu.Lock()
	c.closing, c.aborted = true, true
	c.notify()
	c.mu.Unlock()
	c.finish()
}

func (c *fakeConn) Serve(handle func([]byte), end func()) {
	c.mu.Lock()
	c.handle, c.end, c.served = handle, end, true
	run, end := c.takeEnd()
	c.mu.Unlock()
	if run {
		go c.runEnd(end)
	}
}

// notify wakes whoever waits on a change; c.mu is held.
func (c *fakeConn) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// finish ends the connection: the session's end runs, once.
func (c *fakeConn) finish() {
	c.mu.Lock()
	c.finished = true
	run, end := c.takeEnd()
	c.mu.Unlock()
	if run {
		go c.runEnd(end)
	}
}

// takeEnd reports whether the end function is due now, and takes it; c.mu
// is held.
func (c *fakeConn) takeEnd() (bool, func()) {
	if !c.finished || !c.served || c.endTaken {
		return false, nil
	}
	c.endTaken = true
	return true, c.end
}

func (c *fakeConn) runEnd(end func()) {
	c.handling.Lock()
	defer c.handling.Unlock()
	if end != nil {
		end()
	}
	close(c.ended)
}

// command hands the session a client message, as the reader does: it
// returns once the session has handled it. A finished connection reads
// nothing more.
func (c *fakeConn) command(frame string) {
	c.handling.Lock()
	defer c.handling.Unlock()
	c.mu.Lock()
	handle, finished := c.handle, c.finished
	c.mu.Unlock()
	if handle != nil && !finished {
		handle([]byte(frame))
	}
}

// goAway is the client dropping the connection without a close frame.
func (c *fakeConn) goAway(t *testing.T) {
	t.Helper()
	c.finish()
	c.waitEnded(t)
}

func (c *fakeConn) waitEnded(t *testing.T) {
	t.Helper()
	select {
	case <-c.ended:
	case <-time.After(waitFor):
		t.Fatal("the session did not end")
	}
}

// await waits until cond (run under c.mu) holds.
func (c *fakeConn) await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		c.mu.Lock()
		ok, changed := cond(), c.changed
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			c.mu.Lock()
			defer c.mu.Unlock()
			t.Fatalf("still waiting for %s; pending frames: %q", what, c.frames)
		}
	}
}

// next takes the next frame, waiting for it.
func (c *fakeConn) next(t *testing.T, what string) string {
	t.Helper()
	c.await(t, what, func() bool { return len(c.frames) > 0 })
	c.mu.Lock()
	defer c.mu.Unlock()
	got := c.frames[0]
	c.frames = c.frames[1:]
	return got
}

// expect takes the next frames, waiting for them, and fails unless they
// are want, exactly and in order.
func (c *fakeConn) expect(t *testing.T, want ...string) {
	t.Helper()
	for i, w := range want {
		if got := c.next(t, fmt.Sprintf("frame %d: %s", i+1, w)); got != w {
			t.Fatalf("frame %d:\n got %s\nwant %s", i+1, got, w)
		}
	}
}

// expectNone fails if any frame is pending. It checks what the session has
// sent so far, so it follows actions that send synchronously (commands,
// deliveries); for the rest, a ping answered with the next frame shows
// that nothing came before it.
func (c *fakeConn) expectNone(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.frames) > 0 {
		t.Fatalf("unexpected frames: %q", c.frames)
	}
}

// expectClosed waits for the session to close the connection and checks
// the close code and reason.
func (c *fakeConn) expectClosed(t *testing.T, code int, reason string) {
	t.Helper()
	c.await(t, "a close", func() bool { return c.closing })
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.aborted || c.code != code || c.reason != reason {
		t.Fatalf("closed with %d %q (aborted %v), want %d %q", c.code, c.reason, c.aborted, code, reason)
	}
}

// testRouter accepts every identifier as the stream of that name, with
// whispers and presence allowed; "bench" is BenchmarkChannel (stream
// "all"), identifiers starting with "rejected" are rejected, and those
// starting with "app" are application channels.
type testRouter struct{}

func (testRouter) Subscribe(id string) (*streams.Subscription, error) {
	switch {
	case id == "bench":
		return &streams.Subscription{Stream: streams.BenchmarkStream, Benchmark: true}, nil
	case id == "" || strings.HasPrefix(id, "rejected"):
		return nil, streams.ErrRejected
	case strings.HasPrefix(id, "app"):
		return nil, streams.ErrNotRouted
	}
	return &streams.Subscription{Stream: id, Whisper: true, Presence: true}, nil
}

// headerAuth identifies a connection by its X-Identifiers header, expiring
// at X-Expires (unix milliseconds) when given; "bad" is refused as bad
// credentials, "expired" as an expired token, and "none" is left to the
// App.
type headerAuth struct{}

func (headerAuth) Authenticate(r *http.Request) (identity.Identity, error) {
	switch id := r.Header.Get("X-Identifiers"); id {
	case "bad":
		return identity.Identity{}, identity.ErrUnauthorized
	case "expired":
		return identity.Identity{}, identity.ErrExpired
	case "none":
		return identity.Identity{}, identity.ErrNotIdentified
	default:
		got := identity.Identity{Identifiers: id}
		if ms, err := strconv.ParseInt(r.Header.Get("X-Expires"), 10, 64); err == nil {
			got.Expires = time.UnixMilli(ms)
		}
		return got, nil
	}
}

// testSID names a test's session by its X-Test-Sid header.
func testSID(r *http.Request) string { return r.Header.Get("X-Test-Sid") }

// hookedBroker is the memory broker, with a hook that runs inside the next
// history read, after the history was taken: what it publishes reaches
// sessions while their replay is in progress. It records the contexts of
// the history reads.
type hookedBroker struct {
	*broker.Memory
	mu          sync.Mutex
	duringRead  func()
	historyCtxs []context.Context
	// duringPresenceDisconnect runs inside the next PresenceDisconnect: a
	// session's end, after its restore state was written.
	duringPresenceDisconnect func()
	// duringPresenceInfo runs inside the next PresenceInfo, before the
	// records are read.
	duringPresenceInfo func()
}

func (b *hookedBroker) PresenceInfo(ctx context.Context, stream string) (*broker.PresenceInfo, error) {
	b.mu.Lock()
	f := b.duringPresenceInfo
	b.duringPresenceInfo = nil
	b.mu.Unlock()
	if f != nil {
		f()
	}
	return b.Memory.PresenceInfo(ctx, stream)
}

func (b *hookedBroker) PresenceDisconnect(ctx context.Context, sid string) error {
	b.mu.Lock()
	f := b.duringPresenceDisconnect
	b.duringPresenceDisconnect = nil
	b.mu.Unlock()
	if f != nil {
		f()
	}
	return b.Memory.PresenceDisconnect(ctx, sid)
}

func (b *hookedBroker) HistoryFrom(ctx context.Context, stream, epoch string, offset uint64) ([]protocol.Publication, error) {
	pubs, err := b.Memory.HistoryFrom(ctx, stream, epoch, offset)
	b.afterRead(ctx)
	return pubs, err
}

func (b *hookedBroker) HistorySince(ctx context.Context, stream string, since int64) ([]protocol.Publication, error) {
	pubs, err := b.Memory.HistorySince(ctx, stream, since)
	b.afterRead(ctx)
	return pubs, err
}

// duringNextRead sets f to run inside the next history read.
func (b *hookedBroker) duringNextRead(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.duringRead = f
}

func (b *hookedBroker) afterRead(ctx context.Context) {
	b.mu.Lock()
	f := b.duringRead
	b.duringRead = nil
	b.historyCtxs = append(b.historyCtxs, ctx)
	b.mu.Unlock()
	if f != nil {
		f()
	}
}

// env is a node serving in-process sessions.
type env struct {
	node    *Node
	broker  *hookedBroker
	handler *Gate
	logs    *syncBuffer
}

// newEnv starts a node with opts, the memory broker (history and sessions
// kept a minute, presence presenceTTL after a disconnect) and testRouter.
func newEnv(t testing.TB, opts Options) *env {
	t.Helper()
	return newEnvWith(t, opts, broker.MemoryOptions{
		SessionsTTL: time.Minute, HistoryTTL: time.Minute, PresenceTTL: presenceTTL,
	})
}

// newEnvWith is newEnv with a memory broker of bopts.
func newEnvWith(t testing.TB, opts Options, bopts broker.MemoryOptions) *env {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b := &hookedBroker{Memory: broker.NewMemory(bopts)}
	n := New(hub.New(4), b, testRouter{}, metrics.New(), log, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), waitFor)
		defer scancel()
		n.Shutdown(sctx)
		cancel()
		<-done
	})
	return &env{node: n, broker: b, handler: &Gate{node: n, auth: headerAuth{}, testSID: testSID}, logs: logs}
}

// presenceTTL is how long the test broker keeps the presence of a session
// that ended.
const presenceTTL = 100 * time.Millisecond

// open serves a new connection on the extended protocol, its request
// carrying headers ("Name: value"), and returns it unread.
func (e *env) open(target string, headers ...string) *fakeConn {
	r := httptest.NewRequest("GET", target, nil)
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ": ")
		r.Header.Set(name, value)
	}
	c := newFakeConn()
	e.handler.serve(c, r, &SessionOptions{Extended: true})
	return c
}

// connect opens a session with sid sid (and the given headers) and takes
// its welcome.
func (e *env) connect(t *testing.T, sid string, headers ...string) *fakeConn {
	t.Helper()
	c := e.open("/cable", append(headers, "X-Test-Sid: "+sid)...)
	c.expect(t, fmt.Sprintf(`{"type":"welcome","sid":%q}`, sid))
	return c
}

// subscribe subscribes c to identifier and takes the confirmation.
func subscribe(t *testing.T, c *fakeConn, identifier string) {
	t.Helper()
	c.command(fmt.Sprintf(`{"command":"subscribe","identifier":%q}`, identifier))
	c.expect(t, fmt.Sprintf(`{"type":"confirm_subscription","identifier":%q}`, identifier))
}

// publish broadcasts data (JSON values) to stream through the node, as the
// API does: stamped, kept in history and delivered to subscribers before
// it returns.
func (e *env) publish(t *testing.T, stream string, data ...string) {
	t.Helper()
	pubs := make([]protocol.Publication, len(data))
	for i, d := range data {
		pubs[i] = protocol.Publication{Stream: stream, Data: d}
	}
	if err := e.node.Broadcast(context.Background(), pubs); err != nil {
		t.Fatal(err)
	}
}

// history returns stream's history as the broker keeps it.
func (e *env) history(t *testing.T, stream string) []protocol.Publication {
	t.Helper()
	pubs, err := e.broker.Memory.HistorySince(context.Background(), stream, 0)
	if err != nil {
		t.Fatal(err)
	}
	return pubs
}

// frame is the frame delivering a stamped publication of stream (the
// identifier's stream with testRouter) to its subscription.
func (e *env) frame(stream, message string, offset int) string {
	return fmt.Sprintf(`{"identifier":%q,"message":%s,"stream_id":%q,"epoch":%q,"offset":%d}`,
		stream, message, stream, e.broker.Epoch(), offset)
}

// pingPong pings and takes the pong: the pong coming next proves that
// nothing was sent before it.
func pingPong(t *testing.T, c *fakeConn) {
	t.Helper()
	c.command(`{"command":"ping"}`)
	c.expect(t, `{"type":"pong"}`)
}
