package ds

import (
	"sync"
	"time"

	"github.com/cablehub/cablehub/server/ws"
)

// drainWait is how long a long-poll waits, once a publication has
// arrived, for more that arrived with it: the answer carries what came
// together, not only the first.
const drainWait = 5 * time.Millisecond

// Bounds of one long-poll answer: past them it is sent at once, and the
// client's next request reads the rest.
const (
	maxLiveItems = 1000
	maxLiveBytes = 1 << 20
)

// conn is the node.Connection of one read request's session. The
// session identifies the reader (the gate's authentication: Serve with a
// handle means the reader was accepted); a live read then subscribes
// through it (see Handler.subscribe) and the publications its session
// sends, in order and from the reader's position, become the answer:
// the body of a long-poll, or events of an SSE stream written through
// ws.Transport.Stream.
type conn struct {
	mu sync.Mutex
	// handle and end are the session's (Serve); accepted is set when it
	// took the reader, ended once end has run.
	handle   func([]byte)
	end      func()
	accepted bool
	ended    bool
	// closed is set by Close or Abort; authFailed when the session
	// refused the reader's credentials.
	closed     bool
	authFailed bool

	// mode is set by the handler once the read goes live.
	mode liveMode
	// epoch and seq are the position of the last publication delivered
	// (epoch "" while the stream was unknown: the first record sets it).
	epoch string
	seq   uint64
	// long-poll: the messages gathered, joined by commas; done is closed
	// when the answer can go (data, the stream gone, the session closed).
	body   []byte
	count  int
	gone   bool
	done   chan struct{}
	signal bool
	drain  *time.Timer
	// wait overrides drainWait when set (tests hold the answer open).
	wait time.Duration
	// SSE: the stream, and the handler's cursor function.
	inner  *ws.Conn
	events func(dst []byte, rec record, epoch string, seq uint64) []byte
	onSlow func()
}

// Send takes a session's message: publications as records for the live
// read, server messages for what they tell (a refused subscription or
// history means the reader's position is no longer valid).
func (c *conn) Send(frame, _ []byte) bool {
	rec, err := parseRecord(frame)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		switch messageType(frame) {
		case "reject_history", "reject_subscription":
			c.lostLocked()
		}
		return !c.closed
	}
	switch {
	case c.closed:
		return false
	case c.mode == catchUp:
		return true
	case c.epoch != "" && rec.epoch != c.epoch:
		// The stream restarted: its offsets are not comparable.
		c.lostLocked()
		return false
	case c.epoch != "" && rec.seq <= c.seq:
		return true // delivered already
	}
	prevEpoch, prevSeq := c.epoch, c.seq
	c.epoch, c.seq = rec.epoch, rec.seq
	if c.mode == sseMode {
		if c.inner != nil {
			return c.inner.Send(c.events(nil, rec, prevEpoch, prevSeq), nil)
		}
		return true
	}
	return c.gatherLocked(rec, prevEpoch, prevSeq)
}

// gatherLocked adds a publication to a long-poll's answer; c.mu is held.
func (c *conn) gatherLocked(rec record, prevEpoch string, prevSeq uint64) bool {
	if c.signal {
		// The answer is decided: this one is for the next request.
		c.epoch, c.seq = prevEpoch, prevSeq
		return true
	}
	if c.count > 0 {
		c.body = append(c.body, ',')
	}
	c.body = append(c.body, rec.message...)
	c.count++
	switch {
	case c.count >= maxLiveItems || len(c.body) >= maxLiveBytes:
		c.signalLocked()
	case c.count == 1:
		wait := drainWait
		if c.wait > 0 {
			wait = c.wait
		}
		c.drain = time.AfterFunc(wait, c.wake)
	}
	return true
}

// wake ends a long-poll's wait.
func (c *conn) wake() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.signalLocked()
}

func (c *conn) signalLocked() {
	if !c.signal && c.done != nil {
		c.signal = true
		close(c.done)
	}
}

// lostLocked ends a live read whose position cannot be served: a
// long-poll answers 410 (unless it has data already), an SSE stream ends
// (the client's next request gets 410); c.mu is held.
func (c *conn) lostLocked() {
	switch c.mode {
	case longPoll:
		if !c.signal {
			c.gone = c.count == 0
			c.signalLocked()
		}
	case sseMode:
		if c.inner != nil {
			c.inner.Close(1000, "", nil)
		}
	}
}

// Close ends the read: a long-poll answers with what it has, an SSE
// stream ends.
func (c *conn) Close(_ int, reason string, _ []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.authFailed = c.authFailed || reason == "Auth Failed"
	c.signalLocked()
	if c.inner != nil {
		c.inner.Close(1000, "", nil)
	}
}

// Abort ends the read at once.
func (c *conn) Abort() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.signalLocked()
	if c.inner != nil {
		c.inner.Abort()
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

// Serve takes the session's handle and end; a nil handle is a refusal.
func (c *conn) Serve(handle func([]byte), end func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.handle, c.end = handle, end
	c.accepted = handle != nil && !c.closed
}

// goLive starts a live read from position (epoch, seq).
func (c *conn) goLive(mode liveMode, epoch string, seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mode, c.epoch, c.seq = mode, epoch, seq
	if mode == longPoll {
		c.done = make(chan struct{})
		if c.closed {
			c.signalLocked()
		}
	}
}

// finish runs the session's end once: the request is answered.
func (c *conn) finish() {
	c.mu.Lock()
	end := c.end
	run := !c.ended && end != nil
	c.ended = true
	c.closed = true
	if c.drain != nil {
		c.drain.Stop()
	}
	c.mu.Unlock()
	if run {
		end()
	}
}
