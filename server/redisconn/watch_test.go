package redisconn

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cablehub/cablehub/server/connwatch"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) count(sub string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), sub)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// counts records connwatch.Counters calls.
type counts struct {
	mu             sync.Mutex
	lost, restored int
}

func (c *counts) DependencyLost(string)     { c.mu.Lock(); c.lost++; c.mu.Unlock() }
func (c *counts) DependencyRestored(string) { c.mu.Lock(); c.restored++; c.mu.Unlock() }
func (c *counts) get() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lost, c.restored
}

// redisServer runs redis-server on port until stop (or the test's end).
func redisServer(t *testing.T, port int) (stop func()) {
	t.Helper()
	cmd := exec.Command("redis-server", "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Skipf("redis-server: %v", err)
	}
	var once sync.Once
	stop = func() { once.Do(func() { cmd.Process.Kill(); cmd.Wait() }) }
	t.Cleanup(stop)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return stop
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %d did not start", port)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWatchLogsOutageOnce: a client whose only user is a pub/sub
// subscription (nothing publishes, no command runs) still reports Redis
// going away, through the subscription's redials: one WARN, however many
// redials fail, and one INFO when Redis is back; both counted. Commands
// failing meanwhile add nothing.
func TestWatchLogsOutageOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("runs redis-server")
	}
	port := freePort(t)
	stop := redisServer(t, port)
	client := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), MaxRetries: -1})
	defer client.Close()
	var logs syncBuffer
	c := &counts{}
	Watch(client, connwatch.New("redis", c), slog.New(slog.NewTextHandler(&logs, nil)))

	ctx := context.Background()
	ps := client.Subscribe(ctx, "watched")
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	msgs := ps.Channel()
	stop()
	waitUntil(t, "the WARN", func() bool { return logs.count("Redis connection lost") == 1 })
	for range 3 {
		if client.Ping(ctx).Err() == nil {
			t.Fatal("PING answered with Redis stopped")
		}
	}
	redisServer(t, port)
	waitUntil(t, "the INFO", func() bool { return logs.count("Redis connection restored") == 1 })
	if err := client.Publish(ctx, "watched", "after").Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-msgs:
		if m.Payload != "after" {
			t.Errorf("got %q", m.Payload)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the subscription did not come back")
	}
	if n := logs.count("level=WARN"); n != 1 {
		t.Errorf("%d WARN lines for one outage:\n%s", n, logs.String())
	}
	if lost, restored := c.get(); lost != 1 || restored != 1 {
		t.Errorf("counted lost %d, restored %d; want 1, 1", lost, restored)
	}
	if !strings.Contains(logs.String(), "component=redis") {
		t.Errorf("the lines do not name the component:\n%s", logs.String())
	}
}

// TestWatchUnavailableAtStart: a Redis that never answered is
// "unavailable", not "lost"; an error Redis answers is no outage.
func TestWatchUnavailableAtStart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs redis-server")
	}
	port := freePort(t)
	client := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), MaxRetries: -1})
	defer client.Close()
	var logs syncBuffer
	Watch(client, connwatch.New("redis", nil), slog.New(slog.NewTextHandler(&logs, nil)))
	ctx := context.Background()
	client.Ping(ctx)
	client.Ping(ctx)
	if logs.count("Redis unavailable") != 1 || logs.count("Redis connection lost") != 0 {
		t.Errorf("logs:\n%s", logs.String())
	}
	redisServer(t, port)
	waitUntil(t, "Redis", func() bool { return client.Ping(ctx).Err() == nil })
	if err := client.Do(ctx, "NOSUCHCOMMAND").Err(); err == nil {
		t.Fatal("an unknown command succeeded")
	}
	if logs.count("Redis connection restored") != 1 || logs.count("level=WARN") != 1 {
		t.Errorf("logs:\n%s", logs.String())
	}
}
