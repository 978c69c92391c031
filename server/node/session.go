package node

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cablehub/cablehub/server/hub"
	"github.com/cablehub/cablehub/server/protocol"
	"github.com/cablehub/cablehub/server/streams"
)

// Session is one connected client.
type Session struct {
	node *Node
	conn Connection
	// codec is the wire format of conn; tooSlow is the too_slow
	// disconnect in it, the last frame of a client cut as too slow.
	codec   Codec
	tooSlow []byte
	// ctx ends with the session (cancel runs when its connection has
	// ended): broker calls made for the session derive from it (see
	// brokerContext), so none outlives the session's need for it.
	ctx    context.Context
	cancel context.CancelFunc

	sid         string
	identifiers string
	extended    bool
	// The transport's choices (SessionOptions): its sid generator and
	// router (nil for the node's), whether presence ends with the
	// connection and whether pongs are due.
	newSID       func() string
	router       SessionRouter
	leaveOnClose bool
	pongTimeout  time.Duration
	// identifiedAt is when the session's identity was established (unix
	// nanoseconds): by this session's registration, or, restored, by the
	// session it continues. expires is when the credential behind it
	// expires (the JWT's exp; zero for never). Both travel in the restore
	// cache, so a restore cannot outlive a remote disconnect or the token.
	identifiedAt int64
	expires      time.Time
	// revoked is set when a remote disconnect closes the session: its
	// restore state is dropped and never written again.
	revoked atomic.Bool

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
	subs subSet
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
	// gen is the node's count of pub/sub interruptions when the position
	// was last known complete (see sendOrdered).
	gen uint64
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

// tooSlowFrames holds tooSlowFrame as each codec encodes it (codecs are
// comparable and do not change, see Codec), so the sessions of a codec
// share one copy rather than each holding its own: 128 B per idle
// Server-Sent Events stream. Past maxTooSlowCodecs codecs (a transport
// with a codec per session, say) sessions encode their own. The node
// keeps one.
type tooSlowFrames struct {
	frames sync.Map // Codec → []byte
	codecs atomic.Int32
}

const maxTooSlowCodecs = 16

// in is tooSlowFrame encoded by c, shared with every session of c while
// fewer than maxTooSlowCodecs codecs have been seen. The caller must not
// modify it.
func (t *tooSlowFrames) in(c Codec) []byte {
	if b, ok := t.frames.Load(c); ok {
		return b.([]byte)
	}
	b := c.Encode(tooSlowFrame)
	if t.codecs.Add(1) <= maxTooSlowCodecs {
		if prev, loaded := t.frames.LoadOrStore(c, b); loaded {
			return prev.([]byte)
		}
	}
	return b
}

// newSession returns the session of conn, with the node's default ping
// settings unless o changes them, and a context of its own: a session
// outlives the request that opened it, whose context ends when the
// handshake is answered.
func newSession(n *Node, conn Connection, o *SessionOptions) *Session {
	ctx, cancel := context.WithCancel(context.Background())
	codec := o.codec()
	s := &Session{
		node:          n,
		conn:          conn,
		codec:         codec,
		tooSlow:       n.tooSlow.in(codec),
		ctx:           ctx,
		cancel:        cancel,
		extended:      o.Extended,
		newSID:        o.NewSID,
		router:        o.Router,
		leaveOnClose:  o.LeaveOnClose,
		pongTimeout:   o.PongTimeout,
		pingInterval:  n.opts.PingInterval,
		pingPrecision: n.opts.PingPrecision,
	}
	switch {
	case o.PingInterval > 0:
		s.pingInterval = o.PingInterval
	case o.PingInterval < 0:
		s.pingInterval = 0
	}
	return s
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

// Encoder is the session's codec (hub.Subscriber).
func (s *Session) Encoder() hub.Encoder { return s.codec }

// Send queues a server message, composed in Action Cable JSON, in the
// session's wire format. A client too slow to take its frames is
// disconnected here, without slowing the caller. It reports false when the
// frame was dropped because the connection is closing (or was cut as too
// slow), so that callers producing many frames can stop; a message the
// codec drops counts as sent.
func (s *Session) Send(frame []byte) bool {
	wire := s.codec.Encode(frame)
	if wire == nil {
		return true
	}
	return s.conn.Send(wire, s.tooSlow)
}

// sendWire queues a frame already in the session's wire format: a
// publication encoded by the codec's AppendBroadcast.
func (s *Session) sendWire(frame []byte) bool {
	return s.conn.Send(frame, s.tooSlow)
}

// Deliver queues a publication's frame for one subscription (hub.Subscriber).
func (s *Session) Deliver(identifier string, p *protocol.Publication, frame []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.subs.get(identifier)
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
			s.conn.Close(1000, "", s.tooSlow)
			return
		}
		r.held = append(r.held, heldFrame{frame: frame, epoch: p.Epoch, offset: p.Offset})
		return
	}
	s.sendOrdered(f, frame, p.Epoch, p.Offset)
}

// close sends last (if any, a server message in Action Cable JSON) and a
// close frame, then the connection ends.
func (s *Session) close(code int, reason string, last []byte) {
	if last != nil {
		last = s.codec.Encode(last)
	}
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
// the session can be restored for --sessions_ttl, unless a remote
// disconnect revoked it (also one that arrives while it ends).
func (s *Session) end() {
	defer s.cancel()
	defer s.recoverPanic("connection end")
	s.mu.Lock()
	s.closed = true
	subs := s.subs.snapshot()
	s.mu.Unlock()
	cached := false
	if s.resumable() {
		cached = s.cache()
	}
	for id, sub := range subs.all() {
		for _, f := range sub.feeds {
			s.unsubscribeHub(f.stream, id)
		}
	}
	if req := s.disconnectRequest(&subs); req != nil {
		s.node.disconnects.enqueue(s.sid, req)
	}
	if s.leaveOnClose {
		s.leaveAll()
	}
	ctx, cancel := s.brokerContext()
	defer cancel()
	if err := s.node.broker.PresenceDisconnect(ctx, s.sid); err != nil {
		s.node.log.Warn("presence not released", "sid", s.sid, "error", err)
	}
	s.node.unregister(s)
	if cached && s.revoked.Load() {
		// Revoked after its state was written: disconnectLocal marks the
		// sessions it finds registered, so the mark is seen by now.
		s.forget()
	}
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
	cmd, err := s.codec.Decode(frame)
	if err != nil {
		m.FailedClientMsgTotal.Inc()
		s.node.log.Debug("malformed client message", "sid", s.sid, "error", err)
		return
	}
	s.lastActivity.Store(time.Now().UnixNano())
	s.run(cmd)
}

// run runs one command of the client's.
func (s *Session) run(cmd *protocol.Command) {
	m := s.node.metrics
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

// runInitial runs the commands the transport gave for a session just
// started (SessionOptions.Commands), before the client's own.
func (s *Session) runInitial(cmds []*protocol.Command) {
	for _, cmd := range cmds {
		func() {
			defer s.recoverPanic("initial command")
			s.run(cmd)
		}()
	}
}
