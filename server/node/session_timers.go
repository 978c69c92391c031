package node

import (
	"time"

	"github.com/cablehub/cablehub/server/protocol"
)

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
		s.fillGap(t.gap.identifier, t.gap.stream)
	case timerPing:
		now := time.Now()
		s.Send(protocol.Ping(timestamp(now, s.pingPrecision)))
		if wait := s.pongWait(); wait > 0 {
			n.timers.add(timer{s: s, kind: timerPongCheck, sentAt: now.UnixNano()}, wait)
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

// pongWait is how long the session has to answer a ping, 0 for no limit:
// its transport's (SessionOptions.PongTimeout), else the node's for
// extended sessions.
func (s *Session) pongWait() time.Duration {
	switch {
	case s.pongTimeout > 0:
		return s.pongTimeout
	case s.extended:
		return s.node.opts.PongTimeout
	}
	return 0
}
