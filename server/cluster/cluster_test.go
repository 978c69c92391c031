package cluster

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

// bus connects Clusters as a pub/sub would: what one publishes reaches
// every member's Handle, the publisher's included, unless it is cut off.
type bus struct {
	mu      sync.Mutex
	members []*Cluster
	cut     map[*Cluster]bool
}

type busPort struct {
	b    *bus
	self **Cluster
}

func (p busPort) PublishCluster(_ context.Context, payload []byte) error {
	p.b.mu.Lock()
	if p.b.cut[*p.self] {
		p.b.mu.Unlock()
		return nil
	}
	members := slices.Clone(p.b.members)
	p.b.mu.Unlock()
	for _, m := range members {
		p.b.mu.Lock()
		cut := p.b.cut[m]
		p.b.mu.Unlock()
		if !cut {
			m.Handle(payload)
		}
	}
	return nil
}

type fakeLocal struct {
	conns  int
	counts []StreamCount
	// counters are publications, deliveries and RPC calls.
	counters [3]uint64
}

func (l fakeLocal) Counters() (uint64, uint64, uint64) {
	return l.counters[0], l.counters[1], l.counters[2]
}

func (l fakeLocal) Stats() (int, int, int) {
	subs := 0
	for _, c := range l.counts {
		subs += c.Subscribers
	}
	return l.conns, subs, len(l.counts)
}

func (l fakeLocal) StreamCounts(string) []StreamCount { return slices.Clone(l.counts) }

func (b *bus) join(local Local) *Cluster {
	var c *Cluster
	c = New(busPort{b, &c}, local, Options{Version: "v1"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.mu.Lock()
	b.members = append(b.members, c)
	b.mu.Unlock()
	return c
}

func announceAll(b *bus) {
	for _, c := range b.members {
		c.send(context.Background(), &message{Type: "announce", Node: c.id})
	}
}

func TestStreamsAreSummedAcrossNodes(t *testing.T) {
	b := &bus{cut: map[*Cluster]bool{}}
	a := b.join(fakeLocal{conns: 2, counts: []StreamCount{{"b", 1}, {"a", 2}, {"c", 1}}, counters: [3]uint64{7, 70, 3}})
	b.join(fakeLocal{conns: 1, counts: []StreamCount{{"a", 1}, {"d", 5}}, counters: [3]uint64{1, 10, 0}})
	announceAll(b)
	got, truncated, missing, err := a.Streams(context.Background(), "", 3)
	want := []StreamCount{{"a", 3}, {"b", 1}, {"c", 1}}
	if err != nil || !slices.Equal(got, want) || !truncated || len(missing) != 0 {
		t.Fatalf("Streams = %v %v %v %v, want %v truncated", got, truncated, missing, err, want)
	}
	nodes, missing, err := a.Nodes(context.Background())
	if err != nil || len(nodes) != 2 || len(missing) != 0 || nodes[0].Connections+nodes[1].Connections != 3 {
		t.Fatalf("Nodes = %+v %v %v", nodes, missing, err)
	}
	// Each node's counters travel with its answer.
	var pubs, deliveries, calls uint64
	for _, n := range nodes {
		pubs, deliveries, calls = pubs+n.PublishedTotal, deliveries+n.DeliveriesTotal, calls+n.RPCCallsTotal
	}
	if pubs != 8 || deliveries != 80 || calls != 3 {
		t.Fatalf("counters summed over Nodes = %d %d %d, want 8 80 3", pubs, deliveries, calls)
	}
}

// A node that stops answering is named missing until its TTL runs out;
// one that leaves is gone at once.
func TestSilentNodesAreMissingThenForgotten(t *testing.T) {
	b := &bus{cut: map[*Cluster]bool{}}
	a := b.join(fakeLocal{})
	silent := b.join(fakeLocal{})
	leaving := b.join(fakeLocal{})
	announceAll(b)
	b.mu.Lock()
	b.cut[silent] = true
	b.mu.Unlock()
	leaving.send(context.Background(), &message{Type: "leave", Node: leaving.id})
	b.mu.Lock()
	b.cut[leaving] = true
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	nodes, missing, err := a.Nodes(ctx)
	if err != nil || len(nodes) != 1 || !slices.Equal(missing, []string{silent.id}) {
		t.Fatalf("Nodes = %+v missing %v %v; want a alone, %s missing", nodes, missing, err, silent.id)
	}
	a.expire(time.Now().Add(PeerTTL + time.Second))
	nodes, missing, _ = a.Nodes(context.Background())
	if len(nodes) != 1 || len(missing) != 0 {
		t.Fatalf("after the TTL: %+v missing %v", nodes, missing)
	}
}

// A node alone answers without publishing anything.
func TestAloneAnswersLocally(t *testing.T) {
	c := New(nil, fakeLocal{conns: 4}, Options{Alone: true}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	nodes, missing, err := c.Nodes(context.Background())
	if err != nil || len(nodes) != 1 || nodes[0].Connections != 4 || nodes[0].ID != c.ID() || missing != nil {
		t.Fatalf("Nodes = %+v %v %v", nodes, missing, err)
	}
}

// Malformed and foreign messages are dropped without harm.
func TestHandleIgnoresGarbage(t *testing.T) {
	b := &bus{cut: map[*Cluster]bool{}}
	a := b.join(fakeLocal{})
	for _, m := range []string{``, `{`, `[]`, `{"type":"announce"}`, `{"type":"reply","node":"x","to":"y","id":"z"}`,
		`{"type":"reply","node":"x","to":"` + a.id + `","id":"none"}`, `{"type":"what","node":"x"}`} {
		a.Handle([]byte(m))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.pending) != 0 {
		t.Fatalf("pending %v", a.pending)
	}
}
