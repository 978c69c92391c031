package pubsub

import (
	"context"
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

// NATS is the pub/sub over NATS: one subject per stream plus
// InternalChannel for commands. Stream names may hold characters that
// subjects cannot (spaces, wildcards, empty tokens), so a stream's subject
// is "cablehub.stream." + base64url(stream).
type NATS struct {
	conn     *nats.Conn
	h        Handler
	log      *slog.Logger
	msgs     chan *nats.Msg
	interest interest

	mu   sync.Mutex
	subs map[string]*nats.Subscription

	follower Follower
}

// Follower is told when this node's interest in a stream starts (first
// local subscriber) and ends (last one gone), after the core subscription
// changed: the JetStream broker delivers non-transient publications from
// JetStream while a stream is followed.
type Follower interface {
	Follow(stream string)
	Unfollow(stream string)
}

const streamSubjectPrefix = "cablehub.stream."

// resubscribedMarker is the subject of the marker NATS puts in its message
// channel after a reconnect; no real subject is empty.
const resubscribedMarker = ""

func streamSubject(stream string) string {
	return streamSubjectPrefix + base64.RawURLEncoding.EncodeToString([]byte(stream))
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

// NewNATS returns a NATS pub/sub on conn delivering to h; follower, when
// not nil, is told which streams the node listens to.
func NewNATS(conn *nats.Conn, h Handler, follower Follower, log *slog.Logger) (*NATS, error) {
	n := &NATS{conn: conn, h: h, follower: follower, log: log, msgs: make(chan *nats.Msg, 8192), subs: map[string]*nats.Subscription{}}
	// After a reconnect nats.go has subscribed everything again; a marker
	// in the message channel tells the dispatcher, in arrival order.
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
		case m := <-n.msgs:
			if m.Subject == resubscribedMarker {
				n.h.HandleResubscribed(n.interest.streams())
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
			p, err := protocol.DecodeStreamMessage(m.Data)
			if err != nil {
				n.log.Warn("malformed publication from pub/sub", "subject", m.Subject, "error", err)
				continue
			}
			n.h.HandlePublication(p)
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

// Subscribe notes a local subscription; the first subscribes the subject.
func (n *NATS) Subscribe(stream string) {
	n.interest.add(stream, func(s string) {
		sub, err := n.conn.ChanSubscribe(streamSubject(s), n.msgs)
		if err != nil {
			n.log.Warn("NATS subscribe failed", "stream", s, "error", err)
			return
		}
		// Wait until the server has the subscription, so a publish made
		// after the client's confirmation is not missed.
		if err := n.conn.FlushTimeout(time.Second); err != nil {
			n.log.Debug("NATS flush after subscribe", "stream", s, "error", err)
		}
		n.mu.Lock()
		n.subs[s] = sub
		n.mu.Unlock()
		if n.follower != nil {
			n.follower.Follow(s)
		}
	})
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
		if n.follower != nil {
			n.follower.Unfollow(s)
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
