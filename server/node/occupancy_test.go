package node

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cablehub/cablehub/server/broker"
	"github.com/cablehub/cablehub/server/hub"
	"github.com/cablehub/cablehub/server/metrics"
)

// recordingObserver keeps the events it hears, as "kind:stream[:id]".
type recordingObserver struct {
	mu     sync.Mutex
	events []string
}

func (o *recordingObserver) Watches(stream string) bool { return !strings.HasPrefix(stream, "quiet") }
func (o *recordingObserver) Occupied(stream string)     { o.add("occupied:" + stream) }
func (o *recordingObserver) Vacated(stream string)      { o.add("vacated:" + stream) }
func (o *recordingObserver) Joined(stream, id string, _ json.RawMessage) {
	o.add("joined:" + stream + ":" + id)
}
func (o *recordingObserver) Left(stream, id string) { o.add("left:" + stream + ":" + id) }
func (o *recordingObserver) Whispered(stream, sid, member string, data []byte) {
	o.add(fmt.Sprintf("whispered:%s:%s:%s:%s", stream, sid, member, data))
}

func (o *recordingObserver) add(e string) {
	o.mu.Lock()
	o.events = append(o.events, e)
	o.mu.Unlock()
}

// await waits until the events are want, exactly.
func (o *recordingObserver) await(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		o.mu.Lock()
		got := slices.Clone(o.events)
		o.mu.Unlock()
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("events %q, want %q", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cluster is nodes sharing one memory broker, as nodes share Redis.
func newCluster(t *testing.T, size int, o Observer) (*broker.Memory, []*env) {
	t.Helper()
	b := broker.NewMemory(broker.MemoryOptions{SessionsTTL: time.Minute, HistoryTTL: time.Minute, PresenceTTL: presenceTTL})
	envs := make([]*env, size)
	for i := range envs {
		hb := &hookedBroker{Memory: b}
		log := slog.New(slog.DiscardHandler)
		n := New(hub.New(4), hb, testRouter{}, metrics.New(), log, Options{Observer: o, OccupancyID: "secret-id"})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { n.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		envs[i] = &env{node: n, broker: hb, handler: &Gate{node: n, auth: headerAuth{}, testSID: testSID}, logs: &syncBuffer{}}
	}
	return b, envs
}

// A stream is occupied when its first subscriber in the cluster comes
// and vacated when its last goes, whichever node they are on; each is
// reported once. Streams the observer does not watch are not recorded.
func TestOccupancyAcrossNodes(t *testing.T) {
	t.Parallel()
	o := &recordingObserver{}
	_, nodes := newCluster(t, 2, o)
	a, b := nodes[0].connect(t, "a"), nodes[1].connect(t, "b")
	subscribe(t, a, "room")
	o.await(t, "occupied:room")
	subscribe(t, b, "room")
	subscribe(t, b, "quiet-room")
	a.command(`{"command":"unsubscribe","identifier":"room"}`)
	pingPong(t, a)
	o.await(t, "occupied:room")
	b.goAway(t)
	o.await(t, "occupied:room", "vacated:room")
}

// A node that dies keeps its streams occupied until its records expire
// (the presence TTL); then the stream is vacated.
func TestOccupancyExpiresWithItsNode(t *testing.T) {
	t.Parallel()
	o := &recordingObserver{}
	mem, nodes := newCluster(t, 1, o)
	a := nodes[0].connect(t, "a")
	subscribe(t, a, "room")
	o.await(t, "occupied:room")
	// As if the node had died: its records are no longer refreshed.
	if err := mem.PresenceDisconnect(context.Background(), nodes[0].node.occupancy.sid); err != nil {
		t.Fatal(err)
	}
	o.await(t, "occupied:room", "vacated:room")
}

// Joins, leaves and whispers are reported once, where they happen.
func TestObserverPresenceAndWhispers(t *testing.T) {
	t.Parallel()
	o := &recordingObserver{}
	_, nodes := newCluster(t, 2, o)
	a, b := nodes[0].connect(t, "a"), nodes[1].connect(t, "b")
	subscribe(t, b, "room")
	o.await(t, "occupied:room")
	a.command(`{"command":"subscribe","identifier":"room","presence":{"id":"u1"}}`)
	o.await(t, "occupied:room", "joined:room:u1")
	a.command(`{"command":"whisper","identifier":"room","data":{"typing":true}}`)
	o.await(t, "occupied:room", "joined:room:u1", `whispered:room:a::{"typing":true}`)
	a.command(`{"command":"unsubscribe","identifier":"room"}`)
	o.await(t, "occupied:room", "joined:room:u1", `whispered:room:a::{"typing":true}`, "left:room:u1")
}

// A watched stream's subscribers are counted across the nodes; an
// unwatched one's on the node asked.
func TestSubscriptionsAcrossNodes(t *testing.T) {
	t.Parallel()
	o := &recordingObserver{}
	_, nodes := newCluster(t, 2, o)
	a, b, c := nodes[0].connect(t, "a"), nodes[1].connect(t, "b"), nodes[1].connect(t, "c")
	for _, conn := range []*fakeConn{a, b, c} {
		subscribe(t, conn, "room")
		subscribe(t, conn, "quiet-room")
	}
	count := func(stream string, want int) {
		t.Helper()
		deadline := time.Now().Add(waitFor)
		for {
			got, err := nodes[0].node.Subscriptions(context.Background(), stream)
			if err == nil && got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("Subscriptions(%s) = %d, %v; want %d", stream, got, err, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	count("room", 3)
	count("quiet-room", 1)
	b.command(`{"command":"unsubscribe","identifier":"room"}`)
	count("room", 2)
	c.goAway(t)
	count("room", 1)
}
