package pubsub

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"cablehub/server/protocol"
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

// SetFollower sets the follower; call it before the node serves anything.
func (n *NATS) SetFollower(f Follower) { n.follower = f }

const streamSubjectPrefix = "cablehub.stream."

func streamSubject(stream string) string {
	return streamSubjectPrefix + base64.RawURLEncoding.EncodeToString([]byte(stream))
}

// ConnectNATS connects to servers (comma-separated URLs), retrying in the
// background when none answers yet and reconnecting forever.
func ConnectNATS(servers string, log *slog.Logger) (*nats.Conn, error) {
	return nats.Connect(servers,
		nats.Name("cablehub"),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
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
	n := &NATS{conn: conn, h: h, log: log, msgs: make(chan *nats.Msg, 8192), subs: map[string]*nats.Subscription{}}
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
			if m.Subject == InternalChannel {
				var c Command
				if err := json.Unmarshal(m.Data, &c); err != nil {
					n.log.Warn("malformed remote command", "error", err)
					continue
				}
				n.h.HandleCommand(&c)
				continue
			}
			p, err := decodePublication(m.Data)
			if err != nil {
				n.log.Warn("malformed publication from pub/sub", "subject", m.Subject, "error", err)
				continue
			}
			n.h.HandlePublication(p)
		}
	}
}

// Publish sends pubs in order on the connection. It fails when NATS is not
// connected rather than buffering for an unknown time.
func (n *NATS) Publish(_ context.Context, pubs []protocol.Publication) error {
	if !n.conn.IsConnected() {
		return errors.New("NATS is not connected")
	}
	for i := range pubs {
		if err := n.conn.Publish(streamSubject(pubs[i].Stream), EncodePublication(&pubs[i])); err != nil {
			return err
		}
	}
	return nil
}

// PublishCommand sends c to every node.
func (n *NATS) PublishCommand(_ context.Context, c *Command) error {
	if !n.conn.IsConnected() {
		return errors.New("NATS is not connected")
	}
	b, _ := json.Marshal(c)
	return n.conn.Publish(InternalChannel, b)
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
