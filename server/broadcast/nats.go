package broadcast

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// NATSOptions configure the nats adapter: AnyCable's NATS broadcaster,
// where publishers publish payloads on one core NATS subject.
type NATSOptions struct {
	// Subject is --nats_channel.
	Subject string
	// Queue, when set, subscribes as a member of this queue group, so each
	// message reaches one node of the group instead of all. That is what a
	// cluster with a pub/sub between nodes needs: the node that takes a
	// broadcast stamps it and the pub/sub fans it out to the others (were
	// every node to take it, each would publish it once more). Without a
	// cluster pub/sub it must stay empty: then each node delivers every
	// broadcast to its own clients.
	Queue string
}

// DefaultNATSOptions are AnyCable's: subject __anycable__, no queue group.
func DefaultNATSOptions() NATSOptions {
	return NATSOptions{Subject: "__anycable__"}
}

// NATSQueue is the queue group the server's nodes share when a cluster
// pub/sub carries broadcasts between them (see NATSOptions.Queue).
const NATSQueue = "cablehub-broadcast"

// errNotSubscribed is Err's answer until the subscription is in place.
var errNotSubscribed = errors.New("NATS broadcast subscription not made yet")

// NATS is the nats adapter. Core NATS keeps nothing: broadcasts published
// while no node is subscribed or connected are lost, as with AnyCable.
// Messages are handled one at a time, in the order they arrived.
type NATS struct {
	conn   *nats.Conn
	opts   NATSOptions
	handle func(ctx context.Context, payload []byte) error
	log    *slog.Logger

	mu  sync.Mutex
	err error
}

// NewNATS returns the nats adapter subscribing on conn (which reconnects by
// itself; the subscription is renewed on every reconnect) and giving each
// message's payload to handle. Core NATS cannot redeliver, so handle's
// errors are logged and the message is gone.
func NewNATS(conn *nats.Conn, o NATSOptions, handle func(ctx context.Context, payload []byte) error, log *slog.Logger) *NATS {
	if o.Subject == "" {
		o.Subject = DefaultNATSOptions().Subject
	}
	log = log.With("adapter", "nats", "subject", o.Subject)
	return &NATS{conn: conn, opts: o, handle: handle, log: log, err: errNotSubscribed}
}

// Name is "nats".
func (n *NATS) Name() string { return "nats" }

// Err is nil while subscribed on a connected NATS.
func (n *NATS) Err() error {
	if !n.conn.IsConnected() {
		return errors.New("NATS is not connected")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

func (n *NATS) setErr(err error) {
	n.mu.Lock()
	n.err = err
	n.mu.Unlock()
}

// Run subscribes and handles messages until ctx ends, then unsubscribes.
// A subscription that fails (NATS refused it) is tried again with backoff.
func (n *NATS) Run(ctx context.Context) error {
	var delay time.Duration
	for ctx.Err() == nil {
		sub, err := n.subscribe()
		if err != nil {
			n.setErr(fmt.Errorf("NATS broadcast subscription: %w", err))
			n.log.Warn("NATS broadcast subscription failed; retrying", "error", err)
			delay = min(max(2*delay, 250*time.Millisecond), redisxMaxBackoff)
			select {
			case <-ctx.Done():
			case <-time.After(delay):
			}
			continue
		}
		n.setErr(nil)
		n.consume(ctx, sub)
		if err := sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			n.log.Debug("NATS broadcast unsubscribe", "error", err)
		}
	}
	return nil
}

// subscribe subscribes to the subject (in the queue group, if any) and
// waits, briefly, for the server to confirm it so that what is published
// from then on is received. Subscribing while NATS is unreachable succeeds:
// the subscription is sent once the connection is up.
func (n *NATS) subscribe() (*nats.Subscription, error) {
	var sub *nats.Subscription
	var err error
	if n.opts.Queue != "" {
		sub, err = n.conn.QueueSubscribeSync(n.opts.Subject, n.opts.Queue)
	} else {
		sub, err = n.conn.SubscribeSync(n.opts.Subject)
	}
	if err != nil {
		return nil, err
	}
	if n.conn.IsConnected() {
		if err := n.conn.FlushTimeout(2 * time.Second); err != nil {
			n.log.Debug("NATS flush after subscribe", "error", err)
		}
	}
	queue := ""
	if n.opts.Queue != "" {
		queue = " (queue group " + n.opts.Queue + ")"
	}
	n.log.Info(fmt.Sprintf("Consuming broadcasts from NATS subject %s%s", n.opts.Subject, queue))
	return sub, nil
}

// consume handles messages until ctx ends or the subscription becomes
// unusable (the connection was closed for good).
func (n *NATS) consume(ctx context.Context, sub *nats.Subscription) {
	for {
		m, err := sub.NextMsgWithContext(ctx)
		switch {
		case err == nil:
			if err := n.handle(ctx, m.Data); err != nil && ctx.Err() == nil {
				n.log.Warn("NATS broadcast dropped", "error", err, "payload", truncate(string(m.Data), 256))
			}
		case ctx.Err() != nil:
			return
		case errors.Is(err, nats.ErrSlowConsumer):
			dropped, _ := sub.Dropped()
			n.log.Warn("NATS broadcasts dropped: they arrived faster than they could be delivered", "dropped_total", dropped)
		default:
			n.setErr(fmt.Errorf("NATS broadcast subscription: %w", err))
			n.log.Warn("NATS broadcast subscription ended", "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			return
		}
	}
}
