package node

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cablehub/cablehub/server/protocol"
)

// connLimit counts the node's client connections, of every transport, for
// Options.MaxConns (--max-conn). A connection counts from its acceptance
// (Gate.Serve) until it has ended, whatever became of it (welcomed,
// refused, restored).
//
// AnyCable applies --max-conn to its listener: the connection over the
// limit is not accepted and waits in the kernel's backlog, and health
// checks and API requests on that port wait with it. Cablehub counts
// client connections (WebSocket, Server-Sent Events, ...) only and refuses
// the one over the limit at once, in words the client understands (see
// Gate.refuseOverLimit), so the client can retry, through its load
// balancer, while /health keeps answering.
type connLimit struct {
	max  int64
	open atomic.Int64
	// refused counts refusals since the last warning, lastWarn is when
	// that was (unix nanoseconds): at most one WARN per limitWarnEvery.
	refused  atomic.Int64
	lastWarn atomic.Int64
}

// limitWarnEvery spaces the WARN lines of a node at its limit.
const limitWarnEvery = 10 * time.Second

// acquire counts one more connection and reports whether it fits.
func (l *connLimit) acquire() bool {
	if l.max <= 0 {
		return true
	}
	if l.open.Add(1) > l.max {
		l.open.Add(-1)
		return false
	}
	return true
}

func (l *connLimit) release() {
	if l.max > 0 {
		l.open.Add(-1)
	}
}

// refuseOverLimit tells a client over --max-conn to come back later: a
// disconnect message with reconnect true (Action Cable clients retry with
// their back-off) and close 1013 "Try Again Later", the WebSocket code for
// a server that is overloaded for now. It is counted and logged.
func (h *Gate) refuseOverLimit(conn Connection, codec Codec) {
	n := h.node
	n.metrics.ConnLimitRefusedTotal.Inc()
	l := &n.conns
	l.refused.Add(1)
	now := time.Now().UnixNano()
	if last := l.lastWarn.Load(); now-last >= int64(limitWarnEvery) && l.lastWarn.CompareAndSwap(last, now) {
		n.log.Warn(fmt.Sprintf("connection limit reached (--max-conn %d): refused %d connection(s) with close 1013 since the last report", l.max, l.refused.Swap(0)))
	}
	conn.Close(1013, "Try Again Later", codec.Encode(protocol.Disconnect(protocol.ReasonTooManyConnections, true)))
	conn.Serve(nil, nil)
}

// countedConn releases its place under the limit once it has ended.
type countedConn struct {
	Connection
	release func()
}

func (c countedConn) Serve(handle func([]byte), end func()) {
	c.Connection.Serve(handle, func() {
		c.release()
		if end != nil {
			end()
		}
	})
}
