package redisconn

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cablehub/cablehub/server/connwatch"
)

// Watch makes client report its connection's health to w and log its
// outages, once each: a WARN "Redis connection lost" (or "Redis
// unavailable" when it never worked) at the first failure, an INFO "Redis
// connection restored" with the outage's length at the first success
// after it. Everything that uses the client feeds it: the broker's and
// the adapters' commands, and the dials of the pub/sub's connection,
// which go-redis redials at once when it drops (so a Redis that goes
// away is noticed even while nothing is published). log should name the
// component (context=…); the lines carry w's component too.
//
// What counts as a failure: a dial that fails, and a command that gets
// no answer (a network error, a timeout). An error answered by Redis
// (WRONGTYPE, NOSCRIPT …) is the connection working; a caller's
// cancellation, the client being closed and an exhausted pool are not
// the connection's doing and change nothing. With a Redis Cluster every
// node's dials are watched too, as one component.
func Watch(client redis.UniversalClient, w *connwatch.Watch, log *slog.Logger) {
	h := &watchHook{w: w, log: log.With("component", w.Component())}
	client.AddHook(h)
	if c, ok := client.(*redis.ClusterClient); ok {
		c.OnNewNode(func(node *redis.Client) { node.AddHook(h) })
	}
}

// watchHook is the go-redis hook of Watch.
type watchHook struct {
	w   *connwatch.Watch
	log *slog.Logger
}

var _ redis.Hook = (*watchHook)(nil)

func (h *watchHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil {
			if ctx.Err() == nil {
				h.lost(err)
			}
			return nil, err
		}
		h.restored()
		return conn, nil
	}
}

func (h *watchHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.report(err)
		return err
	}
}

func (h *watchHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.report(err)
		return err
	}
}

// report feeds a command's outcome to the watch (see Watch for what
// counts).
func (h *watchHook) report(err error) {
	var answered redis.Error
	switch {
	case err == nil, errors.Is(err, redis.Nil), errors.As(err, &answered):
		h.restored()
	case errors.Is(err, context.Canceled), errors.Is(err, redis.ErrClosed), errors.Is(err, redis.ErrPoolTimeout):
	default:
		h.lost(err)
	}
}

func (h *watchHook) lost(err error) {
	began, first := h.w.Lost()
	switch {
	case began && first:
		h.log.Warn("Redis unavailable", "error", err)
	case began:
		h.log.Warn("Redis connection lost", "error", err)
	}
}

func (h *watchHook) restored() {
	if ended, outage := h.w.Restored(); ended {
		h.log.Info("Redis connection restored", "outage", outage.Round(time.Millisecond).String())
	}
}
