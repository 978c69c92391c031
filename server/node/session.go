package node

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"cablehub/server/protocol"
	"cablehub/server/streams"
	"cablehub/server/ws"
)

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

	mu     sync.Mutex
	subs   map[string]*streams.Subscription
	closed bool
}

var tooSlowFrame = protocol.Disconnect(protocol.ReasonTooSlow, true)

// SID is the session id (hub.Subscriber).
func (s *Session) SID() string { return s.sid }

// Send queues a frame (hub.Subscriber). A client too slow to take its
// frames is disconnected here, without slowing the caller.
func (s *Session) Send(frame []byte) {
	s.conn.Send(frame, tooSlowFrame)
}

// close sends last (if any) and a close frame, then the connection ends.
func (s *Session) close(code int, reason string, last []byte) {
	s.conn.Close(code, reason, last)
}

// start registers the session, welcomes the client and schedules its pings.
func (s *Session) start() bool {
	if !s.node.register(s) {
		s.close(1001, "Server restart", protocol.Disconnect(protocol.ReasonServerRestart, true))
		return false
	}
	s.conn.OnSlow(func() {
		s.node.metrics.DisconnectedSlowTotal.Inc()
		s.node.log.Debug("disconnecting slow client", "sid", s.sid)
	})
	s.lastActivity.Store(time.Now().UnixNano())
	s.Send(protocol.Welcome(s.sid, nil))
	if s.pingInterval > 0 {
		// Spread the first pings of clients that connect together.
		first := time.Duration(float64(s.pingInterval) * (0.5 + rand.Float64()))
		s.node.timers.add(timer{s: s}, first)
	}
	return true
}

// end releases everything the session holds once its connection is gone.
func (s *Session) end() {
	s.mu.Lock()
	s.closed = true
	subs := s.subs
	s.subs = nil
	s.mu.Unlock()
	for id, sub := range subs {
		s.unsubscribeHub(sub.Stream, id)
	}
	s.node.unregister(s)
}

func (s *Session) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Session) unsubscribeHub(stream, identifier string) {
	s.node.hub.Unsubscribe(stream, identifier, s)
	s.node.metrics.BroadcastStreamsNum.Set(float64(s.node.hub.Streams()))
}

// onTimer sends a due ping or enforces a pong deadline.
func (n *Node) onTimer(t timer) {
	s := t.s
	if s.isClosed() {
		return
	}
	now := time.Now()
	if t.pongCheck {
		if s.lastActivity.Load() < t.sentAt {
			s.close(1000, "No Pong", protocol.Disconnect(protocol.ReasonNoPong, true))
		}
		return
	}
	s.Send(protocol.Ping(timestamp(now, s.pingPrecision)))
	if n.opts.PongTimeout > 0 && s.extended {
		n.timers.add(timer{s: s, pongCheck: true, sentAt: now.UnixNano()}, n.opts.PongTimeout)
	}
	n.timers.add(timer{s: s}, s.pingInterval)
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
// counted and ignored: the connection keeps working.
func (s *Session) handle(frame []byte) {
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
		s.subscribe(cmd.Identifier)
	case "unsubscribe":
		s.unsubscribe(cmd.Identifier)
	case "whisper":
		s.whisper(cmd)
	case "ping":
		s.Send(protocol.Pong())
	case "pong":
	case "message", "history", "presence", "join", "leave":
		// message (perform) goes to an application back end in AnyCable; the
		// built-in channels have none, so it is dropped like there.
		s.node.log.Debug("command not handled", "sid", s.sid, "command", cmd.Command)
	default:
		m.FailedClientMsgTotal.Inc()
		s.node.log.Debug("unknown command", "sid", s.sid, "command", cmd.Command)
	}
}

func (s *Session) subscribe(identifier string) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if _, ok := s.subs[identifier]; ok {
		s.mu.Unlock()
		s.node.log.Debug("already subscribed", "sid", s.sid, "identifier", identifier)
		return
	}
	sub, err := s.node.router.Subscribe(identifier)
	if err != nil {
		s.mu.Unlock()
		s.Send(protocol.Reject(identifier))
		return
	}
	if s.subs == nil {
		s.subs = map[string]*streams.Subscription{}
	}
	s.subs[identifier] = sub
	// Confirm first: a broadcast queued after it is then never seen by the
	// client before its subscription is confirmed.
	s.Send(protocol.Confirm(identifier))
	s.node.hub.Subscribe(sub.Stream, identifier, s)
	s.mu.Unlock()
	s.node.metrics.BroadcastStreamsNum.Set(float64(s.node.hub.Streams()))
}

func (s *Session) unsubscribe(identifier string) {
	s.mu.Lock()
	sub, ok := s.subs[identifier]
	if ok {
		delete(s.subs, identifier)
	}
	s.mu.Unlock()
	if ok {
		s.unsubscribeHub(sub.Stream, identifier)
	}
}

// whisper relays client data to the other subscribers of a stream that
// allows it, as a transient publication that skips the sender.
func (s *Session) whisper(cmd *protocol.Command) {
	s.mu.Lock()
	sub, ok := s.subs[cmd.Identifier]
	s.mu.Unlock()
	if !ok || !sub.Whisper || len(cmd.Data) == 0 {
		return
	}
	pub := protocol.Publication{Stream: sub.Stream, Data: string(cmd.Data), ExcludeSocket: s.sid, Transient: true}
	if err := s.node.Broadcast(context.Background(), []protocol.Publication{pub}); err != nil {
		s.node.log.Warn("whisper not delivered", "sid", s.sid, "error", err)
	}
}
