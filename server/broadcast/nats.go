package broadcast

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cablehub/cablehub/server/backoff"
	"github.com/cablehub/cablehub/server/connwatch"
)

// natsConfig is what one nats adapter runs with.
type natsConfig struct {
	// subject is --nats_channel.
	subject string
	// queue, when set, subscribes as a member of this queue group, so each
	// message reaches one node of the group instead of all: what a cluster
	// with a pub/sub between nodes needs (Options.Clustered), since the
	// node that takes a broadcast stamps it and the pub/sub fans it out to
	// the others. Without a cluster pub/sub it is empty and each node
	// delivers every broadcast to its own clients.
	queue string
	// counters count the subscription's outages (Options.Metrics); nil
	// counts nothing.
	counters connwatch.Counters
}

// NATSQueue is the queue group the nodes of a cluster share (see
// Options.Clustered).
const NATSQueue = "cablehub-broadcast"

// natsBackoffMin and natsBackoffMax bound the wait between attempts to
// subscribe while NATS refuses (backoff.New): it grows after each refusal
// and starts over once subscribed.
const (
	natsBackoffMin = 250 * time.Millisecond
	natsBackoffMax = 5 * time.Second
)

// errNotSubscribed is Err's answer until the subscription is in place.
var errNotSubscribed = errors.New("NATS broadcast subscription not made yet")

// NATS is the nats adapter: AnyCable's NATS broadcaster, a core NATS
// subscription (no JetStream) to one subject where publishers publish
// payloads. Unlike AnyCable it sends them through the broker, so they get
// offsets and history like every other broadcast. Core NATS keeps nothing:
// what is published while no node is subscribed or connected is lost, as
// with AnyCable. Messages are handled one at a time, in arrival order.
type NATS struct {
	conn   *nats.Conn
	cfg    natsConfig
	handle func(ctx context.Context, payload []byte) error
	log    *slog.Logger
	// watch follows the subscription (the connection's own outages are
	// logged and counted where it is made).
	watch *connwatch.Watch

	mu  sync.Mutex
	err error
}

// newNATS builds the nats adapter of the factory (New).
func newNATS(o Options, h *Handler, log *slog.Logger) (Adapter, error) {
	if o.NATS == nil {
		return nil, fmt.Errorf("the %s broadcast adapter needs a NATS connection", NameNATS)
	}
	cfg := natsConfig{subject: o.NATSChannel}
	if o.Clustered {
		cfg.queue = NATSQueue
	}
	cfg.counters = o.Metrics
	return newNATSAdapter(o.NATS, cfg, h.Deliver, log), nil
}

// newNATSAdapter returns the nats adapter subscribing on conn (which
// reconnects by itself; nats.go renews the subscription on every
// reconnect) and giving each message's payload to handle. Core NATS cannot
// redeliver: whatever handle fails with is logged and the message is gone.
func newNATSAdapter(conn *nats.Conn, cfg natsConfig, handle func(ctx context.Context, payload []byte) error, log *slog.Logger) *NATS {
	if cfg.subject == "" {
		cfg.subject = DefaultOptions().NATSChannel
	}
	log = log.With("channel", cfg.subject)
	return &NATS{conn: conn, cfg: cfg, handle: handle, log: log, err: errNotSubscribed,
		watch: connwatch.New("broadcast:"+NameNATS, cfg.counters)}
}

// Name is "nats".
func (n *NATS) Name() string { return NameNATS }

// Role is "": every node subscribes alike (in a cluster NATS hands each
// message to one member of the queue group), so none has a role to tell.
func (n *NATS) Role() string { return "" }

// Describe is the adapter's startup line.
func (n *NATS) Describe() string {
	s := fmt.Sprintf("Subscribing for broadcasts to NATS subject %s (servers: %s)", n.cfg.subject, strings.Join(n.conn.Servers(), ","))
	if n.cfg.queue != "" {
		s += "; in queue group " + n.cfg.queue + ", so one node of the cluster takes each message"
	}
	return s
}

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
	wait := backoff.New(natsBackoffMin, natsBackoffMax, nil)
	for ctx.Err() == nil {
		sub, err := n.subscribe()
		if err != nil {
			n.watch.Lost()
			n.setErr(fmt.Errorf("NATS broadcast subscription: %w", err))
			n.log.Warn("NATS broadcast subscription failed; retrying", "error", err)
			sleep(ctx, wait.Next())
			continue
		}
		wait.Reset()
		n.setErr(nil)
		if ended, _ := n.watch.Restored(); ended {
			n.log.Info("NATS broadcast subscription restored")
		}
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
	if n.cfg.queue != "" {
		sub, err = n.conn.QueueSubscribeSync(n.cfg.subject, n.cfg.queue)
	} else {
		sub, err = n.conn.SubscribeSync(n.cfg.subject)
	}
	if err != nil {
		return nil, err
	}
	if n.conn.IsConnected() {
		if err := n.conn.FlushTimeout(2 * time.Second); err != nil {
			n.log.Debug("NATS flush after subscribe", "error", err)
		}
	}
	n.log.Debug("subscribed for broadcasts", "queue", n.cfg.queue)
	return sub, nil
}

// consume handles messages until ctx ends or the subscription becomes
// unusable (the connection was closed for good).
func (n *NATS) consume(ctx context.Context, sub *nats.Subscription) {
	for {
		m, err := sub.NextMsgWithContext(ctx)
		switch {
		case err == nil:
			// A message being delivered when the adapter stops is finished.
			if err := n.handle(context.WithoutCancel(ctx), m.Data); err != nil {
				n.log.Debug("NATS broadcast dropped", "error", err, "payload", excerpt(m.Data))
			}
		case ctx.Err() != nil:
			return
		case errors.Is(err, nats.ErrSlowConsumer):
			dropped, _ := sub.Dropped()
			n.log.Warn("NATS broadcasts dropped: they arrived faster than they could be delivered", "dropped_total", dropped)
		default:
			n.watch.Lost()
			n.setErr(fmt.Errorf("NATS broadcast subscription: %w", err))
			n.log.Warn("NATS broadcast subscription ended", "error", err)
			sleep(ctx, time.Second)
			return
		}
	}
}
