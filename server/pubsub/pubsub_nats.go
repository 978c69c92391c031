package pubsub

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cablehub/cablehub/server/protocol"
)

// NATS is the pub/sub over NATS: one subject per stream
// (NATSStreamSubjectPrefix + NATSStreamToken) plus InternalChannel for
// commands. Stream subjects live under their own prefix, so no stream name
// reaches InternalChannel or any other subject.
type NATS struct {
	conn     *nats.Conn
	h        Handler
	log      *slog.Logger
	msgs     chan *nats.Msg
	interest interest
	// lagged is signalled when nats.go dropped messages of ours (a slow
	// consumer): Run then has the node catch up from history.
	lagged chan struct{}

	mu   sync.Mutex
	subs map[string]*nats.Subscription

	// confirming are the subscriptions waiting for a flush; flushing is
	// set while flushLoop runs.
	fmu        sync.Mutex
	confirming []func(error)
	flushing   bool
}

// NATSStreamSubjectPrefix starts the subject of every stream.
const NATSStreamSubjectPrefix = "cablehub.stream."

// maxNATSToken bounds a stream's subject token: stream names may be long,
// and a subject travels in every message's control line.
const maxNATSToken = 200

// NATSStreamToken is the one subject token that names stream: its
// base64url encoding (stream names may hold characters that subjects
// cannot: spaces, wildcards, dots), or, when that would be empty or longer
// than maxNATSToken, "~" and the base64url SHA-256 of the name ("~" is not in
// base64url's alphabet, so the two forms never meet). The JetStream broker
// names its history subjects with it too, and republishes them onto the
// pub/sub's.
func NATSStreamToken(stream string) string {
	if n := base64.RawURLEncoding.EncodedLen(len(stream)); n > 0 && n <= maxNATSToken {
		return base64.RawURLEncoding.EncodeToString([]byte(stream))
	}
	sum := sha256.Sum256([]byte(stream))
	return "~" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// resubscribedMarker and interruptedMarker are the subjects of the
// markers put in the message channel after a reconnect and at a
// disconnect; no real subject is empty or holds a space.
const (
	resubscribedMarker = ""
	interruptedMarker  = " "
)

func streamSubject(stream string) string {
	return NATSStreamSubjectPrefix + NATSStreamToken(stream)
}

// ConnectNATS connects to servers (comma-separated URLs), retrying in the
// background when none answers yet and reconnecting forever. Nothing is
// buffered while reconnecting (ReconnectBufSize -1): a publish then fails
// at once instead of waiting in nats.go's buffer for a server that may not
// come back in time, so a publication that was answered with an error is
// not sent later behind the caller's back.
func ConnectNATS(servers string, log *slog.Logger) (*nats.Conn, error) {
	return nats.Connect(servers,
		nats.Name("cablehub"),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS connection lost", "error", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("NATS connection restored", "server", c.ConnectedUrlRedacted()) }),
	)
}

// NewNATS returns a NATS pub/sub on conn delivering to h.
func NewNATS(conn *nats.Conn, h Handler, log *slog.Logger) (*NATS, error) {
	n := &NATS{conn: conn, h: h, log: log, msgs: make(chan *nats.Msg, 8192), lagged: make(chan struct{}, 1),
		subs: map[string]*nats.Subscription{}}
	// Messages dropped for a slow consumer never arrive: the node reads
	// what it missed from history.
	logError := conn.Opts.AsyncErrorCB
	conn.SetErrorHandler(func(c *nats.Conn, sub *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrSlowConsumer) {
			select {
			case n.lagged <- struct{}{}:
			default:
			}
		}
		if logError != nil {
			logError(c, sub, err)
		}
	})
	// At a disconnect, and after a reconnect (nats.go has subscribed
	// everything again), a marker in the message channel tells the
	// dispatcher, in arrival order: the disconnect comes before anything
	// of the connection that replaces it.
	logDisconnect := conn.Opts.DisconnectedErrCB
	conn.SetDisconnectErrHandler(func(c *nats.Conn, err error) {
		if logDisconnect != nil {
			logDisconnect(c, err)
		}
		n.msgs <- &nats.Msg{Subject: interruptedMarker}
	})
	logReconnect := conn.Opts.ReconnectedCB
	conn.SetReconnectHandler(func(c *nats.Conn) {
		if logReconnect != nil {
			logReconnect(c)
		}
		n.msgs <- &nats.Msg{Subject: resubscribedMarker}
	})
	// One channel for every subject keeps arrival order across streams and
	// dispatch on one goroutine.
	if _, err := conn.ChanSubscribe(InternalChannel, n.msgs); err != nil {
		return nil, err
	}
	if _, err := conn.ChanSubscribe(ClusterChannel, n.msgs); err != nil {
		return nil, err
	}
	return n, nil
}

// Describe names the pub/sub for the startup log.
func (n *NATS) Describe() string {
	return "Using NATS pub/sub at " + n.conn.ConnectedUrlRedacted() + " (servers: " + strings.Join(n.conn.Servers(), ",") + ")"
}

// Run dispatches messages until ctx is done.
func (n *NATS) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.lagged:
			n.log.Warn("NATS dropped messages of a slow consumer; catching up from history")
			n.h.HandleInterrupted()
			n.h.HandleResubscribed(n.interest.list())
		case m := <-n.msgs:
			if m.Subject == interruptedMarker {
				n.h.HandleInterrupted()
				continue
			}
			if m.Subject == resubscribedMarker {
				n.h.HandleResubscribed(n.interest.list())
				continue
			}
			if m.Subject == ClusterChannel {
				n.h.HandleCluster(m.Data)
				continue
			}
			if m.Subject == InternalChannel {
				var c Command
				if err := json.Unmarshal(m.Data, &c); err != nil {
					n.log.Warn("malformed remote command", "error", err)
					continue
				}
				n.h.HandleCommand(&c)
				continue
			}
			// JetStream republishes a stream's publications stored
			// together as one array.
			pubs, err := protocol.DecodeStreamMessages(m.Data)
			if err != nil {
				n.log.Warn("malformed publication from pub/sub", "subject", m.Subject, "error", err)
				continue
			}
			for i := range pubs {
				n.h.HandlePublication(&pubs[i])
			}
		}
	}
}

// confirmTimeout bounds the wait for the server's confirmation when the
// caller's context has no deadline (node-internal publications such as
// presence events; API calls carry --publish_timeout).
const confirmTimeout = 2 * time.Second

// Publish sends pubs in order on the connection and returns once the
// server has them. It fails at once when NATS is not connected, and when
// the server does not confirm before ctx is done (or within
// confirmTimeout): nats.go's Publish only writes to a buffer, and bytes
// written to a connection that has just died are lost without an error,
// so success means the server acknowledged everything sent before a
// PING (a flush), which NATS answers in order. After a failed
// confirmation the publications may still reach subscribers (a server that
// is slow rather than gone): an error means "not confirmed", not "not
// sent".
func (n *NATS) Publish(ctx context.Context, pubs []protocol.Publication) error {
	if !n.conn.IsConnected() {
		return errors.New("NATS is not connected")
	}
	for i := range pubs {
		if err := n.conn.Publish(streamSubject(pubs[i].Stream), protocol.EncodeStreamMessage(&pubs[i])); err != nil {
			return err
		}
	}
	return n.confirm(ctx)
}

// PublishCommand sends c to every node, confirmed as Publish is.
func (n *NATS) PublishCommand(ctx context.Context, c *Command) error {
	if !n.conn.IsConnected() {
		return errors.New("NATS is not connected")
	}
	b, _ := json.Marshal(c)
	if err := n.conn.Publish(InternalChannel, b); err != nil {
		return err
	}
	return n.confirm(ctx)
}

// PublishCluster sends payload to every node's HandleCluster, without
// waiting for the server's confirmation: the cluster's messages are
// repeated or answered within deadlines, so one lost costs nothing.
func (n *NATS) PublishCluster(_ context.Context, payload []byte) error {
	if !n.conn.IsConnected() {
		return errors.New("NATS is not connected")
	}
	return n.conn.Publish(ClusterChannel, payload)
}

// confirm waits for the server to acknowledge everything sent so far.
func (n *NATS) confirm(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, confirmTimeout)
		defer cancel()
	}
	if err := n.conn.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("NATS did not confirm the publication: %w", err)
	}
	return nil
}

// Subscribe notes a local subscription; the first subscribes the stream's
// subject. Its Ready is done once the server has the subscription (so a
// publication made after the client's confirmation reaches the node), or
// failed when the server does not confirm within SubscribeTimeout: the
// caller then removes the subscription.
func (n *NATS) Subscribe(stream string) *Ready {
	return n.interest.add(stream, func(s string, done func(error)) {
		sub, err := n.conn.ChanSubscribe(streamSubject(s), n.msgs)
		if err != nil {
			done(fmt.Errorf("subscribing to stream %q: %w", s, err))
			return
		}
		n.mu.Lock()
		n.subs[s] = sub
		n.mu.Unlock()
		n.confirmSubscription(done)
	})
}

// confirmSubscription settles done once the server has everything sent so
// far. One
// flush (a PING, answered in order) confirms every subscription sent
// before it, so subscriptions made together share their round trips.
func (n *NATS) confirmSubscription(done func(error)) {
	n.fmu.Lock()
	n.confirming = append(n.confirming, done)
	start := !n.flushing
	n.flushing = true
	n.fmu.Unlock()
	if start {
		go n.flushLoop()
	}
}

// flushLoop flushes for the waiting subscriptions until none is left.
func (n *NATS) flushLoop() {
	for {
		n.fmu.Lock()
		batch := n.confirming
		n.confirming = nil
		if len(batch) == 0 {
			n.flushing = false
			n.fmu.Unlock()
			return
		}
		n.fmu.Unlock()
		err := n.conn.FlushTimeout(SubscribeTimeout)
		if err != nil {
			err = fmt.Errorf("NATS did not confirm the subscription: %w", err)
		}
		for _, done := range batch {
			done(err)
		}
	}
}

// Unsubscribe notes a local subscription gone; the last unsubscribes.
func (n *NATS) Unsubscribe(stream string) {
	n.interest.remove(stream, func(s string) {
		n.mu.Lock()
		sub := n.subs[s]
		delete(n.subs, s)
		n.mu.Unlock()
		if sub != nil {
			sub.Unsubscribe()
		}
	})
}

// Healthy reports whether the connection is up.
func (n *NATS) Healthy(context.Context) error {
	if !n.conn.IsConnected() {
		return errors.New("NATS is not connected")
	}
	return nil
}
