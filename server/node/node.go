// Package node is the heart of a Cablehub process: it owns the client
// sessions, runs their commands, delivers publications to them through the
// hub, and answers presence reads and remote disconnects for the API.
//
// Sessions know nothing of their transport. A transport (package ws for
// WebSocket, sse for Server-Sent Events) accepts a client its own way and
// hands it to the Gate as a Connection, with the session options it
// decides (its Codec, initial commands, pings); sessions compose Action
// Cable messages, and the codec turns them and every publication into the
// transport's wire format. Adding a transport touches its own package and
// the runner's list of mounts, nothing here.
package node

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
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
	// clusterHandler takes ClusterChannel messages (SetClusterHandler).
	clusterHandler func(payload []byte)
	// idempotency is the broker's store of idempotency keys, else an
	// in-process one (Broker.Idempotency).
	idempotency broker.IdempotencyStore
	// messages caches encoded history messages (see messageCache).
	messages *messageCache

	// life ends when Run's context does: work the node starts on its own
	// (pub/sub catch-up) stops with it.
	life    context.Context
	endLife context.CancelFunc

	mu           sync.Mutex
	sessions     map[*Session]struct{}
	bySID        map[string]*Session
	byIdentifier map[string]map[*Session]struct{}
	// kicks are the recent remote disconnects, which restores must honour.
	kicks kicks
	// interruptions counts the drops of the pub/sub connection
	// (HandleInterrupted).
	interruptions atomic.Uint64
	shuttingDown  bool
	drained       chan struct{} // closed when the last session goes during shutdown

	// noAppWarned holds the kinds of refusal warnNoApp has logged.
	noAppWarned sync.Map
	// disconnects makes the App's Disconnect calls; nil without an App.
	disconnects *disconnectQueue
	// conns counts the connections of every transport for MaxConns.
	conns connLimit
	// tooSlow shares the too_slow disconnect, encoded once per codec.
	tooSlow tooSlowFrames
	// occupancy reports streams' occupancy to Options.Observer; nil
	// without one.
	occupancy *occupancy
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
		kicks:        newKicks(opts.SessionsTTL),
	}
	n.life, n.endLife = context.WithCancel(context.Background())
	n.pubsub = pubsub.NewLocal(n)
	n.conns.max = int64(opts.MaxConns)
	if opts.Observer != nil {
		id := opts.OccupancyID
		if id == "" {
			id = "occupied" // one node, or a cluster that did not set one
		}
		n.occupancy = newOccupancy(n, id)
	}
	if opts.App != nil {
		n.disconnects = newDisconnectQueue(opts.App, opts.AppOptions, log, func(size int) {
			m.DisconnectQueueSize.Set(float64(size))
		})
	}
	n.idempotency = b.Idempotency()
	if n.idempotency == nil {
		n.idempotency = broker.NewIdempotencyMemory(0)
	}
	return n
}

// SetPubSub sets how publications reach the cluster; without one they are
// delivered locally. It must be called before the node serves anything:
// the pub/sub needs the node as its handler, so it cannot be passed to New.
func (n *Node) SetPubSub(ps PubSub) { n.pubsub = ps }

// SetClusterHandler sets where the messages the nodes send each other go
// (package cluster); without one they are dropped. Like SetPubSub it must
// be called before the pub/sub runs.
func (n *Node) SetClusterHandler(h func(payload []byte)) { n.clusterHandler = h }

// HandleCluster passes a cluster message on (pubsub.Handler).
func (n *Node) HandleCluster(payload []byte) {
	if n.clusterHandler != nil {
		n.clusterHandler(payload)
	}
}

// HandlePublication delivers a publication that arrived from the cluster
// (pubsub.Handler).
func (n *Node) HandlePublication(p *protocol.Publication) {
	n.hub.Broadcast(p)
	n.metrics.PublicationsTotal.Inc()
}

// HandleInterrupted counts a drop of the node's pub/sub connection
// (pubsub.Handler): a subscription whose position is not confirmed since
// is told to resync rather than move to a new epoch (see sendOrdered).
func (n *Node) HandleInterrupted() {
	n.interruptions.Add(1)
}

// HandleResubscribed catches subscriptions up after the node's pub/sub
// connection came back: publications accepted meanwhile reached no client
// here. For each stream and each position its subscriptions hold, history
// after it is read once and offered to them as Recovered publications;
// a position history cannot serve (its epoch is gone, its offset no longer
// kept) is told to resync, as it may lack publications for good. Without a
// cluster-wide broker history cannot speak for other nodes' publications,
// and nothing is done. The catch-up runs in the background and stops when
// Run's context ends.
func (n *Node) HandleResubscribed(streams []string) {
	if !n.opts.CatchUp || len(streams) == 0 {
		return
	}
	gen := n.interruptions.Load()
	n.log.Info("catching subscribers up after a pub/sub reconnect", "streams", len(streams))
	go func() {
		for _, stream := range streams {
			if n.life.Err() != nil {
				return
			}
			n.catchUp(stream, gen)
		}
		n.log.Debug("catch-up finished", "streams", len(streams))
	}()
}

// catchUp brings stream's subscriptions up to date from history (see
// HandleResubscribed); gen is the interruption count they are confirmed
// complete as of when history serves their position.
func (n *Node) catchUp(stream string, gen uint64) {
	groups := map[position][]hub.Subscription{}
	for _, sub := range n.hub.Subscriptions(stream) {
		if s, ok := sub.Subscriber.(*Session); ok {
			if pos, ok := s.position(sub.Identifier, stream); ok {
				groups[pos] = append(groups[pos], sub)
			}
		}
	}
	for pos, subs := range groups {
		ctx, cancel := context.WithTimeout(n.life, brokerTimeout)
		pubs, err := n.broker.HistoryFrom(ctx, stream, pos.epoch, pos.offset)
		cancel()
		if n.life.Err() != nil {
			return
		}
		switch {
		case err == nil:
			for i := range pubs {
				pubs[i].Recovered = true
			}
			// Encoded once per codec and identifier, as the hub does.
			type group struct {
				codec      Codec
				identifier string
			}
			frames := map[group][][]byte{}
			for _, sub := range subs {
				s := sub.Subscriber.(*Session)
				g := group{s.codec, sub.Identifier}
				if _, ok := frames[g]; !ok {
					for i := range pubs {
						frames[g] = append(frames[g], s.codec.AppendBroadcast(nil, sub.Identifier, &pubs[i], n.messages.message(&pubs[i])))
					}
				}
				for i := range pubs {
					frame := frames[g][i]
					if pubs[i].ExcludeSocket != "" && pubs[i].ExcludeSocket == s.SID() {
						frame = nil
					}
					s.Deliver(sub.Identifier, &pubs[i], frame)
				}
				s.verified(sub.Identifier, stream, pos, gen)
			}
		case errors.Is(err, broker.ErrHistoryUnavailable):
			n.log.Info("catch-up: history lost past a position; its subscribers resync", "stream", stream, "epoch", pos.epoch, "error", err)
			for _, sub := range subs {
				sub.Subscriber.(*Session).resyncAt(sub.Identifier, stream, pos)
			}
		default:
			n.log.Warn("catch-up history not available", "stream", stream, "error", err)
		}
	}
}

// HandleCommand runs a remote command that arrived from the cluster
// (pubsub.Handler).
func (n *Node) HandleCommand(c *pubsub.Command) {
	n.metrics.RemoteCommandsTotal.Inc()
	if c.Command == "disconnect" {
		n.disconnectLocal(c.Identifier, c.Reconnect)
	}
}

// subscribe adds a session's subscription to the hub and counts it with
// the pub/sub, which subscribes the node to the stream on the first (see
// PubSub). The Ready yields once the node listens to the stream; when it
// yields an error, the caller takes the subscription out again
// (unsubscribe) and refuses it.
func (n *Node) subscribe(stream, identifier string, s *Session) *pubsub.Ready {
	first := n.hub.Subscribe(stream, identifier, s)
	if n.occupancy != nil {
		if done := n.occupancy.set(stream, true, first); done != nil {
			// On record before confirmed (see occupancy), within bounds:
			// a broker that hangs only delays the webhook.
			select {
			case <-done:
			case <-time.After(brokerTimeout):
			}
		}
	}
	n.metrics.BroadcastStreamsNum.Set(float64(n.hub.Streams()))
	return n.pubsub.Subscribe(stream)
}

// subscriptionFailed records a subscription whose stream the pub/sub could
// not listen to.
func (n *Node) subscriptionFailed(stream string, err error) {
	n.metrics.PubSubSubscribeFailuresTotal.Inc()
	n.log.Warn("subscription refused: the pub/sub does not listen to its stream", "stream", stream, "error", err)
}

func (n *Node) unsubscribe(stream, identifier string, s *Session) {
	last := n.hub.Unsubscribe(stream, identifier, s)
	if n.occupancy != nil {
		n.occupancy.set(stream, !last, false)
	}
	n.pubsub.Unsubscribe(stream)
	n.metrics.BroadcastStreamsNum.Set(float64(n.hub.Streams()))
}

// Hub returns the subscription index.
func (n *Node) Hub() *hub.Hub { return n.hub }

// Run drives pings, pong deadlines and the broker's expiry until ctx is
// done; the node's background work ends with it.
func (n *Node) Run(ctx context.Context) {
	context.AfterFunc(ctx, n.endLife)
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.broker.Run(ctx, func(left []broker.PresenceLeft) { n.presenceLeft(ctx, left) })
	}()
	if n.disconnects != nil {
		go n.disconnects.run(ctx)
	}
	if n.occupancy != nil {
		go func() {
			n.occupancy.run(ctx)
			n.occupancy.release()
		}()
	}
	n.timers.run(ctx, n.onTimer)
	<-done
}

// presenceLeft tells subscribers about presence ids whose last session
// expired. Each event is bounded by brokerTimeout, and none is sent once
// ctx (Run's) is done.
func (n *Node) presenceLeft(ctx context.Context, left []broker.PresenceLeft) {
	for _, l := range left {
		if ctx.Err() != nil {
			return
		}
		if n.occupancy != nil && n.occupancy.expired(l.Stream, l.ID) {
			continue // a node's occupancy record, not a client's presence
		}
		ectx, cancel := context.WithTimeout(ctx, brokerTimeout)
		n.presenceEvent(ectx, l.Stream, l.ID, "leave", nil, "")
		cancel()
	}
}

// presenceEvent broadcasts a join or leave to every subscriber of the
// stream, the initiator included (but exclude), as AnyCable does: a
// transient publication typed "presence" whose message is
// {"id":..,"info":..,"type":..}. It is made once in the cluster per join
// or leave, so the Observer hears of it here.
func (n *Node) presenceEvent(ctx context.Context, stream, id, kind string, info json.RawMessage, exclude string) {
	if o := n.opts.Observer; o != nil && o.Watches(stream) {
		if kind == "join" {
			o.Joined(stream, id, info)
		} else {
			o.Left(stream, id)
		}
	}
	event := map[string]any{"id": id, "type": kind}
	if len(info) > 0 {
		event["info"] = info
	}
	data, _ := json.Marshal(event)
	pub := protocol.Publication{Stream: stream, Data: string(data), BroadcastType: "presence", Transient: true, ExcludeSocket: exclude}
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

// disconnectLocal closes this node's sessions with identifiers. What it
// closes cannot be restored: each session is revoked (its cached state is
// dropped as it ends, and never written again), and the disconnect is
// remembered so that states cached before it are refused too (see kicks).
// Whether the client is told to reconnect or not, it identifies afresh.
func (n *Node) disconnectLocal(identifiers string, reconnect bool) {
	if identifiers == "" {
		return
	}
	n.mu.Lock()
	n.kicks.add(identifiers, time.Now())
	var targets []*Session
	for s := range n.byIdentifier[identifiers] {
		// Under n.mu: a session that has not unregistered yet sees the
		// mark when it does (see Session.end).
		s.revoked.Store(true)
		targets = append(targets, s)
	}
	n.mu.Unlock()
	for _, s := range targets {
		s.close(1000, "Closed remotely", protocol.Disconnect(protocol.ReasonRemote, reconnect))
	}
}

// errRevoked refuses a restore whose identity was disconnected remotely
// after it was established (see kicks).
var errRevoked = errors.New("session disconnected remotely")

// errShuttingDown refuses sessions while the node shuts down.
var errShuttingDown = errors.New("shutting down")

// register adds a session and gives it a new random sid (wanted, when not
// empty, is a name tests give it), unique among the live sessions here: a
// sid decides exclude_socket, presence and the restore cache, and is the
// key to a restore, so no client chooses it. A session identified here is
// stamped with the time, which its restores keep; a restoring session
// (restoring set) is refused with errRevoked when its identity was
// disconnected since, checked under the lock disconnectLocal takes, so a
// disconnect either finds the session registered or is seen here. It fails
// with errShuttingDown when the node is shutting down.
func (n *Node) register(s *Session, wanted string, restoring bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.shuttingDown {
		return errShuttingDown
	}
	now := time.Now()
	if !restoring {
		s.identifiedAt = now.UnixNano()
	} else if s.identifiers != "" && n.kicks.revoked(s.identifiers, s.identifiedAt, now) {
		return errRevoked
	}
	gen := newSID
	if s.newSID != nil {
		gen = s.newSID
	}
	sid := wanted
	for _, taken := n.bySID[sid]; sid == "" || taken; _, taken = n.bySID[sid] {
		sid = gen()
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
	return nil
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

// StreamCounts lists the streams whose names start with prefix that have
// subscribers on this node, with their numbers of subscriptions (see
// hub.Hub.Counts).
func (n *Node) StreamCounts(prefix string, limit int) []hub.StreamCount {
	return n.hub.Counts(prefix, limit)
}

// Totals counts the node's streams with subscribers and their
// subscriptions (hub.Hub.Totals: cheap however many streams there are).
func (n *Node) Totals() (streams, subscriptions int) { return n.hub.Totals() }

// Delivered counts the publications queued to the node's subscribers
// since it started, one per subscription reached (hub.Hub.Delivered).
func (n *Node) Delivered() uint64 { return n.hub.Delivered() }
