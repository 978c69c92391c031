package pubsub

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cablehub/cablehub/server/protocol"
)

// Stream channels are the streams' names, as AnyCable's, except for names
// that could reach another channel; no two streams share a channel.
func TestRedisNames(t *testing.T) {
	n := NewRedisNames("broadcasts")
	cases := map[string]string{
		"chat":                  "chat",
		"":                      "",
		"_single":               "_single",
		"__anycable_internal__": RedisEscape + "__anycable_internal__",
		"__anycable__":          RedisEscape + "__anycable__",
		"__keyspace@0__:k":      RedisEscape + "__keyspace@0__:k",
		"broadcasts":            RedisEscape + "broadcasts",
		RedisEscape + "chat":    RedisEscape + RedisEscape + "chat",
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
		if got == InternalChannel || got == "__anycable__" || got == "broadcasts" {
			t.Errorf("%q reaches the reserved channel %q", stream, got)
		}
	}
}

// handler records what a pub/sub delivers.
type handler struct {
	mu       sync.Mutex
	pubs     []protocol.Publication
	commands []Command
}

func (h *handler) HandlePublication(p *protocol.Publication) {
	h.mu.Lock()
	h.pubs = append(h.pubs, *p)
	h.mu.Unlock()
}
func (h *handler) HandleCommand(c *Command) {
	h.mu.Lock()
	h.commands = append(h.commands, *c)
	h.mu.Unlock()
}
func (h *handler) HandleResubscribed([]string) {}
func (h *handler) HandleInterrupted()          {}
func (h *handler) HandleCluster([]byte)        {}

func (h *handler) counts() (int, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.pubs), len(h.commands)
}

func testRedisPubSubNamed(t *testing.T, names RedisNames) (*Redis, *handler, *redis.Client) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs Redis at 127.0.0.1:6379 (make test runs it)")
	}
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { client.Close() })
	if err := client.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	h := &handler{}
	ctx, cancel := context.WithCancel(context.Background())
	r := NewRedis(ctx, client, names, h, slog.New(slog.NewTextHandler(io.Discard, nil)))
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r, h, client
}

// waitUntil polls cond for up to 20 s (a Redis Cluster failover takes a
// few).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling
	}
}

// A client that subscribes to and leaves a stream named as the internal
// channel does not unsubscribe the node from it: remote commands still
// arrive. A stream named as the redis adapter's channel does not receive
// what is published there. The adapter's channel is named for this run:
// servers of other packages' tests share this Redis, and one listening
// on "__anycable__" would rightly turn a raw message there into a
// broadcast of its own.
func TestRedisStreamsCannotReachInternalChannels(t *testing.T) {
	adapter := fmt.Sprintf("adapter-%d", time.Now().UnixNano())
	r, h, client := testRedisPubSubNamed(t, NewRedisNames(adapter))
	ctx := context.Background()
	for _, s := range []string{InternalChannel, adapter} {
		if err := waitReady(r.Subscribe(s)); err != nil {
			t.Fatal(err)
		}
	}
	r.Unsubscribe(InternalChannel)
	id := fmt.Sprintf("x-%d", time.Now().UnixNano())
	if err := r.PublishCommand(ctx, &Command{Command: "disconnect", Identifier: id}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the remote command", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, c := range h.commands {
			if c.Identifier == id {
				return true
			}
		}
		return false
	})
	raw := fmt.Sprintf(`{"stream":%q,"data":"%d"}`, adapter, time.Now().UnixNano())
	client.Publish(ctx, adapter, raw)
	if err := r.Publish(ctx, []protocol.Publication{{Stream: adapter, Data: "through the pub/sub"}}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the stream's publication", func() bool { p, _ := h.counts(); return p >= 1 })
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.pubs) != 1 || h.pubs[0].Data != "through the pub/sub" {
		t.Errorf("delivered %+v", h.pubs)
	}
}

// A subscription Redis does not confirm fails, and is not counted.
func TestRedisSubscribeFailsWhenRedisIsDown(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { client.Close() })
	h := &handler{}
	r := NewRedis(context.Background(), client, NewRedisNames(), h, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if waitReady(r.Subscribe("s")) == nil {
		t.Fatal("subscribed with Redis down")
	}
	r.Unsubscribe("s")
	if got := r.interest.list(); len(got) != 0 {
		t.Errorf("failed stream still counted: %v", got)
	}
}

// waitReady waits until r is done and returns its error.
func waitReady(r *Ready) error {
	<-r.Done()
	return r.Err()
}
