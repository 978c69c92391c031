// Package node is the heart of a Cablehub process: it owns the client
// sessions, runs their commands, delivers publications to them through the
// hub, and answers presence reads and remote disconnects for the API.
package node

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/cablehub/cablehub/server/broker"
	"github.com/cablehub/cablehub/server/hub"
	"github.com/cablehub/cablehub/server/metrics"
	"github.com/cablehub/cablehub/server/protocol"
	"github.com/cablehub/cablehub/server/pubsub"
	"github.com/cablehub/cablehub/server/streams"
)

// Router decides subscriptions by identifier; streams.Controller is one.
type Router interface {
	Subscribe(identifier string) (*streams.Subscription, error)
}

// Options are the node's session settings.
type Options struct {
	// PingInterval is the default time between pings; 0 disables them.
	PingInterval time.Duration
	// PingPrecision is the default ping timestamp unit: "s", "ms" or "ns".
	PingPrecision string
	// PongTimeout, when positive, disconnects extended-protocol clients that
	// send nothing within it after a ping.
	PongTimeout time.Duration
	// SessionsTTL, when positive, lets extended-protocol clients restore
	// their session (subscriptions) for this long after a disconnect.
	SessionsTTL time.Duration

	// The limits below bound what one connection can make the server hold;
	// zero means unlimited (tests only: the configuration always sets them).

	// MaxSubscriptions bounds a session's subscriptions; one more is
	// rejected (reject_subscription).
	MaxSubscriptions int
	// MaxPresence bounds the streams a session is present on at once.
	MaxPresence int
	// MaxPresenceInfo bounds the bytes of one presence info value.
	MaxPresenceInfo int
	// PresenceFromIdentifiers makes a session's presence id its connection
	// identifiers (the JWT's ext claim), whatever id the client sends, so
	// nobody can join or overwrite another user's presence record; sessions
	// without identifiers cannot join. Off, the client chooses, as in
	// AnyCable.
	PresenceFromIdentifiers bool
	// MaxCachedSession bounds the bytes of one session's restore state; a
	// larger state is not cached.
	MaxCachedSession int
	// CatchUp reads history for the subscribed streams after a pub/sub
	// reconnect (see HandleResubscribed). It needs a broker whose history
	// covers every node's publications (Redis, NATS JetStream).
	CatchUp bool
	// Reorder says publications of a stream may reach this node out of
	// offset order (stamping and publishing are two steps: the Redis broker
	// with NATS pub/sub), so a subscription's first publications wait
	// GapWait to be sorted before it takes a position.
	Reorder bool
	// RestoreHold is how long a restored session holds the live messages of
	// its subscriptions for the client's history request; zero is
	// DefaultRestoreHold.
	RestoreHold time.Duration
	// GapWait is how long messages past an offset gap wait for the missing
	// ones to arrive live before history is read; zero is DefaultGapWait.
	GapWait time.Duration
	// MaxConns bounds the WebSocket connections open at once (--max-conn);
	// one more is refused (see Handler). 0 is unlimited.
	MaxConns int
	// IdempotencyWindow is how long a publication's idempotency key makes
	// publications with the same stream and key no-ops; 0 turns keys off
	// (see IdempotencyStore).
	IdempotencyWindow time.Duration

	// App is the RPC back end; nil means none (--norpc): connections that
	// no local identifier accepts, and channels the router does not know,
	// are refused.
	App App
	// AppOptions configure the calls to App.
	AppOptions AppOptions
}

// DefaultOptions are the node's settings without flags. CatchUp and
// Reorder depend on the broker and pub/sub in use, and SessionsTTL on the
// broker's, so the process sets them; here they are off.
func DefaultOptions() Options {
	return Options{
		PingInterval:      3 * time.Second,
		PingPrecision:     defaultPingPrecision,
		MaxSubscriptions:  1000,
		MaxPresence:       100,
		MaxPresenceInfo:   4096,
		IdempotencyWindow: 120 * time.Second,
		// Room for the subscriptions a connection may hold with ordinary
		// identifiers, not for what the largest frames could make of them.
		MaxCachedSession: 256 << 10,
		AppOptions:       DefaultAppOptions(),
	}
}

func (o *Options) restoreHold() time.Duration {
	if o.RestoreHold > 0 {
		return o.RestoreHold
	}
	return DefaultRestoreHold
}

func (o *Options) gapWait() time.Duration {
	if o.GapWait > 0 {
		return o.GapWait
	}
	return DefaultGapWait
}

// defaultPingPrecision is the ping timestamp unit when Options leave it
// empty.
const defaultPingPrecision = "s"

// brokerTimeout bounds a broker call made for a session, so that a broker
// that hangs cannot hold a session's work forever.
const brokerTimeout = 5 * time.Second

// Node delivers publications and serves sessions for one process. All
// methods are safe for concurrent use.
type Node struct {
	hub     *hub.Hub
	broker  Broker
	router  Router
	metrics *metrics.Metrics
	log     *slog.Logger
	opts    Options
	timers  *wheel
	pubsub  PubSub
	// idempotency is the broker when it keeps idempotency keys, else an
	// in-process store.
	idempotency IdempotencyStore
	// messages caches encoded history messages (see messageCache).
	messages *messageCache

	mu           sync.Mutex
	sessions     map[*Session]struct{}
	bySID        map[string]*Session
	byIdentifier map[string]map[*Session]struct{}
	shuttingDown bool
	drained      chan struct{} // closed when the last session goes during shutdown

	// noAppWarned holds the kinds of refusal warnNoApp has logged.
	noAppWarned sync.Map
	// disconnects makes the App's Disconnect calls; nil without an App.
	disconnects *disconnectQueue
	// conns counts WebSocket connections for MaxConns.
	conns connLimit
}

// New returns a node that fans out through h, publishes and keeps history,
// presence and sessions through b, and decides subscriptions with r.
func New(h *hub.Hub, b Broker, r Router, m *metrics.Metrics, log *slog.Logger, opts Options) *Node {
	if opts.PingPrecision == "" {
		opts.PingPrecision = defaultPingPrecision
	}
	n := &Node{
		hub:          h,
		broker:       b,
		router:       r,
		metrics:      m,
		log:          log,
		opts:         opts,
		timers:       newWheel(100 * time.Millisecond),
		messages:     newMessageCache(defaultMessageCacheSize),
		sessions:     map[*Session]struct{}{},
		bySID:        map[string]*Session{},
		byIdentifier: map[string]map[*Session]struct{}{},
	}
	n.pubsub = pubsub.NewLocal(n)
	n.conns.max = int64(opts.MaxConns)
	if opts.App != nil {
		n.disconnects = newDisconnectQueue(opts.App, opts.AppOptions, log, func(size int) {
			m.DisconnectQueueSize.Set(float64(size))
		})
	}
	if s, ok := b.(IdempotencyStore); ok {
		n.idempotency = s
	} else {
		n.idempotency = broker.NewIdempotencyMemory(0)
	}
	return n
}

// SetPubSub sets how publications reach the cluster; without one they are
// delivered locally. It must be called before the node serves anything:
// the pub/sub needs the node as its handler, so it cannot be passed to New.
func (n *Node) SetPubSub(ps PubSub) { n.pubsub = ps }

// HandlePublication delivers a publication that arrived from the cluster
// (pubsub.Handler).
func (n *Node) HandlePublication(p *protocol.Publication) {
	n.hub.Broadcast(p)
	n.metrics.PublicationsTotal.Inc()
}

// HandleResubscribed catches subscriptions up after the node's pub/sub
// connection came back: publications accepted meanwhile reached no client
// here. Each stream's retained history is read once and offered to its
// subscriptions as Recovered publications, which they take only past their
// position (or, in a new epoch, from its start). Without a cluster-wide
// broker history cannot speak for other nodes' publications, and nothing
// is done.
func (n *Node) HandleResubscribed(streams []string) {
	if !n.opts.CatchUp || len(streams) == 0 {
		return
	}
	n.log.Info("catching subscribers up after a pub/sub reconnect", "streams", len(streams))
	go func() {
		for _, stream := range streams {
			ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
			pubs, err := n.broker.HistorySince(ctx, stream, 0)
			cancel()
			if err != nil {
				n.log.Warn("catch-up history not available", "stream", stream, "error", err)
				continue
			}
			for i := range pubs {
				pubs[i].Recovered = true
				n.hub.Broadcast(&pubs[i])
			}
		}
	}()
}

// HandleCommand runs a remote command that arrived from the cluster
// (pubsub.Handler).
func (n *Node) HandleCommand(c *pubsub.Command) {
	n.metrics.RemoteCommandsTotal.Inc()
	if c.Command == "disconnect" {
		n.disconnectLocal(c.Identifier, c.Reconnect)
	}
}

// subscribe adds a session's subscription to the hub and tells the pub/sub,
// which subscribes the node to the stream on the first (see PubSub).
func (n *Node) subscribe(stream, identifier string, s *Session) {
	n.hub.Subscribe(stream, identifier, s)
	n.pubsub.Subscribe(stream)
	n.metrics.BroadcastStreamsNum.Set(float64(n.hub.Streams()))
}

func (n *Node) unsubscribe(stream, identifier string, s *Session) {
	n.hub.Unsubscribe(stream, identifier, s)
	n.pubsub.Unsubscribe(stream)
	n.metrics.BroadcastStreamsNum.Set(float64(n.hub.Streams()))
}

// Hub returns the subscription index.
func (n *Node) Hub() *hub.Hub { return n.hub }

// Run drives pings, pong deadlines and the broker's expiry until ctx is
// done.
func (n *Node) Run(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.broker.Run(ctx, n.presenceLeft)
	}()
	if n.disconnects != nil {
		go n.disconnects.run(ctx)
	}
	n.timers.run(ctx, n.onTimer)
	<-done
}

// presenceLeft tells subscribers about presence ids whose last session
// expired.
func (n *Node) presenceLeft(left []broker.PresenceLeft) {
	for _, l := range left {
		n.presenceEvent(context.Background(), l.Stream, l.ID, "leave", nil)
	}
}

// presenceEvent broadcasts a join or leave to every subscriber of the
// stream, the initiator included, as AnyCable does: a transient publication
// typed "presence" whose message is {"id":..,"info":..,"type":..}.
func (n *Node) presenceEvent(ctx context.Context, stream, id, kind string, info json.RawMessage) {
	event := map[string]any{"id": id, "type": kind}
	if len(info) > 0 {
		event["info"] = info
	}
	data, _ := json.Marshal(event)
	pub := protocol.Publication{Stream: stream, Data: string(data), BroadcastType: "presence", Transient: true}
	if err := n.Broadcast(ctx, []protocol.Publication{pub}); err != nil {
		n.log.Warn("presence event not delivered", "stream", stream, "error", err)
	}
}

// Broadcast delivers each publication to the subscribers of its stream, in
// the given order, on every node: the broker stamps and publishes them
// (Broker.StampAndPublish says who keeps the order). The publications must
// already be validated (non-empty streams, keys within
// protocol.MaxIdempotencyKeySize). An error means the broadcast could not
// be taken; publications before the failing one may have been delivered.
//
// A publication with an idempotency key whose (stream, key) was claimed
// within the window is skipped, each on its own, and counts as taken: a
// retry answers as the first call did. When publishing fails, the keys of
// the publications the broker does not know to be taken are released so
// that a retry is delivered.
func (n *Node) Broadcast(ctx context.Context, pubs []protocol.Publication) error {
	pubs, held, err := n.claimIdempotencyKeys(ctx, pubs)
	if err != nil || len(pubs) == 0 {
		return err
	}
	taken, err := n.broker.StampAndPublish(ctx, pubs, n.pubsub)
	if err != nil {
		n.releaseIdempotencyKeys(ctx, held, taken)
		return err
	}
	n.metrics.BroadcastMsgTotal.Add(float64(len(pubs)))
	return nil
}

// Presence returns the presence records of stream, or
// broker.ErrPresenceUnsupported when the broker keeps none.
func (n *Node) Presence(ctx context.Context, stream string) (*broker.PresenceInfo, error) {
	if !n.broker.SupportsPresence() {
		return nil, broker.ErrPresenceUnsupported
	}
	return n.broker.PresenceInfo(ctx, stream)
}

// Disconnect closes every session on every node whose connection
// identifiers equal identifiers, telling each client whether to reconnect.
// Anonymous sessions (no identifiers) never match.
func (n *Node) Disconnect(ctx context.Context, identifiers string, reconnect bool) error {
	if identifiers == "" {
		return nil
	}
	return n.pubsub.PublishCommand(ctx, &pubsub.Command{Command: "disconnect", Identifier: identifiers, Reconnect: reconnect})
}

func (n *Node) disconnectLocal(identifiers string, reconnect bool) {
	if identifiers == "" {
		return
	}
	n.mu.Lock()
	var targets []*Session
	for s := range n.byIdentifier[identifiers] {
		targets = append(targets, s)
	}
	n.mu.Unlock()
	for _, s := range targets {
		s.close(1000, "Closed remotely", protocol.Disconnect(protocol.ReasonRemote, reconnect))
	}
}

// register adds a session and gives it its sid: wanted (the client's
// X-Request-ID, already validated) unless it is empty or a live session on
// this node has it, else a new random one, so no two live sessions share a
// sid (a sid decides exclude_socket, presence and the restore cache). It
// reports false when the node is shutting down.
func (n *Node) register(s *Session, wanted string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.shuttingDown {
		return false
	}
	sid := wanted
	for _, taken := n.bySID[sid]; sid == "" || taken; _, taken = n.bySID[sid] {
		sid = newSID()
	}
	s.sid = sid
	n.bySID[sid] = s
	n.sessions[s] = struct{}{}
	if s.identifiers != "" {
		set, ok := n.byIdentifier[s.identifiers]
		if !ok {
			set = map[*Session]struct{}{}
			n.byIdentifier[s.identifiers] = set
		}
		set[s] = struct{}{}
	}
	n.metrics.ClientsNum.Set(float64(len(n.sessions)))
	n.metrics.ClientsUniqNum.Set(float64(len(n.byIdentifier)))
	return true
}

func (n *Node) unregister(s *Session) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.sessions, s)
	if n.bySID[s.sid] == s {
		delete(n.bySID, s.sid)
	}
	if set, ok := n.byIdentifier[s.identifiers]; ok {
		delete(set, s)
		if len(set) == 0 {
			delete(n.byIdentifier, s.identifiers)
		}
	}
	n.metrics.ClientsNum.Set(float64(len(n.sessions)))
	n.metrics.ClientsUniqNum.Set(float64(len(n.byIdentifier)))
	if n.shuttingDown && len(n.sessions) == 0 && n.drained != nil {
		close(n.drained)
		n.drained = nil
	}
}

// Sessions returns the number of connected sessions.
func (n *Node) Sessions() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.sessions)
}

// Shutdown refuses new sessions and tells every connected client to
// reconnect elsewhere (server_restart, close 1001), then waits until they
// are gone or ctx is done, when the rest are dropped; then it makes the
// App's Disconnect calls still due, waiting for them while ctx lasts.
func (n *Node) Shutdown(ctx context.Context) {
	n.mu.Lock()
	n.shuttingDown = true
	all := make([]*Session, 0, len(n.sessions))
	for s := range n.sessions {
		all = append(all, s)
	}
	var drained chan struct{}
	if len(n.sessions) > 0 {
		drained = make(chan struct{})
		n.drained = drained
	}
	n.mu.Unlock()
	n.log.Info("closing active connections", "num", len(all))
	restart := protocol.Disconnect(protocol.ReasonServerRestart, true)
	for _, s := range all {
		s.close(1001, "Server restart", restart)
	}
	if drained == nil {
		n.log.Info("all active connections closed")
	} else {
		select {
		case <-drained:
			n.log.Info("all active connections closed")
		case <-ctx.Done():
			n.mu.Lock()
			for s := range n.sessions {
				s.conn.Abort()
			}
			n.mu.Unlock()
			n.log.Warn("dropped connections that did not close in time")
		}
	}
	if n.disconnects != nil {
		// Before the App's client closes: the sessions just ended are
		// owed their Disconnect calls.
		n.disconnects.drain(ctx)
	}
}
