package pubsub

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cablehub/cablehub/server/protocol"
	"github.com/cablehub/cablehub/server/redisconn"
	"github.com/cablehub/cablehub/server/redisconn/redistest"
)

// Sharded channels: a plain name is its channel; every other one travels
// on an escaped channel holding the stream's slot tag, so that it hashes
// to the slot of the stream's broker keys. No two streams share one.
func TestRedisNamesSharded(t *testing.T) {
	n := NewRedisNames("broadcasts").Sharded()
	cases := map[string]string{
		"chat":         "chat",
		"__anycable__": RedisEscape + "{__anycable__}",
		"broadcasts":   RedisEscape + "{broadcasts}",
		"a{b}c":        RedisEscape + "{" + redisconn.SlotTag("a{b}c") + "}",
		"#1":           RedisEscape + "{" + redisconn.SlotTag("#1") + "}",
		"":             RedisEscape + "{" + redisconn.SlotTag("") + "}",
	}
	channels := map[string]string{}
	for stream, want := range cases {
		got := n.Channel(stream)
		if got != want {
			t.Errorf("%q: channel %q, want %q", stream, got, want)
		}
		if other, dup := channels[got]; dup {
			t.Errorf("%q and %q share channel %q", stream, other, got)
		}
		channels[got] = stream
		// The slot Redis computes for the channel is the tag's.
		tag := redisconn.SlotTag(stream)
		if got != tag && !strings.Contains(got, "{"+tag+"}") {
			t.Errorf("%q: channel %q does not hash as its tag %q", stream, got, tag)
		}
	}
}

// recorder is a Handler that records publications and resubscriptions.
type recorder struct {
	mu          sync.Mutex
	pubs        map[string][]string // stream -> data
	resubscribe []string
	interrupted int
}

func (h *recorder) HandlePublication(p *protocol.Publication) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pubs == nil {
		h.pubs = map[string][]string{}
	}
	h.pubs[p.Stream] = append(h.pubs[p.Stream], p.Data)
}
func (h *recorder) HandleCommand(*Command) {}
func (h *recorder) HandleResubscribed(streams []string) {
	h.mu.Lock()
	h.resubscribe = append(h.resubscribe, streams...)
	h.mu.Unlock()
}
func (h *recorder) HandleInterrupted() {
	h.mu.Lock()
	h.interrupted++
	h.mu.Unlock()
}
func (h *recorder) HandleCluster([]byte) {}

func (h *recorder) got(stream string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.pubs[stream])
}

// shardedNode starts a sharded Redis pub/sub on the cluster at addrs.
func shardedNode(t *testing.T, addrs []string) (*Redis, *recorder, *redis.ClusterClient) {
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ClusterStateReloadInterval: redisconn.ClusterStateReload})
	t.Cleanup(func() { client.Close() })
	h := &recorder{}
	ps := NewRedis(context.Background(), client, NewRedisNames().Sharded(), h, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ps.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return ps, h, client
}

func subscribeAll(t *testing.T, ps *Redis, streams []string) {
	t.Helper()
	for _, s := range streams {
		r := ps.Subscribe(s)
		<-r.Done()
		if r.Err() != nil {
			t.Fatalf("subscribe %q: %v", s, r.Err())
		}
	}
}

func publishEach(t *testing.T, ps *Redis, streams []string, data string) {
	t.Helper()
	var pubs []protocol.Publication
	for _, s := range streams {
		pubs = append(pubs, protocol.Publication{Stream: s, Data: data})
	}
	if err := ps.Publish(context.Background(), pubs); err != nil {
		t.Fatal(err)
	}
}

// On a Redis Cluster streams travel on sharded channels, each on its own
// master: one node's publications reach another's subscriptions, and the
// masters list the channels as shard channels, not as classic ones.
func TestRedisShardedPubSub(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster (make test runs it)")
	}
	c, err := redistest.Start(redistest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	a, ha, client := shardedNode(t, c.Addrs)
	b, _, _ := shardedNode(t, c.Addrs)
	streams := []string{"room-1", "room-2", "room-3", "room-4", "room-5", "room-6", "__x", "a{b}"}
	subscribeAll(t, a, streams)
	publishEach(t, b, streams, "one")
	for _, s := range streams {
		waitUntil(t, "publication on "+s, func() bool { return slices.Equal(ha.got(s), []string{"one"}) })
	}
	ctx := context.Background()
	owners := map[string]bool{}
	for _, s := range streams {
		ch := a.names.Channel(s)
		master, err := client.MasterForKey(ctx, ch)
		if err != nil {
			t.Fatal(err)
		}
		shard, _ := master.PubSubShardChannels(ctx, ch).Result()
		classic, _ := master.PubSubChannels(ctx, ch).Result()
		if !slices.Equal(shard, []string{ch}) || len(classic) != 0 {
			t.Errorf("%q on %s: shard channels %v, classic %v", s, master.Options().Addr, shard, classic)
		}
		owners[master.Options().Addr] = true
	}
	if len(owners) < 2 {
		t.Errorf("the streams' channels all live on %v", owners)
	}
	// The last unsubscription of a stream leaves its shard channel.
	a.Unsubscribe("room-1")
	waitUntil(t, "room-1's channel to go", func() bool {
		master, _ := client.MasterForKey(ctx, "room-1")
		n, _ := master.PubSubShardChannels(ctx, "room-1").Result()
		return len(n) == 0
	})
}

// A master fails over to its replica: each node's subscriptions follow
// their slots to the promoted replica, the node hears that they dropped
// and catches their streams up (HandleResubscribed), and publications made
// after the failover arrive.
func TestRedisShardedFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster (make test runs it)")
	}
	c, err := redistest.Start(redistest.Options{Replicas: 1, NodeTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	a, ha, client := shardedNode(t, c.Addrs)
	b, _, _ := shardedNode(t, c.Addrs)
	streams := []string{"room-1", "room-2", "room-3", "room-4", "room-5", "room-6"}
	subscribeAll(t, a, streams)
	ctx := context.Background()
	master, err := client.MasterForKey(ctx, "room-1")
	if err != nil {
		t.Fatal(err)
	}
	killed := master.Options().Addr
	c.Kill(killed)
	// The node's client is left alone: the node must find the new master
	// by itself.
	watcher := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	defer watcher.Close()
	waitUntil(t, "a failover of "+killed, func() bool {
		watcher.ReloadState(ctx)
		m, err := watcher.MasterForKey(ctx, "room-1")
		return err == nil && m.Options().Addr != killed
	})
	waitUntil(t, "room-1's subscription to be made again", func() bool {
		ha.mu.Lock()
		defer ha.mu.Unlock()
		return slices.Contains(ha.resubscribe, "room-1") && ha.interrupted > 0
	})
	waitUntil(t, "the publications after the failover", func() bool {
		// b's client finds the new master once a publish failed.
		var pubs []protocol.Publication
		for _, s := range streams {
			pubs = append(pubs, protocol.Publication{Stream: s, Data: "after"})
		}
		if err := b.Publish(ctx, pubs); err != nil {
			return false
		}
		for _, s := range streams {
			if !slices.Contains(ha.got(s), "after") {
				return false
			}
		}
		return true
	})
}
