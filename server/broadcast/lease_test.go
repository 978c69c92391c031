package broadcast

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func testRedis(t *testing.T) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DB: 9})
	if err := c.Ping(context.Background()).Err(); err != nil {
		if testing.Short() {
			t.Skip("no Redis at 127.0.0.1:6379")
		}
		t.Fatalf("Redis at 127.0.0.1:6379: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// At most one of several nodes holds the lease at any time, one of them
// does, and when it stops another takes over.
func TestLeaseOneHolder(t *testing.T) {
	c := testRedis(t)
	key := fmt.Sprintf("cablehub-test-lease-%d", time.Now().UnixNano())
	t.Cleanup(func() { c.Del(context.Background(), key) })
	ttl := 300 * time.Millisecond
	var leases [3]*Lease
	var cancels [3]context.CancelFunc
	var done [3]chan struct{}
	for i := range leases {
		leases[i] = NewLease(c, key, fmt.Sprint("node-", i), ttl, slog.New(slog.DiscardHandler))
		ctx, cancel := context.WithCancel(context.Background())
		cancels[i], done[i] = cancel, make(chan struct{})
		go func() { leases[i].Run(ctx); close(done[i]) }()
	}
	t.Cleanup(func() {
		for i := range cancels {
			cancels[i]()
			<-done[i]
		}
	})
	holder := func() (int, int) {
		n, who := 0, -1
		for i, l := range leases {
			if l.Held() {
				n, who = n+1, i
			}
		}
		return n, who
	}
	deadline := time.Now().Add(10 * time.Second)
	first := -1
	for first < 0 {
		n, who := holder()
		if n > 1 {
			t.Fatalf("%d holders at once", n)
		}
		if time.Now().After(deadline) {
			t.Fatal("nobody took the lease")
		}
		first = who
		time.Sleep(10 * time.Millisecond)
	}
	cancels[first]()
	<-done[first]
	for {
		n, who := holder()
		if n > 1 {
			t.Fatalf("%d holders at once", n)
		}
		if who >= 0 && who != first {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no other node took over")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
