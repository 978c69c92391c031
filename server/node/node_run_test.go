package node

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/cablehub/cablehub/server/broker"
	"github.com/cablehub/cablehub/server/hub"
	"github.com/cablehub/cablehub/server/metrics"
	"github.com/cablehub/cablehub/server/protocol"
)

// stuckBroker is the memory broker whose history reads and publishes hang
// until their context ends, handing each context to the test; its Run
// reports one presence id as expired at once.
type stuckBroker struct {
	*broker.Memory
	reads     chan context.Context
	publishes chan context.Context
}

func newStuckBroker() *stuckBroker {
	return &stuckBroker{
		Memory:    broker.NewMemory(broker.MemoryOptions{}),
		reads:     make(chan context.Context, 16),
		publishes: make(chan context.Context, 16),
	}
}

func (b *stuckBroker) HistorySince(ctx context.Context, _ string, _ int64) ([]protocol.Publication, error) {
	b.reads <- ctx
	<-ctx.Done()
	return nil, ctx.Err()
}

func (b *stuckBroker) HistoryFrom(ctx context.Context, _, _ string, _ uint64) ([]protocol.Publication, error) {
	b.reads <- ctx
	<-ctx.Done()
	return nil, ctx.Err()
}

func (b *stuckBroker) StampAndPublish(ctx context.Context, _ []protocol.Publication, _ broker.Publisher) (int, error) {
	b.publishes <- ctx
	<-ctx.Done()
	return 0, ctx.Err()
}

func (b *stuckBroker) Run(ctx context.Context, onLeft func([]broker.PresenceLeft)) {
	onLeft([]broker.PresenceLeft{{Stream: "room", ID: "alice"}})
	<-ctx.Done()
}

// runStuck runs a node on b until the returned stop is called, which
// returns once Run has.
func runStuck(t *testing.T, b *stuckBroker, opts Options) (*Node, func()) {
	t.Helper()
	n := New(hub.New(1), b, testRouter{}, metrics.New(), slog.New(slog.NewTextHandler(io.Discard, nil)), opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	return n, func() {
		cancel()
		select {
		case <-done:
		case <-time.After(waitFor):
			t.Fatal("Run did not return")
		}
	}
}

// received takes the next context from ch.
func received(t *testing.T, ch chan context.Context, what string) context.Context {
	t.Helper()
	select {
	case ctx := <-ch:
		return ctx
	case <-time.After(waitFor):
		t.Fatalf("no %s", what)
		return nil
	}
}

// endsSoon fails unless ctx ends within a second.
func endsSoon(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
		t.Fatalf("%s outlives the node's Run", what)
	}
}

// The catch-up after a pub/sub reconnect stops when the node's Run ends:
// its history read in progress is cancelled, no other stream is read, and
// its goroutine is gone.
func TestCatchUpEndsWithRun(t *testing.T) {
	baseline := runtime.NumGoroutine()
	b := newStuckBroker()
	n, stop := runStuck(t, b, Options{CatchUp: true})
	// The presence event of the broker's Run is abandoned with Run.
	received(t, b.publishes, "presence event")
	// A subscriber with a position in each stream, whose catch-up reads
	// history.
	c := newFakeConn()
	(&Gate{node: n, auth: headerAuth{}}).serve(c, httptest.NewRequest("GET", "/cable", nil), &SessionOptions{Extended: true})
	c.next(t, "welcome")
	for _, stream := range []string{"a", "b", "c"} {
		subscribe(t, c, stream)
		n.HandlePublication(&protocol.Publication{Stream: stream, Data: "1", Epoch: "e", Offset: 1})
		c.next(t, "publication")
	}
	n.HandleResubscribed([]string{"a", "b", "c"})
	read := received(t, b.reads, "history read")
	stop()
	endsSoon(t, read, "the catch-up's history read")
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left, %d before:\n%s", runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-b.reads:
		t.Fatal("the catch-up read another stream after Run ended")
	default:
	}
}

// The leave events of expired presence are published within brokerTimeout
// and abandoned when the node's Run ends.
func TestPresenceLeftBoundedByRun(t *testing.T) {
	b := newStuckBroker()
	_, stop := runStuck(t, b, Options{})
	publish := received(t, b.publishes, "presence event")
	if deadline, ok := publish.Deadline(); !ok || time.Until(deadline) > brokerTimeout {
		t.Fatalf("the leave event's publish has no deadline within %v (%v, %v)", brokerTimeout, deadline, ok)
	}
	stop()
	endsSoon(t, publish, "the leave event's publish")
}
