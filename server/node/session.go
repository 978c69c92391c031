package node

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cablehub/cablehub/server/protocol"
	"github.com/cablehub/cablehub/server/streams"
	"github.com/cablehub/cablehub/server/ws"
)

// Session is one connected client.
type Session struct {
	node *Node
	conn Connection
	// ctx ends with the session (cancel runs when its connection has
	// ended): broker calls made for the session derive from it (see
	// brokerContext), so none outlives the session's need for it.
	ctx    context.Context
	cancel context.CancelFunc

	sid         string
	identifiers string
	extended    bool

	// env is the upgrade request's part of App calls' Env; nil when the
	// node has no App. cstate is the connection state the App keeps, and
	// appDisconnect marks a session whose end the App must hear of (see
	// DisconnectMode); both are guarded by mu.
	env           *requestEnv
	cstate        map[string]string
	appDisconnect bool
	// started is set once the session is welcomed (before its reader
	// starts): only started sessions are owed a Disconnect.
	started bool

	pingInterval  time.Duration
	pingPrecision string
	// lastActivity is when the client last sent a command (unix nanos).
	lastActivity atomic.Int64

	mu   sync.Mutex
	subs map[string]*subscription
	// present holds the streams the session has joined the presence of,
	// bounded by Options.MaxPresence.
	present map[string]struct{}
	// cacheScheduled is set while a write of the restore cache is due.
	cacheScheduled bool
	closed         bool

	// cacheMu orders writes of the restore cache, so an older state never
	// overwrites a newer one.
	cacheMu sync.Mutex
}

// subscription is one identifier the session is subscribed to: a
// built-in channel (one stream, decided by the router) or an application
// channel (app set; its streams come and go with the back end's answers).
type subscription struct {
	streams.Subscription
	// app is set for a channel the App runs; state is its channel state
	// (AnyCable's istate; "$w" names the stream whispers go to, "$p" the
	// presence stream).
	app   bool
	state map[string]string
	// feeds are the streams the subscription receives, each with its own
	// position: one for a built-in channel, any number (bounded by
	// maxChannelStreams) for an application channel.
	feeds []*feed
}

// feed is one stream of a subscription and the client's position in it.
type feed struct {
	stream string
	// epoch and lastOffset are the position of the last stamped
	// publication the client got from the stream on this subscription:
	// within the epoch, history replays and live messages at or below it
	// are not sent again (see sendOrdered).
	epoch      string
	lastOffset uint64
	// gap, while set, holds live messages that arrived past a gap in the
	// offsets until the gap is filled (see session_order.go).
	gap *gap
	// replay, while set, holds live messages back until history has been
	// sent, so the client sees the stream in order.
	replay *replay
}

// feed returns the subscription's feed of stream, nil if it has none.
func (sub *subscription) feed(stream string) *feed {
	for _, f := range sub.feeds {
		if f.stream == stream {
			return f
		}
	}
	return nil
}

// builtinSubscription is the subscription of a route of the router: one
// feed, of the route's stream, holding live messages as r says.
func builtinSubscription(route *streams.Subscription, r *replay) *subscription {
	return &subscription{Subscription: *route, feeds: []*feed{{stream: route.Stream, replay: r}}}
}

var tooSlowFrame = protocol.Disconnect(protocol.ReasonTooSlow, true)

// newSession returns the session of conn, with the node's default ping
// settings and a context of its own: a session outlives the upgrade
// request, whose context ends when the handshake is answered.
func newSession(n *Node, conn Connection) *Session {
	ctx, cancel := context.WithCancel(context.Background())
	return &Session{
		node:          n,
		conn:          conn,
		ctx:           ctx,
		cancel:        cancel,
		extended:      conn.Subprotocol() == ws.ProtocolExtended,
		pingInterval:  n.opts.PingInterval,
		pingPrecision: n.opts.PingPrecision,
	}
}

// brokerContext bounds one broker call made for the session: it is done
// when the session ends or after brokerTimeout, so that a broker that hangs
// cannot hold the session's work forever, and work for a session that is
// gone stops.
func (s *Session) brokerContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, brokerTimeout)
}

// SID is the session id (hub.Subscriber).
func (s *Session) SID() string { return s.sid }

// Send queues a frame. A client too slow to take its frames is disconnected
// here, without slowing the caller. It reports false when the frame was
// dropped because the connection is closing (or was cut as too slow), so
// that callers producing many frames can stop.
func (s *Session) Send(frame []byte) bool {
	return s.conn.Send(frame, tooSlowFrame)
}

// Deliver queues a publication's frame for one subscription (hub.Subscriber).
func (s *Session) Deliver(identifier string, p *protocol.Publication, frame []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.subs[identifier]
	if sub == nil {
		return
	}
	f := sub.feed(p.Stream)
	if f == nil {
		return
	}
	if p.Recovered && (f.replay != nil || f.epoch == "") {
		return // a replay covers it, or the client has no position to resume
	}
	if r := f.replay; r != nil {
		r.heldBytes += len(frame)
		if r.heldBytes > maxHeldBytes {
			// The client is not reading its history while the stream runs
			// on: it is as slow as one whose queue overflows.
			r.held = nil
			s.node.metrics.DisconnectedSlowTotal.Inc()
			s.close(1000, "", tooSlowFrame)
			return
		}
		r.held = append(r.held, heldFrame{frame: frame, epoch: p.Epoch, offset: p.Offset})
		return
	}
	s.sendOrdered(f, frame, p.Epoch, p.Offset)
}

// close sends last (if any) and a close frame, then the connection ends.
func (s *Session) close(code int, reason string, last []byte) {
	s.conn.Close(code, reason, last)
}

// start welcomes the registered client (unless welcome is false: the App
// sent what it wanted) and schedules its timers. restored lists the
// identifiers brought back from a cached session (nil for a new session).
func (s *Session) start(restored []string, welcome bool) {
	s.conn.OnSlow(func() {
		s.node.metrics.DisconnectedSlowTotal.Inc()
		s.node.log.Debug("disconnecting slow client", "sid", s.sid)
	})
	s.lastActivity.Store(time.Now().UnixNano())
	s.started = true
	if welcome {
		s.Send(protocol.Welcome(s.sid, restored))
	}
	if s.pingInterval > 0 {
		// Spread the first pings of clients that connect together.
		first := time.Duration(float64(s.pingInterval) * (0.5 + rand.Float64()))
		s.node.timers.add(timer{s: s, kind: timerPing}, first)
	}
	if s.resumable() {
		// Off the upgrade's path: the welcome (sent with the handshake
		// response) must not wait for the broker.
		go s.cache()
		s.node.timers.add(timer{s: s, kind: timerTouch}, s.node.opts.SessionsTTL/2)
	}
	if len(restored) > 0 {
		s.node.timers.add(timer{s: s, kind: timerRestoreHold}, s.node.opts.restoreHold())
	}
}

// end releases everything the session holds once its connection is gone,
// then ends the session's context. Presence stays for --presence_ttl, and
// the session can be restored for --sessions_ttl.
func (s *Session) end() {
	defer s.cancel()
	defer s.recoverPanic("connection end")
	s.mu.Lock()
	s.closed = true
	subs := s.subs
	s.mu.Unlock()
	if s.resumable() {
		s.cache()
	}
	for id, sub := range subs {
		for _, f := range sub.feeds {
			s.unsubscribeHub(f.stream, id)
		}
	}
	if req := s.disconnectRequest(subs); req != nil {
		s.node.disconnects.enqueue(s.sid, req)
	}
	ctx, cancel := s.brokerContext()
	defer cancel()
	if err := s.node.broker.PresenceDisconnect(ctx, s.sid); err != nil {
		s.node.log.Warn("presence not released", "sid", s.sid, "error", err)
	}
	s.node.unregister(s)
}

func (s *Session) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Session) unsubscribeHub(stream, identifier string) {
	s.node.unsubscribe(stream, identifier, s)
}

// handle runs one client frame. Malformed frames and unknown commands are
// counted and ignored: the connection keeps working. A panic while handling
// it is a bug of ours: it is logged with its stack and ends this connection
// (close 1011) only, never the process.
func (s *Session) handle(frame []byte) {
	defer s.recoverPanic("client message")
	m := s.node.metrics
	m.ClientMsgTotal.Inc()
	m.DataRcvdTotal.Add(float64(len(frame)))
	cmd, err := protocol.ParseCommand(frame)
	if err != nil {
		m.FailedClientMsgTotal.Inc()
		s.node.log.Debug("malformed client message", "sid", s.sid, "error", err)
		return
	}
	s.lastActivity.Store(time.Now().UnixNano())
	switch cmd.Command {
	case "subscribe":
		s.subscribe(cmd)
	case "unsubscribe":
		s.unsubscribeCommand(cmd.Identifier)
	case "history":
		s.history(cmd.Identifier, cmd.History, false)
	case "join":
		s.join(cmd.Identifier, cmd.Presence)
	case "leave":
		s.leave(cmd.Identifier)
	case "presence":
		s.presenceInfo(cmd.Identifier)
	case "whisper":
		s.whisper(cmd)
	case "ping":
		s.Send(protocol.Pong())
	case "pong":
	case "message":
		s.perform(cmd)
	default:
		m.FailedClientMsgTotal.Inc()
		s.node.log.Debug("unknown command", "sid", s.sid, "command", cmd.Command)
	}
}

func (s *Session) subscribe(cmd *protocol.Command) {
	identifier := cmd.Identifier
	if reject, ok := s.canSubscribe(identifier); !ok {
		if reject {
			s.Send(protocol.Reject(identifier))
		}
		return
	}
	// Decided outside s.mu, so a failure in the router cannot leave the
	// session locked.
	route, err := s.node.router.Subscribe(identifier)
	if errors.Is(err, streams.ErrNotRouted) {
		if s.node.opts.App != nil {
			s.subscribeApp(cmd)
			return
		}
		s.node.warnNoApp("channel", "subscriptions to application channels are rejected")
	}
	if err != nil {
		s.Send(protocol.Reject(identifier))
		return
	}
	// Live messages are held until the client has its confirmation (and,
	// with a history request, its history), so nothing overtakes them.
	sub := builtinSubscription(route, &replay{pending: 1})
	withHistory := hasField(cmd.History)
	if withHistory {
		sub.feeds[0].replay.pending++
	}
	s.mu.Lock()
	if s.subs == nil {
		s.subs = map[string]*subscription{}
	}
	s.subs[identifier] = sub
	s.mu.Unlock()
	// Outside s.mu: the hub calls Deliver (which takes s.mu) under its own
	// lock. This also waits until the cluster pub/sub listens to the stream,
	// so a publish the client makes after the confirmation reaches it.
	s.node.subscribe(sub.Stream, identifier, s)
	s.confirm(identifier, sub)
	s.cacheLater()
	if withHistory {
		s.history(identifier, cmd.History, true)
	}
	if hasField(cmd.Presence) {
		s.join(identifier, cmd.Presence)
	}
}

// hasField reports whether an optional JSON field of a command was given.
func hasField(raw []byte) bool {
	return len(raw) > 0 && string(raw) != "null"
}

// unsubscribeCommand runs the client's unsubscribe: the App decides for
// its channels, built-in ones end here.
func (s *Session) unsubscribeCommand(identifier string) {
	s.mu.Lock()
	sub := s.subs[identifier]
	s.mu.Unlock()
	if sub != nil && sub.app {
		s.unsubscribeApp(identifier, sub)
		return
	}
	s.unsubscribe(identifier)
}

// unsubscribe ends a subscription: its streams, its presence, its place in
// the restore cache.
func (s *Session) unsubscribe(identifier string) {
	s.mu.Lock()
	sub, ok := s.subs[identifier]
	if ok {
		delete(s.subs, identifier)
	}
	s.mu.Unlock()
	if !ok {
		return
	}
	for _, f := range sub.feeds {
		s.unsubscribeHub(f.stream, identifier)
	}
	if stream, ok := sub.presenceStream(); ok {
		s.leaveStream(stream)
	}
	s.cacheLater()
}

// whisper relays client data to the other subscribers of a stream that
// allows it, as a transient publication that skips the sender.
func (s *Session) whisper(cmd *protocol.Command) {
	s.mu.Lock()
	var stream string
	sub, ok := s.subs[cmd.Identifier]
	if ok {
		stream, ok = sub.whisperStream()
	}
	s.mu.Unlock()
	if !ok || len(cmd.Data) == 0 {
		return
	}
	pub := protocol.Publication{Stream: stream, Data: string(cmd.Data), ExcludeSocket: s.sid, Transient: true}
	ctx, cancel := s.brokerContext()
	defer cancel()
	if err := s.node.Broadcast(ctx, []protocol.Publication{pub}); err != nil {
		s.node.log.Warn("whisper not delivered", "sid", s.sid, "error", err)
	}
}

// canSubscribe checks that identifier may be subscribed: ok is false for a
// closed session, an identifier already subscribed (ignored, as in
// AnyCable) and over Options.MaxSubscriptions (reject set: the client is
// told).
func (s *Session) canSubscribe(identifier string) (reject, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch _, dup := s.subs[identifier]; {
	case s.closed:
		return false, false
	case dup:
		s.node.log.Debug("already subscribed", "sid", s.sid, "identifier", identifier)
		return false, false
	}
	if max := s.node.opts.MaxSubscriptions; max > 0 && len(s.subs) >= max {
		s.node.metrics.FailedClientMsgTotal.Inc()
		s.node.log.Debug("subscription limit reached", "sid", s.sid, "limit", max)
		return true, false
	}
	return false, true
}

// recoverPanic, deferred, turns a panic in work done for this session into
// a log line with the stack and the end of this connection (close 1011).
func (s *Session) recoverPanic(what string) {
	v := recover()
	if v == nil {
		return
	}
	s.node.metrics.FailedClientMsgTotal.Inc()
	s.node.log.Error(fmt.Sprintf("panic handling %s: %v", what, v), "sid", s.sid, "stack", string(debug.Stack()))
	s.close(1011, "Internal Error", nil)
}
