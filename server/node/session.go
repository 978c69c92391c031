package node

import (
	"context"
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

// restoreHold is how long live messages of restored subscriptions wait for
// the client's history request, so history and live messages arrive in
// order.
const restoreHold = 5 * time.Second

// Session is one connected client.
type Session struct {
	node        *Node
	conn        *ws.Conn
	sid         string
	identifiers string
	extended    bool

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

// subscription is one identifier the session is subscribed to.
type subscription struct {
	streams.Subscription
	// epoch and lastOffset are the position of the last stamped
	// publication the client got on this subscription: within the epoch,
	// history replays and live messages at or below it are not sent again
	// (see sendOrdered).
	epoch      string
	lastOffset uint64
	// gap, while set, holds live messages that arrived past a gap in the
	// offsets until the gap is filled (see session_order.go).
	gap *gap
	// replay, while set, holds live messages back until history has been
	// sent, so the client sees the stream in order.
	replay *replay
}

type replay struct {
	// pending counts history requests in progress, plus one while a
	// restored subscription waits for its first history request.
	pending   int
	restored  bool
	held      []heldFrame
	heldBytes int
}

type heldFrame struct {
	frame  []byte
	epoch  string
	offset uint64
}

var tooSlowFrame = protocol.Disconnect(protocol.ReasonTooSlow, true)

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
	if p.Recovered && (sub.replay != nil || sub.epoch == "") {
		return // a replay covers it, or the client has no position to resume
	}
	if r := sub.replay; r != nil {
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
	s.sendOrdered(sub, frame, p.Epoch, p.Offset)
}

// maxHeldBytes bounds the live messages one subscription holds back while
// its history is replayed (at most restoreHold after a restore).
const maxHeldBytes = 4 << 20

// close sends last (if any) and a close frame, then the connection ends.
func (s *Session) close(code int, reason string, last []byte) {
	s.conn.Close(code, reason, last)
}

// start welcomes the registered client and schedules its timers. restored
// lists the identifiers brought back from a cached session (nil for a new
// session).
func (s *Session) start(restored []string) {
	s.conn.OnSlow(func() {
		s.node.metrics.DisconnectedSlowTotal.Inc()
		s.node.log.Debug("disconnecting slow client", "sid", s.sid)
	})
	s.lastActivity.Store(time.Now().UnixNano())
	s.Send(protocol.Welcome(s.sid, restored))
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
		s.node.timers.add(timer{s: s, kind: timerRestoreHold}, restoreHold)
	}
}

// end releases everything the session holds once its connection is gone.
// Presence stays for --presence_ttl, and the session can be restored for
// --sessions_ttl.
func (s *Session) end() {
	defer s.recoverPanic("connection end")
	s.mu.Lock()
	s.closed = true
	subs := s.subs
	s.mu.Unlock()
	if s.resumable() {
		s.cache()
	}
	for id, sub := range subs {
		s.unsubscribeHub(sub.Stream, id)
	}
	if err := s.node.broker.PresenceDisconnect(context.Background(), s.sid); err != nil {
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

// onTimer runs a due session timer.
func (n *Node) onTimer(t timer) {
	s := t.s
	defer s.recoverPanic("timer")
	if s.isClosed() {
		return
	}
	switch t.kind {
	case timerPongCheck:
		if s.lastActivity.Load() < t.sentAt {
			s.close(1000, "No Pong", protocol.Disconnect(protocol.ReasonNoPong, true))
		}
	case timerCache:
		s.mu.Lock()
		s.cacheScheduled = false
		s.mu.Unlock()
		go s.cache()
	case timerTouch:
		go s.cache()
		n.timers.add(timer{s: s, kind: timerTouch}, n.opts.SessionsTTL/2)
	case timerRestoreHold:
		s.releaseRestoreHolds()
	case timerGap:
		s.fillGap(t.identifier)
	case timerPing:
		now := time.Now()
		s.Send(protocol.Ping(timestamp(now, s.pingPrecision)))
		if n.opts.PongTimeout > 0 && s.extended {
			n.timers.add(timer{s: s, kind: timerPongCheck, sentAt: now.UnixNano()}, n.opts.PongTimeout)
		}
		n.timers.add(timer{s: s, kind: timerPing}, s.pingInterval)
	}
}

func timestamp(t time.Time, precision string) int64 {
	switch precision {
	case "ms":
		return t.UnixMilli()
	case "ns":
		return t.UnixNano()
	}
	return t.Unix()
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
		s.unsubscribe(cmd.Identifier)
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
	if err != nil {
		s.Send(protocol.Reject(identifier))
		return
	}
	// Live messages are held until the client has its confirmation (and,
	// with a history request, its history), so nothing overtakes them.
	sub := &subscription{Subscription: *route, replay: &replay{pending: 1}}
	withHistory := len(cmd.History) > 0 && string(cmd.History) != "null"
	if withHistory {
		sub.replay.pending++
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
	if len(cmd.Presence) > 0 && string(cmd.Presence) != "null" {
		s.join(identifier, cmd.Presence)
	}
}

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
	s.unsubscribeHub(sub.Stream, identifier)
	if sub.Presence {
		s.leaveStream(sub.Stream)
	}
	s.cacheLater()
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

// confirm sends the confirmation of sub, then the live messages held
// meanwhile.
func (s *Session) confirm(identifier string, sub *subscription) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Send(protocol.Confirm(identifier))
	s.finishReplay(sub)
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
