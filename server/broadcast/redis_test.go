package broadcast

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// testRedis returns a client on the Redis the tests run against
// (127.0.0.1:6379), closed when the test ends. Under -short (make
// test-unit, the tier that needs nothing running) the test is skipped.
func testRedis(t testing.TB) *redis.Client {
	t.Helper()
	if testing.Short() {
		t.Skip("needs Redis at 127.0.0.1:6379 (make test runs it)")
	}
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { client.Close() })
	if err := client.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("Redis at 127.0.0.1:6379: %v", err)
	}
	return client
}

// uniqueChannel is a channel name no other test publishes to.
func uniqueChannel(t *testing.T) string {
	return fmt.Sprintf("cablehub-test-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
}

// runAdapter runs a until the test ends.
func runAdapter(t *testing.T, a Adapter) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRedisAdapter: PUBLISHed payloads reach the sink in order, also a
// publication to the stream named like the channel (the Redis pub/sub
// carries that stream on a channel of its own, so nothing feeds back);
// malformed ones are dropped without stopping the adapter.
func TestRedisAdapter(t *testing.T) {
	client := testRedis(t)
	o := DefaultOptions()
	o.Redis, o.RedisChannel = client, uniqueChannel(t)
	sink := &fakeSink{}
	a, err := New(NameRedis, o, sink, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	runAdapter(t, a)
	ctx := context.Background()
	waitFor(t, "the subscription", func() bool {
		n, _ := client.PubSubNumSub(ctx, o.RedisChannel).Result()
		return n[o.RedisChannel] == 1
	})
	if a.Err() != nil || a.Role() != RoleListening {
		t.Errorf("subscribed adapter: err %v, role %s", a.Err(), a.Role())
	}
	for _, p := range []string{`{"stream":"s","data":"1"}`, `garbage`, `{"stream":"` + o.RedisChannel + `","data":"loop"}`, `[{"stream":"s","data":"2"},{"stream":"t","data":"3"}]`,
		`{"command":"disconnect","payload":{"identifier":"u","reconnect":true}}`} {
		client.Publish(ctx, o.RedisChannel, p)
	}
	want := []string{
		`publish {"publications":[{"stream":"s","data":"1"}]}`,
		`publish {"publications":[{"stream":"` + o.RedisChannel + `","data":"loop"}]}`,
		`publish {"publications":[{"stream":"s","data":"2"},{"stream":"t","data":"3"}]}`,
		`disconnect {"identifier":"u","reconnect":true}`,
	}
	waitFor(t, "four sink calls", func() bool { return len(sink.got()) == 4 })
	if got := sink.got(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("sink got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestRedisAdapterUnreachable: with Redis down the adapter keeps trying
// and reports why through Err.
func TestRedisAdapterUnreachable(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a dial to fail")
	}
	o := DefaultOptions()
	o.Redis = redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer o.Redis.Close()
	a, err := New(NameRedis, o, &fakeSink{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	runAdapter(t, a)
	waitFor(t, "Err", func() bool { return a.Err() != nil })
	if msg := a.Err().Error(); !strings.Contains(msg, "subscribing to __anycable__ in Redis: dial tcp 127.0.0.1:1") || !strings.Contains(msg, "127.0.0.1:1") {
		t.Errorf("Err %q", msg)
	}
}

// TestRedisAdapterClustered: with a cluster pub/sub only the lease holder
// listens, so a PUBLISH reaches the sink once; when it stops, another
// node takes over.
func TestRedisAdapterClustered(t *testing.T) {
	client := testRedis(t)
	o := DefaultOptions()
	o.Redis, o.RedisChannel, o.Clustered = client, uniqueChannel(t), true
	ctx := context.Background()
	sinks := []*fakeSink{{}, {}}
	var adapters []*redisAdapter
	stops := make([]context.CancelFunc, 2)
	var wg sync.WaitGroup
	for i, sink := range sinks {
		o.NodeID = fmt.Sprintf("node%d", i)
		a, err := New(NameRedis, o, sink, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		adapters = append(adapters, a.(*redisAdapter))
		actx, cancel := context.WithCancel(ctx)
		stops[i] = cancel
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.Run(actx)
		}()
	}
	defer func() {
		for _, stop := range stops {
			stop()
		}
		wg.Wait()
	}()
	roles := func() (listening, standby int) {
		for _, a := range adapters {
			switch a.Role() {
			case RoleListening:
				listening++
			case RoleStandby:
				standby++
			}
		}
		return
	}
	waitFor(t, "one listener and one standby", func() bool { l, s := roles(); return l == 1 && s == 1 })
	client.Publish(ctx, o.RedisChannel, `{"stream":"s","data":"1"}`)
	waitFor(t, "the broadcast", func() bool { return len(sinks[0].got())+len(sinks[1].got()) == 1 })
	leader := 0
	if adapters[1].Role() == RoleListening {
		leader = 1
	}
	stops[leader]()
	other := adapters[1-leader]
	waitFor(t, "the other node to take over", func() bool { return other.Role() == RoleListening })
	waitFor(t, "its subscription", func() bool {
		n, _ := client.PubSubNumSub(ctx, o.RedisChannel).Result()
		return n[o.RedisChannel] == 1
	})
	client.Publish(ctx, o.RedisChannel, `{"stream":"s","data":"2"}`)
	waitFor(t, "the broadcast on the other node", func() bool { return len(sinks[1-leader].got()) == 1 })
	if n := len(sinks[0].got()) + len(sinks[1].got()); n != 2 {
		t.Errorf("%d sink calls for two broadcasts", n)
	}
}
