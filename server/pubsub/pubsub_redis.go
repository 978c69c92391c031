package pubsub

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cablehub/cablehub/server/protocol"
	"github.com/cablehub/cablehub/server/redisconn"
)

// Redis is the pub/sub over Redis PUBLISH/SUBSCRIBE: one channel per stream
// (RedisNames), plus InternalChannel for commands. go-redis reconnects and
// re-subscribes by itself after Redis comes back.
type Redis struct {
	client   redis.UniversalClient
	ps       *redis.PubSub
	shards   *shards // stream subscriptions when names are sharded, else nil
	names    RedisNames
	h        Handler
	log      *slog.Logger
	interest interest

	// confirmations are the waiters of SUBSCRIBE replies, by channel.
	cmu           sync.Mutex
	confirmations map[string][]*confirmation
}

// SubscribeTimeout bounds the wait for the pub/sub server to confirm a
// subscription; past it the subscription fails (the client is refused).
const SubscribeTimeout = 2 * time.Second

// RedisEscape starts the channel of every stream whose name could reach a
// channel that is not a stream's (see RedisNames).
const RedisEscape = "cablehub:stream:"

// RedisNames maps streams to the Redis channels carrying their
// publications. A stream's channel is named exactly as the stream, as
// AnyCable does, so AnyCable and Cablehub nodes sharing a Redis deliver
// each other's publications; except for names that could reach a channel
// that is not a stream's: names starting with "__" (AnyCable's and
// Cablehub's internal channels, such as InternalChannel and the redis
// broadcast adapter's __anycable__, and Redis's own __keyspace@…), the
// reserved names given (a redis adapter channel named otherwise), and names
// starting with RedisEscape. Those travel on RedisEscape + name. No two
// streams share a channel, and no stream reaches a reserved or internal
// one.
type RedisNames struct {
	reserved map[string]bool
	// sharded names channels for sharded pub/sub on a Redis Cluster.
	sharded bool
	// cluster is the node messages' channel (ClusterChannel, scoped).
	cluster string
}

// WithClusterScope scopes the channel of the nodes' messages (announces
// and queries) to scope, e.g. a Redis database: Redis pub/sub channels
// are shared by every database of a server, while deployments on
// different databases are different clusters.
func (n RedisNames) WithClusterScope(scope string) RedisNames {
	n.cluster = ClusterChannel + ":" + scope
	return n
}

// ClusterChannel is the channel of the nodes' messages.
func (n RedisNames) ClusterChannel() string {
	if n.cluster == "" {
		return ClusterChannel
	}
	return n.cluster
}

// NewRedisNames returns the naming that keeps streams off reserved, the
// channels besides InternalChannel that something other than stream
// publications uses on the same Redis.
func NewRedisNames(reserved ...string) RedisNames {
	n := RedisNames{reserved: map[string]bool{}}
	for _, r := range reserved {
		n.reserved[r] = true
	}
	return n
}

// Sharded returns the naming for sharded pub/sub on a Redis Cluster
// (SSUBSCRIBE, SPUBLISH): a stream's channel then hashes to the slot of
// the stream's broker keys (redisconn.SlotTag), so the broker's script can
// stamp and publish in one step on the stream's shard. A name that is its
// own tag (no brace, not starting with "#") and needs no escape is its
// channel, as without sharding; any other travels on RedisEscape + "{" +
// tag + "}". Plain channels hold no brace and escaped ones do, and tags
// differ between streams, so no two streams share a channel.
func (n RedisNames) Sharded() RedisNames {
	n.sharded = true
	return n
}

// IsSharded reports whether n names sharded channels.
func (n RedisNames) IsSharded() bool { return n.sharded }

// Channel is the Redis channel of stream. Whatever PUBLISHes a stream
// message there reaches every node listening to the stream; the Redis
// broker does, when Redis is also the pub/sub, to stamp and publish in one
// step.
func (n RedisNames) Channel(stream string) string {
	if n.sharded {
		if tag := redisconn.SlotTag(stream); tag != stream || n.escaped(stream) {
			return RedisEscape + "{" + tag + "}"
		}
		return stream
	}
	if n.escaped(stream) {
		return RedisEscape + stream
	}
	return stream
}

// escaped reports whether stream's name could reach a channel that is
// not a stream's.
func (n RedisNames) escaped(stream string) bool {
	return strings.HasPrefix(stream, "__") || strings.HasPrefix(stream, RedisEscape) || n.reserved[stream]
}

// NewRedis returns a Redis pub/sub on client delivering to h, naming
// stream channels with names. It subscribes to the internal channel at
// once; a Redis that is down is retried in the background. With sharded
// names on a Redis Cluster, streams travel on sharded channels (see
// shards); the internal and cluster channels stay classic ones, which
// every node of the cluster carries.
func NewRedis(ctx context.Context, client redis.UniversalClient, names RedisNames, h Handler, log *slog.Logger) *Redis {
	r := &Redis{client: client, ps: client.Subscribe(ctx, InternalChannel, names.ClusterChannel()), names: names, h: h, log: log,
		confirmations: map[string][]*confirmation{}}
	if c, ok := client.(*redis.ClusterClient); ok && names.sharded {
		r.shards = newShards(c)
	}
	return r
}

// Describe names the pub/sub for the startup log.
func (r *Redis) Describe() string {
	if r.shards != nil {
		return "Using Redis pub/sub at " + redisconn.Describe(r.client) + " (sharded: streams on SSUBSCRIBE/SPUBLISH)"
	}
	return "Using Redis pub/sub at " + redisconn.Describe(r.client)
}

// Run receives messages until ctx is done. go-redis subscribes every
// channel again after a reconnect, in one SUBSCRIBE; the internal channel's
// confirmation, after the first, tells that this happened (and that the
// stream channels of that command are subscribed by then). Sharded stream
// subscriptions have connections of their own (shards), whose events
// arrive here too.
func (r *Redis) Run(ctx context.Context) {
	defer r.ps.Close()
	var events chan shardEvent
	if r.shards != nil {
		defer r.shards.close()
		events = r.shards.events
	}
	ch := r.ps.ChannelWithSubscriptions(redis.WithChannelSize(4096))
	connected := false
	var caughtUp resubscriptions
	for {
		select {
		case <-ctx.Done():
			return
		case msg, ok := <-ch:
			if !ok {
				return
			}
			switch m := msg.(type) {
			case *redis.Message:
				r.dispatch(m.Channel, []byte(m.Payload))
			case *redis.Subscription:
				if m.Kind == "subscribe" {
					r.confirmed(m.Channel)
				}
				if m.Kind == "subscribe" && m.Channel == InternalChannel {
					if connected && r.shards == nil {
						// Redis confirms every channel of the resubscription
						// before it delivers any message to it.
						r.log.Warn("Redis pub/sub connection was lost and is back; catching up from history")
						r.h.HandleInterrupted()
						r.h.HandleResubscribed(r.interest.list())
					}
					connected = true
				}
			}
		case ev := <-events:
			r.shardEvent(ev, &caughtUp)
		case <-caughtUp.due():
			streams := caughtUp.take()
			r.log.Warn("Redis Cluster shard connection was lost and is back; catching up from history", "streams", len(streams))
			r.h.HandleResubscribed(streams)
		}
	}
}

// shardEvent handles an event of a sharded subscription connection: a
// publication, a confirmation (one of a channel confirmed before means
// the connection dropped or the channel moved: its stream is caught up),
// or an unsubscription Redis made by itself (the slot moved: subscribe
// again where it lives now).
func (r *Redis) shardEvent(ev shardEvent, caughtUp *resubscriptions) {
	switch m := ev.msg.(type) {
	case *redis.Message:
		r.dispatch(m.Channel, []byte(m.Payload))
	case *redis.Subscription:
		switch m.Kind {
		case "ssubscribe":
			r.confirmed(m.Channel)
			if stream, again := r.shards.confirmedAgain(m.Channel); again {
				if caughtUp.empty() {
					r.h.HandleInterrupted()
				}
				caughtUp.add(stream)
			}
		case "sunsubscribe":
			if stream, ok := r.shards.unsubscribedByRedis(ev.ps, m.Channel); ok {
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), SubscribeTimeout)
					defer cancel()
					if err := r.shards.subscribe(ctx, stream, m.Channel); err != nil {
						r.log.Warn("resubscribing a moved shard channel failed", "stream", stream, "error", err)
					}
				}()
			}
		}
	}
}

// resubscriptions gathers the streams of resubscribed shard channels for
// resubscribeBatch, so that a redialled connection's streams are caught
// up in one go.
type resubscriptions struct {
	streams []string
	timer   *time.Timer
}

func (b *resubscriptions) empty() bool { return len(b.streams) == 0 }

func (b *resubscriptions) add(stream string) {
	if b.timer == nil {
		b.timer = time.NewTimer(resubscribeBatch)
	} else if len(b.streams) == 0 {
		b.timer.Reset(resubscribeBatch)
	}
	b.streams = append(b.streams, stream)
}

// due fires when the gathered streams are to be caught up; nil (never)
// while none are gathered.
func (b *resubscriptions) due() <-chan time.Time {
	if len(b.streams) == 0 || b.timer == nil {
		return nil
	}
	return b.timer.C
}

func (b *resubscriptions) take() []string {
	out := b.streams
	b.streams = nil
	return out
}

func (r *Redis) dispatch(channel string, payload []byte) {
	if channel == r.names.ClusterChannel() {
		r.h.HandleCluster(payload)
		return
	}
	if channel == InternalChannel {
		var c Command
		if err := json.Unmarshal(payload, &c); err != nil {
			r.log.Warn("malformed remote command", "error", err)
			return
		}
		r.h.HandleCommand(&c)
		return
	}
	p, err := protocol.DecodeStreamMessage(payload)
	if err != nil {
		r.log.Warn("malformed publication from pub/sub", "channel", channel, "error", err)
		return
	}
	r.h.HandlePublication(p)
}

// Publish sends pubs to every node in one pipeline, so they stay in order.
func (r *Redis) Publish(ctx context.Context, pubs []protocol.Publication) error {
	pipe := r.client.Pipeline()
	for i := range pubs {
		if r.shards != nil {
			pipe.SPublish(ctx, r.names.Channel(pubs[i].Stream), protocol.EncodeStreamMessage(&pubs[i]))
		} else {
			pipe.Publish(ctx, r.names.Channel(pubs[i].Stream), protocol.EncodeStreamMessage(&pubs[i]))
		}
	}
	_, err := pipe.Exec(ctx)
	return err
}

// PublishCommand sends c to every node.
func (r *Redis) PublishCommand(ctx context.Context, c *Command) error {
	b, _ := json.Marshal(c)
	return r.client.Publish(ctx, InternalChannel, b).Err()
}

// PublishCluster sends payload to every node's HandleCluster.
func (r *Redis) PublishCluster(ctx context.Context, payload []byte) error {
	return r.client.Publish(ctx, r.names.ClusterChannel(), payload).Err()
}

// Subscribe notes a local subscription to stream; the first one subscribes
// the node to the stream's channel. Its Ready is done once Redis confirmed
// the subscription (so a publication made after the client's confirmation
// reaches the node), or failed when Redis does not confirm within
// SubscribeTimeout: the caller then removes the subscription.
func (r *Redis) Subscribe(stream string) *Ready {
	return r.interest.add(stream, func(s string, done func(error)) {
		channel := r.names.Channel(s)
		c := r.expect(channel, done)
		ctx, cancel := context.WithTimeout(context.Background(), SubscribeTimeout)
		defer cancel()
		if err := r.subscribeChannel(ctx, s, channel); err != nil {
			r.fail(channel, c, fmt.Errorf("subscribing to stream %q: %w", s, err))
			return
		}
		r.cmu.Lock()
		if slices.Contains(r.confirmations[channel], c) { // else confirmed already
			c.timer = time.AfterFunc(SubscribeTimeout, func() {
				r.fail(channel, c, fmt.Errorf("subscribing to stream %q: Redis did not confirm in time", s))
			})
		}
		r.cmu.Unlock()
	})
}

// confirmation is a subscription waiting for Redis's SUBSCRIBE reply.
type confirmation struct {
	done  func(error)
	timer *time.Timer // set once the SUBSCRIBE is sent; guarded by cmu
}

// expect registers a waiter for channel's SUBSCRIBE reply.
func (r *Redis) expect(channel string, done func(error)) *confirmation {
	c := &confirmation{done: done}
	r.cmu.Lock()
	r.confirmations[channel] = append(r.confirmations[channel], c)
	r.cmu.Unlock()
	return c
}

// fail settles c with err, unless it was confirmed already.
func (r *Redis) fail(channel string, c *confirmation, err error) {
	r.cmu.Lock()
	waiters := r.confirmations[channel]
	i := slices.Index(waiters, c)
	if i >= 0 {
		waiters = slices.Delete(waiters, i, i+1)
		if len(waiters) == 0 {
			delete(r.confirmations, channel)
		} else {
			r.confirmations[channel] = waiters
		}
	}
	r.cmu.Unlock()
	if i >= 0 {
		c.done(err)
	}
}

// confirmed settles the waiters of channel's SUBSCRIBE reply.
func (r *Redis) confirmed(channel string) {
	r.cmu.Lock()
	waiters := r.confirmations[channel]
	delete(r.confirmations, channel)
	for _, c := range waiters {
		if c.timer != nil {
			c.timer.Stop()
		}
	}
	r.cmu.Unlock()
	for _, c := range waiters {
		c.done(nil)
	}
}

// Unsubscribe notes a local subscription gone; the last one unsubscribes.
func (r *Redis) Unsubscribe(stream string) {
	r.interest.remove(stream, func(s string) {
		if err := r.unsubscribeChannel(context.Background(), r.names.Channel(s)); err != nil {
			r.log.Debug("redis unsubscribe failed", "stream", s, "error", err)
		}
	})
}

// subscribeChannel subscribes to stream's channel: a sharded one on its
// master's connection, or a classic one.
func (r *Redis) subscribeChannel(ctx context.Context, stream, channel string) error {
	if r.shards != nil {
		return r.shards.subscribe(ctx, stream, channel)
	}
	return r.ps.Subscribe(ctx, channel)
}

func (r *Redis) unsubscribeChannel(ctx context.Context, channel string) error {
	if r.shards != nil {
		return r.shards.unsubscribe(ctx, channel)
	}
	return r.ps.Unsubscribe(ctx, channel)
}

// Healthy pings Redis.
func (r *Redis) Healthy(ctx context.Context) error {
	return r.client.Ping(ctx).Err()
}
