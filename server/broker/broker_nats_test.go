package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/cablehub/cablehub/server/protocol"
	"github.com/cablehub/cablehub/server/pubsub"
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
		expire: func() []PresenceLeft { return nil },
		idle: func(stream string) {
			waitFor(t, "the messages of "+stream+" to expire", func() bool {
				p, err := b.last(context.Background(), stream)
				return err == nil && p.seq == 0
			})
		},
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
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling
	}
}

// republished subscribes to what JetStream republishes of stream on the
// NATS pub/sub's subject, as a node listening to the stream does.
func republished(t *testing.T, conn *nats.Conn, stream string) *collector {
	t.Helper()
	c := &collector{}
	sub, err := conn.Subscribe(pubsub.NATSStreamSubjectPrefix+pubsub.NATSStreamToken(stream), func(m *nats.Msg) {
		pubs, err := protocol.DecodeStreamMessages(m.Data)
		if err != nil {
			t.Errorf("republished %q: %v", m.Data, err)
			return
		}
		for i := range pubs {
			c.add(&pubs[i])
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	if err := conn.Flush(); err != nil {
		t.Fatal(err)
	}
	return c
}

// Two nodes publishing to one stream concurrently: each node receives
// every publication once, on the pub/sub's subject, offsets contiguous
// from 1 in one epoch, with meta carried along; transient publications
// bypass JetStream.
func TestNATSDeliversInSequenceAcrossNodes(t *testing.T) {
	opts := MemoryOptions{HistoryLimit: 1000, HistoryTTL: time.Minute}
	a, conn := newTestNATS(t, opts)
	b := connectNode(t, conn.ConnectedUrl(), opts)
	const stream = "chat room.1 *>"
	got := [2]*collector{republished(t, conn, stream), republished(t, b.conn, stream)}
	var transient collector
	var ps publisherFunc = func(_ context.Context, p []protocol.Publication) error {
		transient.add(&p[0])
		return nil
	}
	ctx := context.Background()
	const workers, each = 8, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			node := []*NATS{a, b}[w%2]
			for i := range each {
				p := []protocol.Publication{{Stream: stream, Data: fmt.Sprintf("%d-%d", w, i), ExcludeSocket: "sid-x", BroadcastType: "t"}}
				if _, err := node.StampAndPublish(ctx, p, nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for i := range got {
		waitFor(t, "deliveries", func() bool { return got[i].len() >= workers*each })
		got[i].mu.Lock()
		seen := map[string]bool{}
		epoch := got[i].pubs[0].Epoch
		for j, p := range got[i].pubs {
			if p.Offset != uint64(j+1) || p.Epoch != epoch || epoch == "" || p.Stream != stream || p.ExcludeSocket != "sid-x" || p.BroadcastType != "t" || seen[p.Data] {
				t.Fatalf("node %d delivery %d: %+v", i, j, p)
			}
			seen[p.Data] = true
		}
		got[i].mu.Unlock()
	}
	// A transient publication goes through the pub/sub, unstamped.
	if taken, err := a.StampAndPublish(ctx, []protocol.Publication{{Stream: stream, Data: "w", Transient: true}}, ps); err != nil || taken != 1 {
		t.Errorf("transient: taken %d, %v", taken, err)
	}
	if transient.len() != 1 || transient.pubs[0].Offset != 0 || transient.pubs[0].Epoch != "" {
		t.Errorf("transient publication not published through the pub/sub, unstamped: %+v", transient.pubs)
	}
}

// However many streams are published to, the broker makes one JetStream
// stream: a subject per stream, each bounded by the history limit.
func TestNATSOneJetStreamStreamForAllStreams(t *testing.T) {
	b, _ := newTestNATS(t, MemoryOptions{HistoryLimit: 3, HistoryTTL: time.Minute})
	ctx := context.Background()
	for i := range 200 {
		for range 5 {
			if err := b.Stamp(ctx, &protocol.Publication{Stream: fmt.Sprint("unique-", i), Data: "x"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var names []string
	for n := range b.js.StreamNames(ctx).Name() {
		names = append(names, n)
	}
	if len(names) != 1 || names[0] != natsHistoryStream {
		t.Errorf("JetStream streams: %v", names)
	}
	s, err := b.js.Stream(ctx, natsHistoryStream)
	if err != nil {
		t.Fatal(err)
	}
	if st := s.CachedInfo().State; st.Msgs != 200*3 || st.NumSubjects != 200 {
		t.Errorf("history stream holds %d messages on %d subjects, want 600 on 200", st.Msgs, st.NumSubjects)
	}
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
	if _, err := b.HistoryFrom(ctx, "s", old, 1); err != nil {
		t.Fatal(err)
	}
	// Lose everything.
	js := a.js
	names := js.StreamNames(ctx)
	for n := range names.Name() {
		if err := js.DeleteStream(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	p = &protocol.Publication{Stream: "s", Data: "2"}
	if err := b.Stamp(ctx, p); err != nil { // b knows the old position
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
// subjects, one per stream.
func TestNATSStreamNames(t *testing.T) {
	b, _ := newTestNATS(t, MemoryOptions{HistoryLimit: 5})
	ctx := context.Background()
	long := strings.Repeat("very long stream name/", 400)
	for _, s := range []string{"a.b.c", "* > spaces\ttab", "ünïcode/🙂", long, long + "x", ""} {
		p := &protocol.Publication{Stream: s, Data: "x"}
		if err := b.Stamp(ctx, p); err != nil || p.Offset != 1 {
			t.Errorf("%q: %+v %v", s, p, err)
		}
		if n := historySubject(s); len(n) > 256 {
			t.Errorf("%q: subject of %d characters", s, len(n))
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
	benchStampAndPublish(b, func(int) string { return "bench" })
}

// BenchmarkStampAndPublishStreams is BenchmarkStampAndPublish with each
// publisher on a stream of its own.
func BenchmarkStampAndPublishStreams(b *testing.B) {
	benchStampAndPublish(b, func(w int) string { return fmt.Sprint("bench-", w) })
}

func benchStampAndPublish(b *testing.B, stream func(worker int) string) {
	opts := MemoryOptions{HistoryLimit: 100, HistoryTTL: time.Minute}
	run := func(b *testing.B, ap interface {
		StampAndPublish(context.Context, []protocol.Publication, Publisher) (int, error)
	}) {
		ctx := context.Background()
		var workers atomic.Int32
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			s := stream(int(workers.Add(1)))
			for pb.Next() {
				if _, err := ap.StampAndPublish(ctx, []protocol.Publication{{Stream: s, Data: `{"text":"hello"}`}}, nil); err != nil {
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
		run(b, NewRedis(client, prefix, opts, &RedisChannels{Name: func(stream string) string { return prefix + stream }}))
	})
}

// Idempotency keys are claimed in a KV bucket every node shares: of
// concurrent claims of one pair through two nodes exactly one wins.
func TestNATSIdempotencyAcrossNodes(t *testing.T) {
	opts := MemoryOptions{HistoryTTL: time.Minute}
	a, conn := newTestNATS(t, opts)
	b := connectNode(t, conn.ConnectedUrl(), opts)
	ctx := context.Background()
	for round := range 5 {
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				claimed, err := []*NATS{a, b}[i%2].ClaimIdempotencyKeys(ctx, []IdempotencyClaim{{Stream: "s", Key: fmt.Sprint("k", round)}}, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if claimed[0] {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Errorf("round %d: %d claims won", round, wins.Load())
		}
	}
}

// A NATS server that is not part of a cluster and restarts (here with its
// store intact; from an older copy it would be the same to the broker)
// may have gone back: every stream's next publication starts a new epoch,
// and history of the old one is refused at once, before any publication.
func TestNATSNewEpochAfterServerRestart(t *testing.T) {
	dir := t.TempDir()
	opts := &natsserver.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true, JetStream: true, StoreDir: dir}
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded NATS did not start")
	}
	port := ns.Addr().(*net.TCPAddr).Port
	conn, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	b, err := NewNATS(conn, MemoryOptions{HistoryLimit: 10, HistoryTTL: time.Minute}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var old protocol.Publication
	for i := range 3 {
		old = protocol.Publication{Stream: "s", Data: fmt.Sprint(i)}
		if err := b.Stamp(ctx, &old); err != nil {
			t.Fatal(err)
		}
	}
	before := conn.ConnectedServerId()
	ns.Shutdown()
	ns.WaitForShutdown()
	opts.Port = port
	ns, err = natsserver.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	waitFor(t, "the reconnect to the restarted server", func() bool {
		return conn.IsConnected() && conn.ConnectedServerId() != before
	})
	if _, err := b.HistoryFrom(ctx, "s", old.Epoch, old.Offset); !errors.Is(err, ErrHistoryUnavailable) {
		t.Errorf("history at the last position before the restart: %v", err)
	}
	p := protocol.Publication{Stream: "s", Data: "after"}
	if err := b.Stamp(ctx, &p); err != nil {
		t.Fatal(err)
	}
	if p.Epoch == old.Epoch || p.Offset != 1 {
		t.Fatalf("first stamp after the restart: %+v (before: %+v)", p, old)
	}
	if got, err := b.HistorySince(ctx, "s", 0); err != nil || len(got) != 1 || got[0].Data != "after" {
		t.Errorf("history after the restart: %+v %v", got, err)
	}
}

// A store that goes back (its last messages gone, as after a restore from
// an older copy) under a node that had seen them: that node ends the
// epoch at its next publication instead of reusing the offsets.
func TestNATSNewEpochWhenStoreGoesBack(t *testing.T) {
	b, _ := newTestNATS(t, MemoryOptions{HistoryLimit: 10, HistoryTTL: time.Minute})
	ctx := context.Background()
	var pubs []protocol.Publication
	for i := range 5 {
		p := protocol.Publication{Stream: "s", Data: fmt.Sprint(i)}
		if err := b.Stamp(ctx, &p); err != nil {
			t.Fatal(err)
		}
		pubs = append(pubs, p)
	}
	s, err := b.historyStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := info.State.LastSeq
	for _, seq := range []uint64{last, last - 1} {
		if err := s.DeleteMsg(ctx, seq); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.HistoryFrom(ctx, "s", pubs[0].Epoch, 3); !errors.Is(err, ErrHistoryUnavailable) {
		t.Errorf("history of an epoch whose store went back: %v", err)
	}
	p := protocol.Publication{Stream: "s", Data: "next"}
	if err := b.Stamp(ctx, &p); err != nil {
		t.Fatal(err)
	}
	if p.Epoch == pubs[0].Epoch || p.Offset != 1 {
		t.Errorf("first stamp after the store went back: %+v (before: %+v)", p, pubs[4])
	}
}

// Publications of one stream stamped at once go out together, and the
// stream still keeps exactly its last history_limit publications,
// however many JetStream messages hold them.
func TestNATSStampsTogether(t *testing.T) {
	b, _ := newTestNATS(t, MemoryOptions{HistoryLimit: 5, HistoryTTL: time.Minute})
	ctx := context.Background()
	const n = 32
	pubs := make([]protocol.Publication, n)
	var wg sync.WaitGroup
	for i := range pubs {
		pubs[i] = protocol.Publication{Stream: "s", Data: fmt.Sprint(i)}
		wg.Go(func() {
			if err := b.Stamp(ctx, &pubs[i]); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for _, p := range pubs {
		if p.Offset < 1 || p.Offset > n || seen[p.Offset] || p.Epoch != pubs[0].Epoch {
			t.Fatalf("stamp %+v (offsets so far %v)", p, seen)
		}
		seen[p.Offset] = true
	}
	got, err := b.HistorySince(ctx, "s", 0)
	if err != nil || len(got) != 5 || got[0].Offset != n-4 || got[4].Offset != n {
		t.Fatalf("history keeps %+v %v, want offsets %d..%d", got, err, n-4, n)
	}
	if got, err := b.HistoryFrom(ctx, "s", pubs[0].Epoch, n-3); err != nil || len(got) != 3 || got[0].Offset != n-2 {
		t.Errorf("history from %d: %+v %v", n-3, got, err)
	}
	if _, err := b.HistoryFrom(ctx, "s", pubs[0].Epoch, n-10); !errors.Is(err, ErrHistoryUnavailable) {
		t.Errorf("history from an offset no longer kept: %v", err)
	}
}
