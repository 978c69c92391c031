package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cablehub/cablehub/server/redisconn/redistest"
)

// redisClusterOf starts a Redis Cluster (redistest) for the test.
func redisClusterOf(t *testing.T, o redistest.Options) *redistest.Cluster {
	t.Helper()
	c, err := redistest.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

// Two nodes on a Redis Cluster of three masters: each stream's broker
// keys sit in a slot of the stream's own, so twelve streams spread over
// the masters, and each stream's publications travel on a sharded channel
// on its master only (PUBSUB SHARDCHANNELS there, no classic channel
// anywhere), from one node's API to the other node's subscribers.
func TestRedisClusterShardsStreams(t *testing.T) {
	t.Parallel()
	c := redisClusterOf(t, redistest.Options{})
	url := "redis://" + strings.Join(c.Addrs, ",redis://")
	a := startServer(t, nil, "--public", "--broker", "redis", "--redis_url", url)
	b := startServer(t, nil, "--public", "--broker", "redis", "--redis_url", url)
	for _, s := range []*server{a, b} {
		waitHealth(t, s, 200)
		for _, want := range []string{
			`msg="Redis Cluster: each stream's keys share a hash slot of the stream's own ({<stream>})`,
			`(sharded: streams on SSUBSCRIBE/SPUBLISH)`,
		} {
			if !strings.Contains(s.Logs(), want) {
				t.Errorf("log lacks %s:\n%s", want, s.Logs())
			}
		}
	}
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	defer client.Close()
	ctx := context.Background()
	masters := map[string]bool{}
	for i := range 12 {
		stream := uniqueStream(t, fmt.Sprintf("room-%d", i))
		sub := dialWS(t, a, dialOpts{})
		sub.welcome()
		id := sub.subscribe(stream)
		publish(t, b, fmt.Sprintf(`{"stream":%q,"data":"%d"}`, stream, i))
		got := sub.nextBroadcast()
		if got.Identifier != id || string(got.Message) != fmt.Sprint(i) || got.Offset != 1 {
			t.Errorf("%s: got %+v", stream, got)
		}
		owner, err := client.MasterForKey(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		masters[owner.Options().Addr] = true
		if n := owner.Exists(ctx, "cablehub:{"+stream+"}:counter", "cablehub:{"+stream+"}:history").Val(); n != 2 {
			t.Errorf("%s: %d of its counter and history on its slot's master %s", stream, n, owner.Options().Addr)
		}
		if ch := owner.PubSubShardChannels(ctx, stream).Val(); len(ch) != 1 {
			t.Errorf("%s: shard channels on its master: %v", stream, ch)
		}
		client.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			if ch := m.PubSubChannels(ctx, stream).Val(); len(ch) != 0 {
				t.Errorf("%s: a classic channel on %s: %v", stream, m.Options().Addr, ch)
			}
			return nil
		})
	}
	if len(masters) < 2 {
		t.Errorf("twelve streams all live on %v", masters)
	}
}

// TestFaultsRedisClusterFailover: a Redis Cluster of three masters, each
// with a replica, loses the master of one of three streams while two
// nodes publish to all three. The replica takes over (a new epoch for
// the streams of its slots), each node's sharded subscriptions follow
// the slots to it, and every subscriber of every stream gets every
// accepted publication or is told.
func TestFaultsRedisClusterFailover(t *testing.T) {
	t.Parallel()
	c := redisClusterOf(t, redistest.Options{Replicas: 1, NodeTimeout: time.Second})
	url := "redis://" + strings.Join(c.Addrs, ",redis://")
	a := startServer(t, nil, "--public", "--broker", "redis", "--redis_url", url)
	b := startServer(t, nil, "--public", "--broker", "redis", "--redis_url", url)
	waitHealth(t, a, 200)
	waitHealth(t, b, 200)
	type run struct {
		p        *publisher
		trackers []*tracker
	}
	var runs []run
	for i := range 3 {
		stream := uniqueStream(t, fmt.Sprintf("faults-%d", i))
		runs = append(runs, run{
			p:        &publisher{stream: stream, nodes: []*server{a, b}, accepted: map[int]bool{}},
			trackers: pairTrackers(t, stream, a, b),
		})
	}
	all := func(count int) {
		var wg sync.WaitGroup
		for _, r := range runs {
			wg.Go(func() { r.p.run(2, count) })
		}
		wg.Wait()
	}
	all(300)
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	defer client.Close()
	ctx := context.Background()
	owner, err := client.MasterForKey(ctx, runs[0].p.stream)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range runs {
		r.p.markLoss()
	}
	killed := owner.Options().Addr
	// The master dies while the publishers of all three streams are busy.
	underLoad(t, runs[0].p, 50, func() { all(600) }, func() { c.Kill(killed) })
	waitUntil(t, "the replica of "+killed+" to take over", func() bool {
		client.ReloadState(ctx)
		m, err := client.MasterForKey(ctx, runs[0].p.stream)
		return err == nil && m.Options().Addr != killed
	})
	all(600)
	for _, r := range runs {
		settle(t, fmt.Sprintf("broker redis on a Redis Cluster, master %s killed, stream %s", killed, r.p.stream), r.p, r.trackers)
	}
}

// --redis_sharded_pubsub=false: streams travel on classic channels, as
// AnyCable's do, so AnyCable nodes on the same Redis Cluster get them;
// the broker's keys still spread by stream.
func TestRedisClusterClassicPubSub(t *testing.T) {
	t.Parallel()
	c := redisClusterOf(t, redistest.Options{})
	url := "redis://" + strings.Join(c.Addrs, ",redis://")
	args := []string{"--public", "--broker", "redis", "--redis_url", url, "--redis_sharded_pubsub=false"}
	a, b := startServer(t, nil, args...), startServer(t, nil, args...)
	waitHealth(t, a, 200)
	waitHealth(t, b, 200)
	if strings.Contains(a.Logs(), "sharded: streams") {
		t.Errorf("sharded pub/sub despite --redis_sharded_pubsub=false:\n%s", a.Logs())
	}
	stream := uniqueStream(t, "classic")
	sub := dialWS(t, a, dialOpts{})
	sub.welcome()
	sub.subscribe(stream)
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	defer client.Close()
	ctx := context.Background()
	// A plain SUBSCRIBE, as an AnyCable node makes, on any node of the
	// cluster gets the stream's publications.
	ps := client.Subscribe(ctx, stream)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	publish(t, b, fmt.Sprintf(`{"stream":%q,"data":"1"}`, stream))
	if got := sub.nextBroadcast(); string(got.Message) != "1" || got.Offset != 1 {
		t.Errorf("subscriber got %+v", got)
	}
	msg, err := ps.ReceiveMessage(ctx)
	if err != nil || !strings.Contains(msg.Payload, `"offset":1`) {
		t.Errorf("classic subscriber got %+v %v", msg, err)
	}
	owner, _ := client.MasterForKey(ctx, stream)
	if n := owner.Exists(ctx, "cablehub:{"+stream+"}:counter").Val(); n != 1 {
		t.Errorf("the stream's counter is not in its own slot on %s", owner.Options().Addr)
	}
}
