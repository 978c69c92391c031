package broker

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cablehub/cablehub/server/protocol"
	"github.com/cablehub/cablehub/server/redisconn/redistest"
)

// On a Redis Cluster each stream's keys (counter, history, presence,
// idempotency) share one slot of the stream's own, and different streams
// spread over the masters; names with braces or a leading "#" too.
func TestRedisClusterKeysPerStream(t *testing.T) {
	client := testRedisCluster(t)
	ctx := context.Background()
	prefix := fmt.Sprintf("cablehub-keys:%d:", time.Now().UnixNano())
	t.Cleanup(func() {
		for _, k := range redistest.Keys(ctx, client, prefix+"*") {
			client.Del(ctx, k)
		}
	})
	r := NewRedis(client, prefix, MemoryOptions{HistoryLimit: 10, HistoryTTL: time.Minute, PresenceTTL: time.Minute}, nil)
	if !r.keys.sharded {
		t.Fatal("a cluster client does not get the sharded layout")
	}
	streams := []string{"a{b}c", "#7", "}", "__x"}
	for i := range 12 {
		streams = append(streams, fmt.Sprintf("room-%d", i))
	}
	for _, s := range streams {
		p := protocol.Publication{Stream: s, Data: `{"n":1}`}
		if err := r.Stamp(ctx, &p); err != nil {
			t.Fatalf("stamp %q: %v", s, err)
		}
		if _, err := r.PresenceJoin(ctx, s, "sid-"+s, "alice", nil); err != nil {
			t.Fatalf("join %q: %v", s, err)
		}
		if _, err := r.ClaimIdempotencyKeys(ctx, []IdempotencyClaim{{Stream: s, Key: "k", token: "t"}}, time.Minute); err != nil {
			t.Fatalf("claim on %q: %v", s, err)
		}
	}
	masters := map[string]bool{}
	for _, s := range streams {
		keys := []string{r.keys.streamKey(s, "counter"), r.keys.streamKey(s, "history"),
			r.keys.presence(s, "expiry"), r.keys.presence(s, "sid"), r.keys.presence(s, "ids"),
			r.keys.idempotency(s, "x")}
		slot := client.ClusterKeySlot(ctx, keys[0]).Val()
		for _, k := range keys[1:] {
			if got := client.ClusterKeySlot(ctx, k).Val(); got != slot {
				t.Errorf("%q: %s is in slot %d, its counter in %d", s, k, got, slot)
			}
		}
		for _, k := range keys[:5] {
			if client.Exists(ctx, k).Val() != 1 {
				t.Errorf("%q: key %s is not there", s, k)
			}
		}
		m, err := client.MasterForKey(ctx, keys[0])
		if err != nil {
			t.Fatal(err)
		}
		masters[m.Options().Addr] = true
	}
	if len(masters) != 3 {
		t.Errorf("16 streams' keys live on %d of 3 masters", len(masters))
	}
	if info, err := r.PresenceInfo(ctx, "a{b}c"); err != nil || info.Total != 1 {
		t.Errorf("presence of a{b}c: %+v %v", info, err)
	}
	if got, err := r.PresenceStreams(ctx, "room-1", 100); err != nil || len(got) != 3 {
		t.Errorf("streams with presence under room-1: %v %v", got, err)
	}
}

// BenchmarkRedisClusterStampAndPublish stamps, stores and publishes (on
// sharded channels) publications to 1,000 streams from 64 goroutines in
// batches of 10, on a Redis Cluster of one master and of three: with
// each stream's keys in a slot of its own, the three masters share the
// work. Redis's CPU per publication is read from /proc by the caller
// (BENCHMARKS.md).
func BenchmarkRedisClusterStampAndPublish(b *testing.B) {
	for _, masters := range []int{1, 3} {
		b.Run(fmt.Sprintf("masters=%d", masters), func(b *testing.B) {
			c, err := redistest.Start(redistest.Options{Masters: masters})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Stop()
			client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs, PoolSize: 64})
			defer client.Close()
			channels := &RedisChannels{Name: func(s string) string { return s }, Sharded: true}
			r := NewRedis(client, "cablehub-bench:", MemoryOptions{HistoryLimit: 100, HistoryTTL: time.Minute}, channels)
			var next atomic.Int64
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				pubs := make([]protocol.Publication, 10)
				for pb.Next() {
					for i := range pubs {
						pubs[i] = protocol.Publication{Stream: fmt.Sprintf("s-%d", next.Add(1)%1000), Data: `{"n":1}`}
					}
					if _, err := r.StampAndPublish(context.Background(), pubs, nil); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*10)/b.Elapsed().Seconds(), "pubs/s")
		})
	}
}
