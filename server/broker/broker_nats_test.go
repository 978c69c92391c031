package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/cablehub/cablehub/server/protocol"
)

// startJetStream runs an embedded nats-server with JetStream in a temporary
// store for one test, so tests never depend on a NATS of the machine's.
func startJetStream(t testing.TB) *natsserver.Server {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
		JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded NATS did not start")
	}
	t.Cleanup(ns.Shutdown)
	return ns
}

// newTestNATS returns a JetStream broker on a fresh embedded server.
func newTestNATS(t testing.TB, opts MemoryOptions) (*NATS, *nats.Conn) {
	t.Helper()
	ns := startJetStream(t)
	conn, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	b, err := NewNATS(conn, opts, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return b, conn
}

// natsCase is the suite's case for the JetStream broker.
func natsCase(t *testing.T, opts MemoryOptions) suiteCase {
	b, _ := newTestNATS(t, opts)
	c := &clock{t: time.Now()}
	b.now = c.now
	return suiteCase{b: b, clock: c,
		epoch: func() string {
			e, err := b.Epoch(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			return e
		},
		expire: func() []PresenceLeft { return nil },
	}
}

// connect returns another broker (another node) on b's NATS server.
func connectNode(t testing.TB, url string, opts MemoryOptions) *NATS {
	t.Helper()
	conn, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	b, err := NewNATS(conn, opts, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// collector records what a broker delivers.
type collector struct {
	mu   sync.Mutex
	pubs []protocol.Publication
}

func (c *collector) add(p *protocol.Publication) {
	c.mu.Lock()
	c.pubs = append(c.pubs, *p)
	c.mu.Unlock()
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pubs)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling
	}
}

// Two nodes publishing to one stream concurrently: each node delivers
// every publication once, offsets contiguous from 1 in one epoch, with
// meta carried along; transient publications bypass JetStream.
func TestNATSDeliversInSequenceAcrossNodes(t *testing.T) {
	opts := MemoryOptions{HistoryLimit: 1000, HistoryTTL: time.Minute}
	a, conn := newTestNATS(t, opts)
	b := connectNode(t, conn.ConnectedUrl(), opts)
	var got [2]collector
	var transient publisherFunc = func(_ context.Context, p []protocol.Publication) error {
		got[0].add(&p[0])
		return nil
	}
	a.Attach(got[0].add)
	b.Attach(got[1].add)
	const stream = "chat room.1 *>"
	a.Follow(stream)
	b.Follow(stream)
	ctx := context.Background()
	const workers, each = 8, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := []*NATS{a, b}[w%2]
			for i := range each {
				p := []protocol.Publication{{Stream: stream, Data: fmt.Sprintf("%d-%d", w, i), ExcludeSocket: "sid-x", BroadcastType: "t"}}
				if _, err := node.StampAndPublish(ctx, p, nil); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	epoch, _ := a.Epoch(ctx)
	for i := range got {
		waitFor(t, "deliveries", func() bool { return got[i].len() >= workers*each })
		got[i].mu.Lock()
		seen := map[string]bool{}
		for j, p := range got[i].pubs {
			if p.Offset != uint64(j+1) || p.Epoch != epoch || p.Stream != stream || p.ExcludeSocket != "sid-x" || p.BroadcastType != "t" || seen[p.Data] {
				t.Fatalf("node %d delivery %d: %+v", i, j, p)
			}
			seen[p.Data] = true
		}
		got[i].mu.Unlock()
	}
	// A transient publication goes through the pub/sub, right away.
	if taken, err := a.StampAndPublish(ctx, []protocol.Publication{{Stream: stream, Data: "w", Transient: true}}, transient); err != nil || taken != 1 {
		t.Errorf("transient: taken %d, %v", taken, err)
	}
	got[0].mu.Lock()
	if n := len(got[0].pubs); n != workers*each+1 || got[0].pubs[n-1].Data != "w" || got[0].pubs[n-1].Offset != 0 {
		t.Errorf("transient publication not published through the pub/sub, unstamped: %d deliveries", n)
	}
	got[0].mu.Unlock()
	a.Unfollow(stream)
	b.Unfollow(stream)
}

// publisherFunc is a Publisher.
type publisherFunc func(ctx context.Context, pubs []protocol.Publication) error

func (f publisherFunc) Publish(ctx context.Context, pubs []protocol.Publication) error {
	return f(ctx, pubs)
}

// When JetStream loses its state, the next publication creates a new
// epoch, offsets start again at 1, and history of the old epoch is
// refused; a node still holding the old epoch moves to the new one.
func TestNATSNewEpochAfterStateLoss(t *testing.T) {
	opts := MemoryOptions{HistoryLimit: 10, HistoryTTL: time.Minute}
	a, conn := newTestNATS(t, opts)
	b := connectNode(t, conn.ConnectedUrl(), opts)
	ctx := context.Background()
	p := &protocol.Publication{Stream: "s", Data: "1"}
	if err := a.Stamp(ctx, p); err != nil {
		t.Fatal(err)
	}
	old := p.Epoch
	if _, err := b.Epoch(ctx); err != nil {
		t.Fatal(err)
	}
	// Lose everything: the epoch bucket and the streams.
	js := a.js
	names := js.StreamNames(ctx)
	for n := range names.Name() {
		if err := js.DeleteStream(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	p = &protocol.Publication{Stream: "s", Data: "2"}
	if err := b.Stamp(ctx, p); err != nil { // b still holds the old epoch
		t.Fatal(err)
	}
	if p.Epoch == old || p.Offset != 1 {
		t.Fatalf("after state loss: %+v (old epoch %s)", p, old)
	}
	if _, err := a.HistoryFrom(ctx, "s", old, 1); !errors.Is(err, ErrHistoryUnavailable) {
		t.Errorf("history of the old epoch: %v", err)
	}
	if got, err := a.HistoryFrom(ctx, "s", p.Epoch, 1); err != nil || len(got) != 0 {
		t.Errorf("history of the new epoch: %v %v", got, err)
	}
	if got, err := a.HistorySince(ctx, "s", 0); err != nil || len(got) != 1 || got[0].Data != "2" || got[0].Epoch != p.Epoch {
		t.Errorf("history of the new epoch: %v %v", got, err)
	}
}

// Stream names of any characters and length map to valid, bounded
// JetStream names and subjects.
func TestNATSStreamNames(t *testing.T) {
	b, _ := newTestNATS(t, MemoryOptions{HistoryLimit: 5})
	ctx := context.Background()
	long := strings.Repeat("very long stream name/", 40)
	for _, s := range []string{"a.b.c", "* > spaces\ttab", "ünïcode/🙂", long, long + "x", ""} {
		p := &protocol.Publication{Stream: s, Data: "x"}
		if err := b.Stamp(ctx, p); err != nil || p.Offset != 1 {
			t.Errorf("%q: %+v %v", s, p, err)
		}
		if n := jsStreamName(p.Epoch, s); len(n) > 255 {
			t.Errorf("%q: name of %d characters", s, len(n))
		}
	}
}

// Of many concurrent restores of one sid on two nodes, exactly one wins.
func TestNATSRestoreRaces(t *testing.T) {
	opts := MemoryOptions{SessionsTTL: time.Minute}
	a, conn := newTestNATS(t, opts)
	b := connectNode(t, conn.ConnectedUrl(), opts)
	ctx := context.Background()
	for round := range 5 {
		sid := fmt.Sprint("sid-", round)
		if err := a.CacheSession(ctx, sid, []byte("state")); err != nil {
			t.Fatal(err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := []*NATS{a, b}[i%2].RestoreSession(ctx, sid); err == nil {
					wins.Add(1)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Errorf("round %d: %d restores won", round, wins.Load())
		}
	}
}

// BenchmarkStampAndPublish compares one-step stamping and publishing on the
// JetStream broker (embedded server, file storage) with the Redis broker
// (127.0.0.1:6379), with parallel publishers on one stream.
func BenchmarkStampAndPublish(b *testing.B) {
	opts := MemoryOptions{HistoryLimit: 100, HistoryTTL: time.Minute}
	run := func(b *testing.B, ap interface {
		StampAndPublish(context.Context, []protocol.Publication, Publisher) (int, error)
	}) {
		ctx := context.Background()
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := ap.StampAndPublish(ctx, []protocol.Publication{{Stream: "bench", Data: `{"text":"hello"}`}}, nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pubs/s")
	}
	b.Run("nats", func(b *testing.B) {
		nb, _ := newTestNATS(b, opts)
		run(b, nb)
	})
	b.Run("redis", func(b *testing.B) {
		client := testRedis(b, 2)
		prefix := fmt.Sprintf("cablehub-bench:%d:", time.Now().UnixNano())
		defer func() {
			keys, _ := client.Keys(context.Background(), prefix+"*").Result()
			if len(keys) > 0 {
				client.Del(context.Background(), keys...)
			}
		}()
		run(b, NewRedis(client, prefix, opts, func(stream string) string { return prefix + stream }))
	})
}

// An idempotency key is JetStream's message id: a retry is not stored
// again and answers with the first publication's offset.
func TestNATSIdempotencyKeyIsMessageID(t *testing.T) {
	c := natsCase(t, MemoryOptions{HistoryTTL: time.Minute})
	ctx := context.Background()
	first := protocol.Publication{Stream: "idem", Data: "1", IdempotencyKey: "k"}
	retry := first
	other := protocol.Publication{Stream: "idem", Data: "2", IdempotencyKey: "k2"}
	for _, p := range []*protocol.Publication{&first, &retry, &other} {
		if err := c.b.Stamp(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if retry.Offset != first.Offset || other.Offset != first.Offset+1 {
		t.Errorf("offsets: first %d, retry %d, other %d", first.Offset, retry.Offset, other.Offset)
	}
	if got, _ := c.b.HistorySince(ctx, "idem", 0); len(got) != 2 {
		t.Errorf("history holds %d publications, want 2", len(got))
	}
}
