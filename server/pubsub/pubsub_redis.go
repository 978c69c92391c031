package pubsub

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/cablehub/cablehub/server/protocol"
	"github.com/cablehub/cablehub/server/redisconn"
)

// Redis is the pub/sub over Redis PUBLISH/SUBSCRIBE: one channel per stream
// (RedisChannel), plus InternalChannel for commands. go-redis reconnects and
// re-subscribes by itself after Redis comes back.
type Redis struct {
	client   redis.UniversalClient
	ps       *redis.PubSub
	h        Handler
	log      *slog.Logger
	interest interest
}

// RedisChannel is the Redis channel that carries stream's publications:
// named exactly as the stream, as AnyCable does. Whatever PUBLISHes a
// stream message there reaches every node listening to the stream; the
// Redis broker does, when Redis is also the pub/sub, to stamp and publish
// in one step.
func RedisChannel(stream string) string { return stream }

// NewRedis returns a Redis pub/sub on client delivering to h. It subscribes
// to the internal channel at once; a Redis that is down is retried in the
// background.
func NewRedis(ctx context.Context, client redis.UniversalClient, h Handler, log *slog.Logger) *Redis {
	return &Redis{client: client, ps: client.Subscribe(ctx, InternalChannel), h: h, log: log}
}

// Describe names the pub/sub for the startup log.
func (r *Redis) Describe() string {
	return "Using Redis pub/sub at " + redisconn.Describe(r.client)
}

// Run receives messages until ctx is done. go-redis subscribes every
// channel again after a reconnect, in one SUBSCRIBE; the internal channel's
// confirmation, after the first, tells that this happened (and that the
// stream channels of that command are subscribed by then).
func (r *Redis) Run(ctx context.Context) {
	defer r.ps.Close()
	ch := r.ps.ChannelWithSubscriptions(redis.WithChannelSize(4096))
	connected := false
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
				if m.Kind == "subscribe" && m.Channel == InternalChannel {
					if connected {
						r.h.HandleResubscribed(r.interest.streams())
					}
					connected = true
				}
			}
		}
	}
}

func (r *Redis) dispatch(channel string, payload []byte) {
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
		pipe.Publish(ctx, RedisChannel(pubs[i].Stream), protocol.EncodeStreamMessage(&pubs[i]))
	}
	_, err := pipe.Exec(ctx)
	return err
}

// PublishCommand sends c to every node.
func (r *Redis) PublishCommand(ctx context.Context, c *Command) error {
	b, _ := json.Marshal(c)
	return r.client.Publish(ctx, InternalChannel, b).Err()
}

// Subscribe notes a local subscription to stream; the first one subscribes
// the node to the stream's channel.
func (r *Redis) Subscribe(stream string) {
	r.interest.add(stream, func(s string) {
		if err := r.ps.Subscribe(context.Background(), RedisChannel(s)); err != nil {
			r.log.Warn("redis subscribe failed; retried on reconnect", "stream", s, "error", err)
		}
	})
}

// Unsubscribe notes a local subscription gone; the last one unsubscribes.
func (r *Redis) Unsubscribe(stream string) {
	r.interest.remove(stream, func(s string) {
		if err := r.ps.Unsubscribe(context.Background(), RedisChannel(s)); err != nil {
			r.log.Debug("redis unsubscribe failed", "stream", s, "error", err)
		}
	})
}

// Healthy pings Redis.
func (r *Redis) Healthy(ctx context.Context) error {
	return r.client.Ping(ctx).Err()
}
