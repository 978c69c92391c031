package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cablehub/cablehub/server/protocol"
)

// epochDB is the Redis DB of the epoch tests alone: they flush it, as a
// Redis that lost its data would be. No other test uses it.
const epochDB = 11

// twoRedisNodes returns two Redis brokers on one emptied DB and prefix, as
// two nodes of a cluster see Redis, and a client on that DB.
func twoRedisNodes(t *testing.T) (*Redis, *Redis, *redis.Client) {
	t.Helper()
	client := testRedis(t, epochDB)
	if err := client.FlushDB(context.Background()).Err(); err != nil {
		t.Fatalf("Redis at 127.0.0.1:6379: %v", err)
	}
	opts := MemoryOptions{HistoryLimit: 10, HistoryTTL: time.Minute}
	channel := &RedisChannels{Name: func(stream string) string { return stream }}
	return NewRedis(client, "cablehub:", opts, channel), NewRedis(client, "cablehub:", opts, channel), client
}

func stampN(t *testing.T, b *Redis, stream string, n int) []protocol.Publication {
	t.Helper()
	var out []protocol.Publication
	for range n {
		p := protocol.Publication{Stream: stream, Data: fmt.Sprint(len(out))}
		if err := b.Stamp(context.Background(), &p); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// Redis losing its data gives a new epoch whose offsets start at 1,
// whichever node stamps next; the other node follows it at once, and a
// client holding the lost epoch is refused history.
func TestRedisEpochAfterFlush(t *testing.T) {
	ctx := context.Background()
	a, b, client := twoRedisNodes(t)
	before := append(stampN(t, a, "s", 2), stampN(t, b, "s", 1)...)
	old := before[0].Epoch
	for i, p := range before {
		if p.Epoch != old || p.Offset != uint64(i+1) {
			t.Fatalf("before the flush, stamp %d: %+v", i, p)
		}
	}
	if err := client.FlushDB(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	after := append(stampN(t, b, "s", 1), stampN(t, a, "s", 1)...)
	fresh := after[0].Epoch
	if fresh == old || fresh == "" {
		t.Fatalf("epoch after the flush: %q (before: %q)", fresh, old)
	}
	for i, p := range after {
		if p.Epoch != fresh || p.Offset != uint64(i+1) {
			t.Fatalf("after the flush, stamp %d: %+v", i, p)
		}
	}
	if _, err := a.HistoryFrom(ctx, "s", old, 2); !errors.Is(err, ErrHistoryUnavailable) {
		t.Errorf("history from the lost epoch: %v", err)
	}
	got, err := b.HistoryFrom(ctx, "s", fresh, 1)
	if err != nil || len(got) != 1 || got[0].Offset != 2 || got[0].Epoch != fresh {
		t.Errorf("history in the new epoch: %+v %v", got, err)
	}
}

// A stream's counter vanishing alone (it expires ten history TTLs after
// the stream's last publication, or is evicted) takes the stream's epoch
// with it: the stream restarts at 1 under a new epoch, so a client holding
// the old epoch is refused history instead of taking the new offsets for
// ones it has, and nothing of the old epoch is served, not even by time.
func TestRedisCounterLostAlone(t *testing.T) {
	ctx := context.Background()
	a, b, client := twoRedisNodes(t)
	old := stampN(t, a, "s", 3)[0].Epoch
	client.Del(ctx, "cablehub:counter:s")
	since := time.Now().Add(-time.Minute).Unix()
	if got, err := b.HistorySince(ctx, "s", since); err != nil || len(got) != 0 {
		t.Errorf("history of the lost epoch served by time: %+v %v", got, err)
	}
	if _, err := b.HistoryFrom(ctx, "s", old, 1); !errors.Is(err, ErrHistoryUnavailable) {
		t.Errorf("history from the lost epoch: %v", err)
	}
	p := stampN(t, b, "s", 1)[0]
	if p.Epoch == old || p.Offset != 1 {
		t.Fatalf("first stamp after the counter went: %+v (old epoch %q)", p, old)
	}
	if _, err := a.HistoryFrom(ctx, "s", old, 3); !errors.Is(err, ErrHistoryUnavailable) {
		t.Errorf("history from the old epoch at its last offset: %v", err)
	}
	got, err := a.HistorySince(ctx, "s", since)
	if err != nil || len(got) != 1 || got[0].Offset != 1 || got[0].Epoch != p.Epoch {
		t.Errorf("history since after the restart: %+v %v", got, err)
	}
	if _, err := a.HistoryFrom(ctx, "s", p.Epoch, 0); !errors.Is(err, ErrHistoryUnavailable) {
		t.Errorf("offset 0 with offset 1 kept: %v", err)
	}
}

// A counter that expires by itself (ten history TTLs after the stream's
// last publication) starts a new epoch: offsets go back to 1 only under
// another epoch.
func TestRedisCounterExpiryStartsNewEpoch(t *testing.T) {
	ctx := context.Background()
	client := testRedis(t, epochDB)
	prefix := fmt.Sprintf("cablehub-expiry-%d:", time.Now().UnixNano())
	r := NewRedis(client, prefix, MemoryOptions{HistoryLimit: 10, HistoryTTL: 20 * time.Millisecond}, nil)
	first := stampN(t, r, "idle", 5)
	deadline := time.Now().Add(10 * time.Second)
	for client.Exists(ctx, prefix+"counter:idle").Val() == 1 {
		if time.Now().After(deadline) {
			t.Fatal("the counter did not expire")
		}
		time.Sleep(20 * time.Millisecond) // polling Redis's own expiry
	}
	next := stampN(t, r, "idle", 1)[0]
	if next.Offset != 1 || next.Epoch == first[0].Epoch {
		t.Errorf("after the counter expired: %+v (before: epoch %q, offset 5)", next, first[0].Epoch)
	}
}

// Nodes that stamp one stream at once on an empty Redis agree on its
// epoch, and its offsets are 1..n with none twice.
func TestRedisNodesAgreeOnEpoch(t *testing.T) {
	a, b, _ := twoRedisNodes(t)
	var mu sync.Mutex
	epochs := map[string]map[string]bool{}
	offsets := map[string]map[uint64]bool{}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			node := []*Redis{a, b}[w%2]
			for i := range 20 {
				p := protocol.Publication{Stream: fmt.Sprint("s", i%3), Data: "x"}
				if err := node.Stamp(context.Background(), &p); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if epochs[p.Stream] == nil {
					epochs[p.Stream], offsets[p.Stream] = map[string]bool{}, map[uint64]bool{}
				}
				epochs[p.Stream][p.Epoch] = true
				if offsets[p.Stream][p.Offset] {
					t.Errorf("offset %d of %s stamped twice", p.Offset, p.Stream)
				}
				offsets[p.Stream][p.Offset] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for stream, es := range epochs {
		if len(es) != 1 {
			t.Errorf("stream %s has epochs %v", stream, es)
		}
		for o := uint64(1); o <= uint64(len(offsets[stream])); o++ {
			if !offsets[stream][o] {
				t.Errorf("stream %s: offset %d missing", stream, o)
			}
		}
	}
}

// StampAndPublish stamps under the epoch its script run finds, and the
// stream message published to every node is the one protocol encodes for
// the stamped publication, that epoch included.
func TestRedisStampAndPublishFollowsEpoch(t *testing.T) {
	ctx := context.Background()
	a, b, client := twoRedisNodes(t)
	stream := fmt.Sprintf("epoch-publish-%d", time.Now().UnixNano())
	sub := client.Subscribe(ctx, stream)
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	msgs := sub.Channel()
	publish := func(node *Redis, data string) protocol.Publication {
		t.Helper()
		pubs := []protocol.Publication{
			{Stream: stream, Data: data, ExcludeSocket: "sid", BroadcastType: "t"},
			{Stream: stream, Data: `{"text":"<b>\u2028"}`, Transient: true},
		}
		if taken, err := node.StampAndPublish(ctx, pubs, nil); err != nil || taken != 2 {
			t.Fatalf("taken %d, %v", taken, err)
		}
		for _, p := range pubs {
			var m *redis.Message
			select {
			case m = <-msgs:
			case <-time.After(5 * time.Second):
				t.Fatalf("publication %q not published", p.Data)
			}
			if want := string(protocol.AppendStreamMessage(nil, &p)); m.Payload != want {
				t.Fatalf("published %s, want %s", m.Payload, want)
			}
		}
		return pubs[0]
	}
	first := publish(a, "1")
	client.FlushDB(ctx)
	second := publish(b, "2")
	third := publish(a, "3")
	if first.Offset != 1 || second.Offset != 1 || third.Offset != 2 || second.Epoch == first.Epoch || third.Epoch != second.Epoch {
		t.Errorf("stamps across the flush: %+v %+v %+v", first, second, third)
	}
}
