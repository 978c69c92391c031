package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// epochDB is the Redis DB of the epoch tests alone: they flush it in the
// middle of a run, as a Redis that lost its data.
const epochDB = 9

// broadcast is a stamped publication as an extended-protocol client gets
// it.
type broadcast struct {
	Identifier string          `json:"identifier"`
	Message    json.RawMessage `json:"message"`
	Epoch      string          `json:"epoch"`
	Offset     uint64          `json:"offset"`
}

func (c *wsClient) nextBroadcast() broadcast {
	c.t.Helper()
	f := c.next(10 * time.Second)
	var b broadcast
	if err := json.Unmarshal([]byte(f), &b); err != nil || b.Offset == 0 {
		c.t.Fatalf("not a stamped broadcast: %s", f)
	}
	return b
}

// receiveAll reads broadcasts until every number in want arrived, failing
// on a duplicate, on an offset that does not grow within its epoch, and on
// an epoch that comes back after another one took over. It returns the
// epochs in the order seen and the last broadcast.
func receiveAll(t *testing.T, name string, c *wsClient, want map[int]bool) ([]string, broadcast) {
	t.Helper()
	seen := map[int]bool{}
	var epochs []string
	var last broadcast
	for len(seen) < len(want) {
		b := c.nextBroadcast()
		n, err := strconv.Atoi(string(b.Message))
		if err != nil || !want[n] || seen[n] {
			t.Fatalf("%s: unexpected or repeated message %s (epoch %s offset %d)", name, b.Message, b.Epoch, b.Offset)
		}
		seen[n] = true
		switch {
		case len(epochs) == 0 || b.Epoch != last.Epoch:
			for _, e := range epochs {
				if e == b.Epoch {
					t.Fatalf("%s: epoch %s came back after %s", name, b.Epoch, last.Epoch)
				}
			}
			epochs = append(epochs, b.Epoch)
		case b.Offset <= last.Offset:
			t.Fatalf("%s: offset %d after %d in epoch %s", name, b.Offset, last.Offset, b.Epoch)
		}
		last = b
	}
	return epochs, last
}

// Redis losing its data in the middle of publishing through two nodes:
// every publication answered 201 reaches the subscribers of both nodes
// exactly once, in offset order within each epoch, the epoch changes once,
// and a client holding the lost epoch is refused history. A node started
// afterwards stamps under the same new epoch.
func TestEpochSurvivesRedisDataLoss(t *testing.T) {
	a, b := redisCluster(t, epochDB)
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DB: epochDB})
	t.Cleanup(func() { rdb.Close() })
	stream := uniqueStream(t, "feed")
	ca, cb := dialWS(t, a, dialOpts{}), dialWS(t, b, dialOpts{})
	ca.welcome()
	cb.welcome()
	id := ca.subscribe(stream)
	cb.subscribe(stream)

	// Publishers on both nodes; Redis is flushed once half the
	// publications were answered, while the rest are under way.
	const workers, each = 8, 30
	var mu sync.Mutex
	ok := map[int]bool{}
	var answered atomic.Int32
	flushed := make(chan error, 1)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				n := w*each + i
				status, err := postJSON([]*server{a, b}[n%2], fmt.Sprintf(`{"stream":%q,"data":"%d"}`, stream, n))
				if err != nil {
					t.Error(err)
					return
				}
				if status == 201 {
					mu.Lock()
					ok[n] = true
					mu.Unlock()
				}
				if answered.Add(1) == workers*each/2 {
					flushed <- rdb.FlushDB(context.Background()).Err()
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-flushed:
		if err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("only %d of %d publications were answered", answered.Load(), workers*each)
	}
	// And some certainly after the flush, through both nodes.
	for n := workers * each; n < workers*each+10; n++ {
		publish(t, []*server{a, b}[n%2], fmt.Sprintf(`{"stream":%q,"data":"%d"}`, stream, n))
		ok[n] = true
	}
	if len(ok) < workers*each {
		t.Errorf("%d of %d publications answered 201 while Redis was up", len(ok)-10, workers*each)
	}

	epochsA, lastA := receiveAll(t, "node A's client", ca, ok)
	epochsB, _ := receiveAll(t, "node B's client", cb, ok)
	if len(epochsA) != 2 || fmt.Sprint(epochsA) != fmt.Sprint(epochsB) {
		t.Fatalf("epochs seen: node A %v, node B %v; want the same two", epochsA, epochsB)
	}
	oldEpoch, newEpoch := epochsA[0], epochsA[1]

	// The lost epoch's history is refused; the new one's is served, and
	// the subscription that has it all gets nothing twice.
	q := quoted(id)
	ca.send(historyCmd(id, fmt.Sprintf(`{"streams":{%q:{"epoch":%q,"offset":1}}}`, stream, oldEpoch)))
	ca.expect(`{"type":"reject_history","identifier":` + q + `}`)
	ca.send(historyCmd(id, fmt.Sprintf(`{"streams":{%q:{"epoch":%q,"offset":%d}}}`, stream, newEpoch, lastA.Offset-1)))
	ca.expect(`{"type":"confirm_history","identifier":` + q + `}`)

	// A node started after the flush joins the new epoch, in both
	// directions.
	c := startServer(t, nil, "--public", "--broker", "redis", "--redis_url", redisURL(t, epochDB))
	cc := dialWS(t, c, dialOpts{})
	cc.welcome()
	cc.subscribe(stream)
	next := lastA.Offset + 1
	for i, s := range []*server{c, a} {
		n := 1000 + i
		publish(t, s, fmt.Sprintf(`{"stream":%q,"data":"%d"}`, stream, n))
		for name, cl := range map[string]*wsClient{"A": ca, "B": cb, "C": cc} {
			if got := cl.nextBroadcast(); string(got.Message) != fmt.Sprint(n) || got.Epoch != newEpoch || got.Offset != next {
				t.Errorf("node %s's client got %+v, want message %d at %s/%d", name, got, n, newEpoch, next)
			}
		}
		next++
	}
	for _, cl := range []*wsClient{ca, cb, cc} {
		cl.barrier()
	}
}
