package pubsub

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// shards holds a node's stream subscriptions on a Redis Cluster as sharded
// ones (SSUBSCRIBE): each stream's channel is a shard channel in the slot
// of the stream's broker keys (RedisNames.Channel), so a publication
// crosses only the shard of its stream, where the broker's script
// SPUBLISHes it in the step that stamps it, instead of every node of the
// cluster as PUBLISH does.
//
// Shard channels are served by the master of their slot only, so the node
// keeps one subscription connection per master, made when it first needs
// one. go-redis redials a dropped connection to the master that owns the
// slot of one of its channels by then (after a failover, the promoted
// replica, once go-redis has reloaded the slot map) and subscribes all its
// channels again; Redis confirms each, and a confirmation of a channel
// confirmed before is how the node learns that the connection dropped, so
// that it catches the connection's streams up from history. A channel
// that Redis unsubscribes by itself (its slot moved to another master) is
// subscribed again where its slot lives now, and caught up the same way.
//
// Every event of every connection is handed to Redis.Run's goroutine
// (events), which keeps the Handler's calls on one goroutine.
type shards struct {
	client *redis.ClusterClient
	events chan shardEvent

	mu      sync.Mutex
	byAddr  map[string]*redis.PubSub
	of      map[string]*redis.PubSub // channel -> its connection
	streams map[string]string        // channel -> stream
	seen    map[string]bool          // channels confirmed at least once
	closed  bool
	done    chan struct{} // closed by close
}

// shardEvent is a message or a subscription event of one connection.
type shardEvent struct {
	ps  *redis.PubSub
	msg any
}

func newShards(client *redis.ClusterClient) *shards {
	return &shards{client: client, events: make(chan shardEvent, 4096),
		byAddr: map[string]*redis.PubSub{}, of: map[string]*redis.PubSub{},
		streams: map[string]string{}, seen: map[string]bool{}, done: make(chan struct{})}
}

// subscribe sends SSUBSCRIBE for stream's channel on the connection to
// the master of the channel's slot. The confirmation arrives as an event.
func (s *shards) subscribe(ctx context.Context, stream, channel string) error {
	master, err := s.client.MasterForKey(ctx, channel)
	if err != nil {
		return err
	}
	addr := master.Options().Addr
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return redis.ErrClosed
	}
	ps, ok := s.byAddr[addr]
	if !ok {
		ps = s.client.SSubscribe(context.Background())
		s.byAddr[addr] = ps
	}
	s.of[channel] = ps
	s.streams[channel] = stream
	s.mu.Unlock()
	err = ps.SSubscribe(ctx, channel)
	if !ok {
		// Only now: go-redis dials on the first command, to the master of
		// the slot of the first channel it knows of, and a receive before
		// any SSUBSCRIBE would dial a random node instead.
		go s.forward(ps)
	}
	return err
}

// unsubscribe sends SUNSUBSCRIBE for channel on its connection.
func (s *shards) unsubscribe(ctx context.Context, channel string) error {
	s.mu.Lock()
	ps := s.of[channel]
	delete(s.of, channel)
	delete(s.streams, channel)
	delete(s.seen, channel)
	s.mu.Unlock()
	if ps == nil {
		return nil
	}
	return ps.SUnsubscribe(ctx, channel)
}

// forward hands ps's messages and subscription events to Run's goroutine
// until ps is closed or fails. A connection silent for shardIdle is
// pinged, so one that died without a word fails too.
//
// A failed connection is never redialled as it is: go-redis would send
// all its channels again in one SSUBSCRIBE, which Redis refuses unless
// they share a slot, and its slot map may be stale after a failover (it
// reloads it by itself only on a command's redirect or once a minute). So
// forward closes it and rehomes its channels.
func (s *shards) forward(ps *redis.PubSub) {
	ctx := context.Background()
	for {
		m, err := ps.ReceiveTimeout(ctx, shardIdle)
		var nerr net.Error
		switch {
		case errors.Is(err, redis.ErrClosed):
			return
		case errors.As(err, &nerr) && nerr.Timeout():
			_ = ps.Ping(ctx)
			continue
		case err != nil:
			select {
			case <-s.done:
			case <-time.After(shardRedial):
				s.rehome(ps)
			}
			return
		}
		switch m.(type) {
		case *redis.Message, *redis.Subscription:
			select {
			case s.events <- shardEvent{ps: ps, msg: m}:
			case <-s.done:
				return
			}
		}
	}
}

// rehome closes the failed connection ps, reloads the slot map and
// subscribes ps's channels again, one SSUBSCRIBE each, on the connections
// to their masters of now. Their confirmations catch their streams up
// (confirmedAgain). A channel whose master is still unreachable fails
// again on its new connection, which rehomes it once more.
func (s *shards) rehome(ps *redis.PubSub) {
	ps.Close()
	s.mu.Lock()
	moved := map[string]string{}
	for ch, p := range s.of {
		if p == ps {
			moved[ch] = s.streams[ch]
			delete(s.of, ch)
		}
	}
	for addr, p := range s.byAddr {
		if p == ps {
			delete(s.byAddr, addr)
		}
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), SubscribeTimeout)
	defer cancel()
	s.client.ReloadState(ctx)
	for ch, stream := range moved {
		s.mu.Lock()
		_, wanted := s.streams[ch]
		s.mu.Unlock()
		if wanted {
			_ = s.subscribe(ctx, stream, ch)
		}
	}
}

const (
	shardIdle   = 30 * time.Second
	shardRedial = 100 * time.Millisecond
)

// confirmedAgain records channel's confirmation and returns its stream
// when the channel had been confirmed before on any connection (a
// resubscription after a drop or a move: the stream may have missed
// publications), else "".
func (s *shards) confirmedAgain(channel string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	stream, wanted := s.streams[channel]
	if !wanted {
		return "", false
	}
	again := s.seen[channel]
	s.seen[channel] = true
	return stream, again
}

// unsubscribedByRedis reports whether Redis dropped channel of ps without
// the node asking (its slot moved), and if so which stream to subscribe
// again; the channel stays marked as seen, so its next confirmation
// catches the stream up.
func (s *shards) unsubscribedByRedis(ps *redis.PubSub, channel string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.of[channel] != ps {
		return "", false
	}
	delete(s.of, channel)
	return s.streams[channel], true
}

// close closes every connection.
func (s *shards) close() {
	s.mu.Lock()
	if !s.closed {
		close(s.done)
	}
	s.closed = true
	conns := s.byAddr
	s.byAddr = map[string]*redis.PubSub{}
	s.mu.Unlock()
	for _, ps := range conns {
		ps.Close()
	}
}

// resubscribeBatch is how long Run gathers the streams of resubscriptions
// before catching them up together: a redialled connection confirms all
// its channels at once.
const resubscribeBatch = 100 * time.Millisecond
