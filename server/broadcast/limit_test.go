package broadcast

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// fakeMetrics records Metrics calls.
type fakeMetrics struct {
	mu                       sync.Mutex
	tooLarge, lost, restored map[string]int
}

func (m *fakeMetrics) inc(p *map[string]int, key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if *p == nil {
		*p = map[string]int{}
	}
	(*p)[key]++
}

func (m *fakeMetrics) BroadcastTooLarge(adapter string)    { m.inc(&m.tooLarge, adapter) }
func (m *fakeMetrics) DependencyLost(component string)     { m.inc(&m.lost, component) }
func (m *fakeMetrics) DependencyRestored(component string) { m.inc(&m.restored, component) }

func (m *fakeMetrics) get(p *map[string]int, key string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return (*p)[key]
}

// TestAdaptersDropOversizePayloads: a payload over the limit is dropped
// by the redis, redisx and nats adapters before it is decoded (it would
// decode fine): a WARN per payload with its size and not its content, a
// count; the payloads around it are delivered. redisx acknowledges and
// deletes its entry.
func TestAdaptersDropOversizePayloads(t *testing.T) {
	const limit = 1024
	secret := "SECRET-CONTENT"
	big := fmt.Sprintf(`{"stream":"s","data":"%s%s"}`, secret, strings.Repeat("x", 2*limit))
	small := func(n int) string { return fmt.Sprintf(`{"stream":"s","data":"%d"}`, n) }
	want := strings.Join([]string{`publish {"publications":[{"stream":"s","data":"1"}]}`, `publish {"publications":[{"stream":"s","data":"2"}]}`}, "\n")

	for _, name := range []string{NameRedis, NameRedisX, NameNATS} {
		t.Run(name, func(t *testing.T) {
			o := DefaultOptions()
			o.MaxPayloadSize = limit
			m := &fakeMetrics{}
			o.Metrics = m
			var publish func(payload string)
			var ready func() bool
			switch name {
			case NameRedis:
				client := testRedis(t)
				o.Redis, o.RedisChannel = client, uniqueChannel(t)
				publish = func(p string) { client.Publish(context.Background(), o.RedisChannel, p) }
				ready = func() bool {
					n, _ := client.PubSubNumSub(context.Background(), o.RedisChannel).Result()
					return n[o.RedisChannel] == 1
				}
			case NameRedisX:
				client := redisxClient(t)
				o.Redis = client
				o.RedisX.Stream, o.RedisX.ReadBlock = redisxStream(t, client), 200*time.Millisecond
				publish = func(p string) { xadd(t, client, o.RedisX.Stream, "payload", p) }
				ready = func() bool {
					groups, _ := client.XInfoGroups(context.Background(), o.RedisX.Stream).Result()
					return len(groups) == 1
				}
			case NameNATS:
				ns := startNATSServer(t, -1)
				o.NATS, o.NATSChannel = natsConn(t, ns.ClientURL()), "bcast"
				pub := natsConn(t, ns.ClientURL())
				publish = func(p string) { publishNATS(t, pub, o.NATSChannel, p) }
			}
			sink := &fakeSink{}
			var log logBuffer
			a, err := New(name, o, sink, log.logger())
			if err != nil {
				t.Fatal(err)
			}
			runAdapter(t, a)
			if ready == nil {
				ready = func() bool { return a.Err() == nil }
			}
			waitFor(t, "the adapter", ready)

			publish(small(1))
			publish(big)
			publish(small(2))
			waitFor(t, "two sink calls", func() bool { return len(sink.got()) == 2 })
			if got := strings.Join(sink.got(), "\n"); got != want {
				t.Errorf("sink got:\n%s\nwant:\n%s", got, want)
			}
			logs := log.String()
			line := fmt.Sprintf("size=%d limit=%d", len(big), limit)
			if strings.Count(logs, "broadcast dropped: larger than --api_max_body_size") != 1 || !strings.Contains(logs, line) || strings.Contains(logs, secret) {
				t.Errorf("want one WARN with %q and no content:\n%s", line, logs)
			}
			if n := m.get(&m.tooLarge, name); n != 1 {
				t.Errorf("counted %d payloads too large, want 1", n)
			}
			if name == NameRedisX {
				drained(t, o.Redis.(*redis.Client), o.RedisX.Stream, o.RedisX.Group)
			}
		})
	}
}

// TestRedisAdapterResubscribesAtOnce: when Redis closes the subscribed
// connection (as it does to a subscriber over its output buffer limit:
// here CLIENT KILL), the adapter is subscribed again within milliseconds,
// not after a backoff step (at least 800 ms) during which every PUBLISH
// reaches no one. The loss and the return are logged once each and
// counted.
func TestRedisAdapterResubscribesAtOnce(t *testing.T) {
	testRedis(t)
	name := fmt.Sprintf("cablehub-resub-%d", time.Now().UnixNano())
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ClientName: name})
	defer client.Close()
	o := DefaultOptions()
	o.Redis, o.RedisChannel = client, uniqueChannel(t)
	m := &fakeMetrics{}
	o.Metrics = m
	sink := &fakeSink{}
	var log logBuffer
	a, err := New(NameRedis, o, sink, log.logger())
	if err != nil {
		t.Fatal(err)
	}
	runAdapter(t, a)
	ctx := context.Background()
	numsub := func() int64 {
		n, _ := client.PubSubNumSub(ctx, o.RedisChannel).Result()
		return n[o.RedisChannel]
	}
	waitFor(t, "the subscription", func() bool { return numsub() == 1 })

	var id string
	list, err := client.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, " name="+name+" ") && strings.Contains(line, " sub=1 ") {
			id = strings.TrimPrefix(strings.Fields(line)[0], "id=")
		}
	}
	if id == "" {
		t.Fatalf("no subscriber connection named %s in:\n%s", name, list)
	}
	if err := client.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	for numsub() != 1 {
		if time.Since(killed) > 400*time.Millisecond {
			t.Fatalf("not subscribed again within 400 ms of the connection's loss:\n%s", log.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	client.Publish(ctx, o.RedisChannel, `{"stream":"s","data":"after"}`)
	waitFor(t, "the broadcast after the loss", func() bool { return len(sink.got()) == 1 })
	waitFor(t, "the INFO", func() bool { return strings.Contains(log.String(), "Redis broadcast channel restored") })
	logs := log.String()
	if strings.Count(logs, "level=WARN") != 1 || !strings.Contains(logs, "Redis broadcast subscription lost, subscribing again at once") ||
		strings.Count(logs, "Redis broadcast channel restored") != 1 {
		t.Errorf("want one WARN for the loss and one INFO for the return:\n%s", logs)
	}
	if m.get(&m.lost, "broadcast:redis") != 1 || m.get(&m.restored, "broadcast:redis") != 1 {
		t.Errorf("counted lost %v, restored %v", m.lost, m.restored)
	}
	if a.Err() != nil || a.Role() != RoleListening {
		t.Errorf("after the return: err %v, role %s", a.Err(), a.Role())
	}
}

// TestRedisLeaseReleaseFailureLogged: a lease Redis did not confirm
// released stands until it expires, and the channel goes unheard
// meanwhile: that is logged, not ignored.
func TestRedisLeaseReleaseFailureLogged(t *testing.T) {
	o := DefaultOptions()
	o.Redis = redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer o.Redis.Close()
	o.Clustered = true
	var log logBuffer
	a, err := New(NameRedis, o, &fakeSink{}, log.logger())
	if err != nil {
		t.Fatal(err)
	}
	a.(*redisAdapter).releaseLease(context.Background())
	if logs := log.String(); !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "Redis broadcast lease not released") || !strings.Contains(logs, "127.0.0.1:1") {
		t.Errorf("no WARN about the lease:\n%s", logs)
	}
}
