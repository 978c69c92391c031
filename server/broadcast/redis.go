package broadcast

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cablehub/cablehub/server/backoff"
	"github.com/cablehub/cablehub/server/connwatch"
)

// The redis adapter's timing.
const (
	// redisPingEvery is how long the subscription may stay silent before
	// the adapter sends a PING; a PING unanswered for as long again means
	// the connection is dead (a Redis that hangs, or a network that drops
	// packets without a reset).
	redisPingEvery = 10 * time.Second
	// redisBackoffMin and redisBackoffMax bound the wait between attempts
	// to reach Redis (backoff.New): it grows after each failure and starts
	// over once subscribed.
	redisBackoffMin = time.Second
	redisBackoffMax = 30 * time.Second
)

// The roles the redis adapter reports (Role).
const (
	RoleConnecting = "connecting"
	RoleListening  = "listening"
	RoleStandby    = "standby"
)

// redisAdapter is the redis adapter: AnyCable's legacy Redis pub/sub
// broadcaster. It SUBSCRIBEs to one channel (--redis_channel, default
// __anycable__) where publishers PUBLISH payloads, and hands each to the
// sink, in the order Redis delivers them.
//
// Unlike AnyCable it sends them through the broker, so they get offsets
// and history like every other broadcast, and it never gives up: it
// retries Redis with backoff for as long as the process runs, logging a
// WARN per attempt and reporting the outage through Err (AnyCable exits
// after five failed attempts).
//
// When Redis closes the subscribed connection under it, it subscribes
// again at once, before any backoff: what is published until then
// reaches no one (Redis pub/sub keeps nothing), so every millisecond
// counts. Redis does that to a subscriber whose output buffer passes
// client-output-buffer-limit pubsub (32 MB by default): one message that
// large does it, and then the following ones are lost only while the
// adapter resubscribes, milliseconds instead of the first backoff step.
// Each such loss is logged (a WARN) and counted, as is the return (an
// INFO), once each (watch).
//
// With a cluster pub/sub (Options.Clustered) one node at a time listens:
// the holder of a lease in Redis (redisLease); the others stand by and
// take over when it lapses.
type redisAdapter struct {
	client  redis.UniversalClient
	channel string
	h       *Handler
	log     *slog.Logger
	lease   *redisLease // nil without a cluster pub/sub
	// watch follows Redis's reachability as the adapter sees it.
	watch *connwatch.Watch

	mu   sync.Mutex
	err  error
	role string
}

func newRedis(o Options, h *Handler, log *slog.Logger) *redisAdapter {
	a := &redisAdapter{client: o.Redis, channel: o.RedisChannel, h: h, log: log, role: RoleConnecting,
		watch: connwatch.New("broadcast:"+NameRedis, o.Metrics)}
	if o.Clustered {
		a.lease = newRedisLease(o.Redis, "cablehub:broadcast:redis:"+o.RedisChannel, o.NodeID)
	}
	return a
}

// Name is "redis".
func (a *redisAdapter) Name() string { return NameRedis }

// Err is why the adapter cannot receive broadcasts now, or nil.
func (a *redisAdapter) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// Role is RoleListening while subscribed, RoleStandby while another node
// holds the cluster's lease, else RoleConnecting.
func (a *redisAdapter) Role() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.role
}

func (a *redisAdapter) set(role string, err error) {
	a.mu.Lock()
	a.role, a.err = role, err
	a.mu.Unlock()
}

// Describe is the adapter's startup line.
func (a *redisAdapter) Describe() string {
	s := fmt.Sprintf("Starting Redis broadcaster at %s (channel: %s)", redisAddr(a.client), a.channel)
	if a.lease != nil {
		s += "; one node of the cluster listens at a time"
	}
	return s
}

func redisAddr(c redis.UniversalClient) string {
	if c, ok := c.(*redis.Client); ok {
		return c.Options().Addr
	}
	return "Redis"
}

// errLeaseLost ends listening when another node holds the lease.
var errLeaseLost = errors.New("another node holds the Redis broadcast lease")

// Run listens until ctx is done, reconnecting forever.
func (a *redisAdapter) Run(ctx context.Context) error {
	wait := backoff.New(redisBackoffMin, redisBackoffMax, nil)
	standby := false
	for ctx.Err() == nil {
		if a.lease != nil {
			held, err := a.lease.hold(ctx)
			if err == nil {
				a.reachable()
			}
			if err == nil && !held {
				if !standby {
					a.log.Info("another node listens to the Redis broadcast channel; standing by", "channel", a.channel)
				}
				standby = true
				a.set(RoleStandby, nil)
				sleep(ctx, redisLeaseRetry)
				continue
			}
			if err != nil {
				a.failed(ctx, err, wait)
				continue
			}
			standby = false
		}
		subscribed, err := a.listen(ctx)
		a.releaseLease(ctx)
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, errLeaseLost):
			a.log.Info("another node took over the Redis broadcast channel", "channel", a.channel)
			a.set(RoleConnecting, nil)
		default:
			if subscribed {
				wait.Reset()
			}
			a.failed(ctx, err, wait)
		}
	}
	return nil
}

// failed reports an unreachable Redis and waits wait's next delay.
func (a *redisAdapter) failed(ctx context.Context, err error, wait *backoff.Backoff) {
	if ctx.Err() != nil {
		return
	}
	a.watch.Lost()
	a.set(RoleConnecting, fmt.Errorf("subscribing to %s in Redis: %w", a.channel, err))
	d := wait.Next()
	a.log.Warn(fmt.Sprintf("Redis broadcast channel unavailable, next attempt in %s", d.Round(10*time.Millisecond)), "channel", a.channel, "error", err)
	sleep(ctx, d)
}

func (a *redisAdapter) releaseLease(ctx context.Context) {
	if a.lease == nil {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := a.lease.release(rctx); err != nil {
		a.log.Warn(fmt.Sprintf("Redis broadcast lease not released: another node takes the channel over when it expires, within %s", redisLeaseTTL),
			"channel", a.channel, "error", err)
	}
}

// reachable notes Redis answering; the first time after an outage it
// logs that the channel is back.
func (a *redisAdapter) reachable() {
	if ended, outage := a.watch.Restored(); ended {
		a.log.Info("Redis broadcast channel restored", "channel", a.channel, "outage", outage.Round(time.Millisecond).String())
	}
}

// listen subscribes and delivers messages until the connection fails, the
// lease is lost or ctx is done; subscribed tells whether it got as far as
// a confirmed subscription.
func (a *redisAdapter) listen(ctx context.Context) (subscribed bool, err error) {
	lctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ps := a.client.Subscribe(lctx, a.channel)
	defer ps.Close()
	// A blocked read ends when the connection is closed under it.
	defer context.AfterFunc(lctx, func() { ps.Close() })()
	if _, err := ps.ReceiveTimeout(lctx, redisPingEvery); err != nil {
		return false, err
	}
	// The startup line (Describe) already says where it listens; a
	// subscription after an outage is news (reachable).
	a.reachable()
	a.log.Debug("subscribed to Redis channel", "channel", a.channel)
	a.set(RoleListening, nil)
	if a.lease != nil {
		go a.lease.keep(lctx, cancel)
	}
	return true, a.receive(lctx, ps)
}

// receive delivers the subscription's messages until its connection fails
// twice in a row (it was dropped and could not be made again at once),
// the lease is lost or ctx is done.
//
// When a read fails, go-redis has already closed the connection and, in
// the same call, dialled a new one and sent SUBSCRIBE for the channel on
// it (or dials at the next read, if that failed): reading on is what
// resubscribes soonest. The new subscription's confirmation ends the
// outage; a second failure before it returns the error, for Run's
// backoff.
func (a *redisAdapter) receive(lctx context.Context, ps *redis.PubSub) error {
	deliver := context.WithoutCancel(lctx)
	pinged, resubscribing := false, false
	for {
		msg, err := ps.ReceiveTimeout(lctx, redisPingEvery)
		if lctx.Err() != nil {
			return context.Cause(lctx)
		}
		switch {
		case isTimeout(err) && !pinged:
			pinged = true
			if err := ps.Ping(lctx); err != nil {
				return err
			}
			continue
		case isTimeout(err):
			return fmt.Errorf("no answer to PING within %s", redisPingEvery)
		case err != nil && resubscribing:
			return err
		case err != nil:
			a.watch.Lost()
			// The error does not tell a restart from Redis cutting a
			// subscriber over its output buffer limit; the line names both.
			a.log.Warn("Redis broadcast subscription lost, subscribing again at once (Redis restarted or closed the connection, e.g. for a message over client-output-buffer-limit pubsub, 32 MB by default)",
				"channel", a.channel, "error", err)
			pinged, resubscribing = false, true
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if resubscribing && m.Kind == "subscribe" {
				resubscribing = false
				a.reachable()
			}
		case *redis.Message:
			if a.lease != nil && !a.lease.valid() {
				return errors.New("the Redis broadcast lease was not renewed in time")
			}
			a.h.Deliver(deliver, []byte(m.Payload))
		case *redis.Pong:
			pinged = false
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
