package sse

import (
	"bytes"
	"net"
	"sync"
	"time"

	"github.com/cablehub/cablehub/server/ws"
)

// maxHeld bounds what a session may send before its answer is decided
// (welcome, confirmations, history): beyond it the request fails (503).
const maxHeld = 4 << 20

// refusalTimeout bounds writing a refusal to a client.
const refusalTimeout = 5 * time.Second

// decideTimeout bounds how long a session may take to start (identify the
// client, confirm its subscriptions) before the request fails with 503:
// the RPC back end's calls and the pub/sub's confirmations have bounds of
// their own, well under it.
const decideTimeout = 30 * time.Second

// conn is a node.Connection over a client's HTTP request. Until the
// session's start is known it holds what the session sends: the answer's
// status depends on it (401 when the client is not identified, 400 when a
// subscription it asked for is rejected, 200 once every one is confirmed).
// Then it streams the answer through the transport's poller and flushers
// (ws.Transport.Stream), filtering typed events out for raw clients.
type conn struct {
	h   *Handler
	nc  net.Conn
	raw bool
	// fields are the header lines of the answer (see head), dropped once
	// the answer's head is made.
	fields []byte

	mu sync.Mutex
	// waiting counts initial subscriptions not yet confirmed.
	waiting int
	held    [][]byte
	heldLen int
	// decided is set once the answer's status is known: inner is set for
	// a 200, nil for a refusal (written, the socket closed).
	decided bool
	inner   *ws.Conn
	// served is set by Serve; end is the session's end function, run
	// once the connection has ended.
	served bool
	end    func()
	ended  bool
	onSlow func()
	slow   []byte
}

// Send queues an event (or holds it, before the answer is decided).
func (c *conn) Send(frame, slow []byte) bool {
	c.mu.Lock()
	if slow != nil {
		c.slow = slow
	}
	if c.decided {
		inner := c.inner
		c.mu.Unlock()
		if inner == nil {
			return false
		}
		if c.raw && isTyped(frame) {
			return true
		}
		return inner.Send(frame, slow)
	}
	defer c.mu.Unlock()
	switch {
	case hasEvent(frame, "reject_subscription"):
		c.refuse(400)
		return false
	case hasEvent(frame, "confirm_subscription"):
		c.waiting--
	}
	if c.heldLen+len(frame) > maxHeld {
		c.refuse(503)
		return false
	}
	c.held = append(c.held, frame)
	c.heldLen += len(frame)
	c.maybeStream()
	return true
}

// Close ends the answer: before it is decided, with the refusal the close
// stands for (see refusalStatus); after, with last as the body's last
// event.
func (c *conn) Close(code int, reason string, last []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !c.decided:
		c.refuse(refusalStatus(code, reason, last))
	case c.inner == nil: // refused already
	case c.raw && isTyped(last):
		c.inner.Close(code, reason, nil)
	default:
		c.inner.Close(code, reason, last)
	}
}

// Abort ends the connection at once.
func (c *conn) Abort() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inner != nil {
		c.inner.Abort()
		return
	}
	if !c.decided {
		c.decided = true
		c.nc.Close()
		c.finishLocked()
	}
}

func (c *conn) OnSlow(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onSlow = f
	if c.inner != nil {
		c.inner.OnSlow(f)
	}
}

// Serve takes the session's end function; clients send nothing, so handle
// is never called.
func (c *conn) Serve(_ func([]byte), end func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.served, c.end = true, end
	if c.decided {
		c.finishLocked() // refused (or aborted) before Serve
		return
	}
	c.maybeStream()
	if !c.decided {
		time.AfterFunc(decideTimeout, func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.refuse(503)
		})
	}
}

// maybeStream starts the 200 answer once every initial subscription is
// confirmed and the session serves the connection; c.mu is held.
func (c *conn) maybeStream() {
	if c.waiting > 0 || !c.served || c.decided {
		return
	}
	c.decided = true
	inner := c.h.transport.Stream(c.nc, c.head(200))
	c.inner = inner
	c.fields = nil // written once: not held for the stream's life
	for _, f := range c.held {
		if !(c.raw && isTyped(f)) {
			inner.Send(f, c.slow)
		}
	}
	c.held, c.heldLen = nil, 0
	if c.onSlow != nil {
		inner.OnSlow(c.onSlow)
	}
	c.h.opened()
	end := c.end
	inner.Serve(nil, func() {
		c.h.closed()
		if end != nil {
			end()
		}
	})
}

// refuse answers with status instead of the stream and ends the
// connection; c.mu is held. The refusal is written on a goroutine of its
// own: the caller may be the hub fanning out.
func (c *conn) refuse(status int) {
	if c.decided {
		return
	}
	c.decided = true
	c.held, c.heldLen = nil, 0
	head := c.head(status)
	c.fields = nil
	nc := c.nc
	go func() {
		nc.SetWriteDeadline(time.Now().Add(refusalTimeout))
		nc.Write(head)
		if tc, ok := nc.(interface{ CloseWrite() error }); ok {
			tc.CloseWrite()
		}
		nc.Close()
	}()
	if c.served {
		c.finishLocked()
	}
}

// finishLocked runs the session's end once; c.mu is held.
func (c *conn) finishLocked() {
	if c.ended || !c.served {
		return
	}
	c.ended = true
	if c.end != nil {
		go c.end()
	}
}

// refusalStatus is the status of a session closed before its answer,
// given the close and its last event: 401 for a client that is not
// identified ("Auth Failed"), 503 when the server cannot take it now (over
// --max-conn, shutting down, a stream its pub/sub cannot listen to), else
// 400.
func refusalStatus(code int, reason string, last []byte) int {
	switch {
	case reason == "Auth Failed":
		return 401
	case code == 1013, code == 1001, bytes.Contains(last, []byte(`"reason":"stream_unavailable"`)):
		return 503
	}
	return 400
}

// isTyped reports whether an event has a name: raw clients get only the
// unnamed ones (publications).
func isTyped(event []byte) bool {
	return bytes.HasPrefix(event, []byte("event: "))
}

// hasEvent reports whether event is named name.
func hasEvent(event []byte, name string) bool {
	rest, ok := bytes.CutPrefix(event, []byte("event: "))
	return ok && bytes.HasPrefix(rest, []byte(name)) && len(rest) > len(name) && rest[len(name)] == '\n'
}
