package node

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cablehub/cablehub/server/broker"
	"github.com/cablehub/cablehub/server/hub"
	"github.com/cablehub/cablehub/server/metrics"
	"github.com/cablehub/cablehub/server/protocol"
	"github.com/cablehub/cablehub/server/pubsub"
	"github.com/cablehub/cablehub/server/streams"
)

// recordingPubSub records what reaches the cluster, the deliveries
// subscribers see, and fails the publications whose data is in fail.
type recordingPubSub struct {
	mu        sync.Mutex
	published []string // "stream:data"
	fail      map[string]bool
}

func (r *recordingPubSub) Publish(_ context.Context, pubs []protocol.Publication) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range pubs {
		if r.fail[p.Data] {
			return errors.New("pub/sub down")
		}
		r.published = append(r.published, p.Stream+":"+p.Data)
	}
	return nil
}

func (r *recordingPubSub) PublishCommand(context.Context, *pubsub.Command) error { return nil }
func (r *recordingPubSub) Subscribe(string) *pubsub.Ready                        { return pubsub.ReadyNow(nil) }
func (r *recordingPubSub) Unsubscribe(string)                                    {}

func (r *recordingPubSub) take() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := strings.Join(r.published, " ")
	r.published = nil
	return s
}

func newIdempotentNode(t *testing.T, b Broker, window time.Duration) (*Node, *recordingPubSub) {
	t.Helper()
	n := New(hub.New(1), b, streams.NewController(streams.Config{}), metrics.New(),
		slog.New(slog.NewTextHandler(io.Discard, nil)), Options{IdempotencyWindow: window})
	ps := &recordingPubSub{fail: map[string]bool{}}
	n.SetPubSub(ps)
	return n, ps
}

func pub(stream, data, key string) protocol.Publication {
	return protocol.Publication{Stream: stream, Data: data, IdempotencyKey: key}
}

func broadcast(t *testing.T, n *Node, pubs ...protocol.Publication) {
	t.Helper()
	if err := n.Broadcast(context.Background(), pubs); err != nil {
		t.Fatal(err)
	}
}

// A retry with the same stream and key succeeds without a delivery; other
// keys, no key, and the same key on another stream are delivered; in a
// batch each publication is checked on its own.
func TestBroadcastIdempotencyKey(t *testing.T) {
	for name, b := range map[string]Broker{"memory": broker.NewMemory(broker.MemoryOptions{}), "none": broker.None{}} {
		t.Run(name, func(t *testing.T) {
			n, ps := newIdempotentNode(t, b, time.Minute)
			broadcast(t, n, pub("chat", "1", "k1"))
			broadcast(t, n, pub("chat", "1 again", "k1"))
			broadcast(t, n, pub("chat", "2", "k2"), pub("chat", "3", ""), pub("other", "4", "k1"))
			broadcast(t, n, pub("chat", "5", "k3"), pub("chat", "5 again", "k1"), pub("chat", "6", ""), pub("chat", "5 in batch", "k3"))
			if got := ps.take(); got != "chat:1 chat:2 chat:3 other:4 chat:5 chat:6" {
				t.Errorf("delivered %q", got)
			}
			// Everything a duplicate: success, nothing delivered.
			broadcast(t, n, pub("chat", "x", "k1"), pub("chat", "y", "k2"))
			if got := ps.take(); got != "" {
				t.Errorf("duplicates delivered %q", got)
			}
		})
	}
}

// A duplicate is not stored in history either.
func TestBroadcastIdempotencyKeyNotStored(t *testing.T) {
	b := broker.NewMemory(broker.MemoryOptions{})
	n, _ := newIdempotentNode(t, b, time.Minute)
	broadcast(t, n, pub("chat", "1", "k"))
	broadcast(t, n, pub("chat", "1", "k"))
	broadcast(t, n, pub("chat", "2", ""))
	hist, err := b.HistorySince(context.Background(), "chat", 0)
	if err != nil || len(hist) != 2 || hist[0].Data != "1" || hist[1].Data != "2" || hist[1].Offset != 2 {
		t.Errorf("history %+v, %v", hist, err)
	}
}

// With a zero window keys are ignored.
func TestBroadcastIdempotencyDisabled(t *testing.T) {
	n, ps := newIdempotentNode(t, broker.NewMemory(broker.MemoryOptions{}), 0)
	broadcast(t, n, pub("chat", "1", "k"))
	broadcast(t, n, pub("chat", "2", "k"))
	if got := ps.take(); got != "chat:1 chat:2" {
		t.Errorf("delivered %q", got)
	}
}

// After the window the same key is delivered again.
func TestBroadcastIdempotencyWindowPasses(t *testing.T) {
	n, ps := newIdempotentNode(t, broker.NewMemory(broker.MemoryOptions{}), 50*time.Millisecond)
	broadcast(t, n, pub("chat", "1", "k"))
	deadline := time.Now().Add(5 * time.Second)
	for {
		broadcast(t, n, pub("chat", "retry", "k"))
		got := ps.take()
		if got == "chat:retry" {
			break
		}
		if got != "" && got != "chat:1" || time.Now().After(deadline) {
			t.Fatalf("delivered %q", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// When publishing fails, the keys of the publications not taken are
// released: a retry is delivered. The publications taken before the
// failure keep theirs.
func TestBroadcastIdempotencyReleasedOnFailure(t *testing.T) {
	n, ps := newIdempotentNode(t, broker.NewMemory(broker.MemoryOptions{}), time.Minute)
	ps.fail["2"] = true
	err := n.Broadcast(context.Background(), []protocol.Publication{pub("chat", "1", "k1"), pub("chat", "2", "k2"), pub("chat", "3", "k3")})
	if err == nil {
		t.Fatal("failed publish answered success")
	}
	if got := ps.take(); got != "chat:1" {
		t.Fatalf("delivered before the failure: %q", got)
	}
	delete(ps.fail, "2")
	broadcast(t, n, pub("chat", "1", "k1"), pub("chat", "2", "k2"), pub("chat", "3", "k3"))
	if got := ps.take(); got != "chat:2 chat:3" {
		t.Errorf("retry delivered %q, want the two not taken", got)
	}
}

// unsaidBroker fails every StampAndPublish without saying which
// publications ran (taken 0), as a failed Redis pipeline does.
type unsaidBroker struct{ *broker.Memory }

func (unsaidBroker) StampAndPublish(context.Context, []protocol.Publication, broker.Publisher) (int, error) {
	return 0, errors.New("redis down")
}

// When the broker cannot say which publications ran, every key of the call
// is released: a retry is delivered.
func TestBroadcastIdempotencyReleasedOnUnsaidFailure(t *testing.T) {
	m := broker.NewMemory(broker.MemoryOptions{})
	n, ps := newIdempotentNode(t, unsaidBroker{m}, time.Minute)
	if err := n.Broadcast(context.Background(), []protocol.Publication{pub("chat", "1", "k1"), pub("chat", "2", "k2")}); err == nil {
		t.Fatal("failed publish answered success")
	}
	n.broker = m
	broadcast(t, n, pub("chat", "1", "k1"), pub("chat", "2", "k2"))
	if got := ps.take(); got != "chat:1 chat:2" {
		t.Errorf("retry delivered %q", got)
	}
}

// failingStore cannot be reached.
type failingStore struct{}

func (failingStore) ClaimIdempotencyKeys(context.Context, []broker.IdempotencyClaim, time.Duration) ([]bool, error) {
	return nil, errors.New("redis down")
}

func (failingStore) ReleaseIdempotencyKeys(context.Context, []broker.IdempotencyClaim) error {
	return nil
}

// A store that cannot be asked fails the publish (nothing delivered), but
// only when a publication has a key.
func TestBroadcastIdempotencyStoreDown(t *testing.T) {
	n, ps := newIdempotentNode(t, broker.NewMemory(broker.MemoryOptions{}), time.Minute)
	n.idempotency = failingStore{}
	if err := n.Broadcast(context.Background(), []protocol.Publication{pub("chat", "1", ""), pub("chat", "2", "k")}); err == nil {
		t.Error("publish answered success with the store down")
	}
	broadcast(t, n, pub("chat", "3", ""))
	if got := ps.take(); got != "chat:3" {
		t.Errorf("delivered %q", got)
	}
}
