package ws

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// DefaultCloseGrace is how long a connection waits for the client's close
// frame after sending its own, before dropping the socket, when
// Options.CloseGrace is zero.
const DefaultCloseGrace = 2 * time.Second

// Conn is one client connection. Send and Close never block: frames are
// queued and written in the background, all frames queued at the time of a
// write in one syscall.
//
// A connection ends exactly once: when the client goes away or breaks the
// protocol, when the close handshake completes (or its grace period runs
// out), when a write fails or times out, or on Abort. Its end function
// (see Serve) then runs once, never while a message handler is running.
// A connection that ends after its close frame went out shuts its socket
// in order, so the client gets that frame (see lingerClose); on Abort or a
// failed write the socket is closed at once. Who writes, where the
// connection is in its life and whether end is due are three state
// machines, with their transitions, in state.go.
type Conn struct {
	t           *Transport
	nc          net.Conn
	subprotocol string
	// deflateBits is the window of the permessage-deflate agreement, 0
	// when the client did not agree compression.
	deflateBits uint8
	// stream marks a streamed HTTP response (Transport.Stream): frames
	// are chunks, closing ends the body, input is dropped.
	stream bool
	// discarded counts the input a stream's client sent (reader-owned).
	discarded int
	// raw is set for connections read by the poller and written by a
	// flusher (plain TCP on Linux).
	raw     syscall.RawConn
	flusher *flusher
	// tlsSock is set for a TLS connection the poller reads (raw is its
	// socket's): input is read through the TLS layer (readTLS) and output
	// written by a goroutine (no flusher), since records are encrypted.
	tlsSock *TLSSocket
	pollFD  int32  // guarded by the poller's mutex
	pollGen uint32 // guarded by the poller's mutex

	// fr, handle and clock are used by one reader at a time.
	fr     frameReader
	handle func([]byte)
	clock  readClock

	mu         sync.Mutex
	queue      [][]byte // text frames' payloads, in order
	pending    int      // bytes in queue
	pong       []byte   // payload of the pong to send, nil for none
	closeFrame []byte   // payload of the close frame to send after the queue
	prefix     []byte   // the handshake response, sent with the first frames
	backlog    []byte   // encoded bytes a non-blocking write could not send
	// The state machines (state.go).
	writer   writer
	phase    phase
	endState endState
	// scheduled: on the flusher's list, until the flusher takes it
	// (flushFrom); kick lists a connection once.
	scheduled bool
	// peerDone: the client sent its close frame or broke the protocol, so
	// the connection ends as soon as our close frame is out, without
	// waiting for an answer.
	peerDone  bool
	readers   int // readers consuming input; end waits for them
	onEnd     func()
	onSlow    func()
	slowFrame []byte // the last slowFrame given to Send
	watch     watchState
}

// Subprotocol is the negotiated subprotocol ("" when none).
func (c *Conn) Subprotocol() string { return c.subprotocol }

// OnSlow sets a function called once if the connection is cut as too
// slow: by Send, when its queue would exceed MaxPending, or by the writer,
// when a socket write does not complete within WriteTimeout (the client is
// not reading) while the connection was not closing for another reason.
func (c *Conn) OnSlow(f func()) {
	c.mu.Lock()
	c.onSlow = f
	c.mu.Unlock()
}

// Send queues a text frame. It reports false when the frame was dropped:
// the connection is closing, or this frame put it over its pending limit,
// in which case the client gets slowFrame (a too_slow disconnect) and a
// close, and the connection ends. The frame must not be modified after.
func (c *Conn) Send(frame []byte, slowFrame []byte) bool {
	c.mu.Lock()
	if slowFrame != nil {
		c.slowFrame = slowFrame
	}
	if c.phase != phaseOpen {
		c.mu.Unlock()
		return false
	}
	if max := c.t.opts.MaxPending; max > 0 && c.pending+len(frame) > max {
		// Drop the backlog: the client could not take it anyway.
		clear(c.queue)
		c.queue = append(c.queue[:0], slowFrame)
		c.pending = len(slowFrame)
		c.phase = phaseClosing
		c.closeFrame = closePayload(closeNormal, "")
		onSlow := c.onSlow
		c.kick()
		c.mu.Unlock()
		if onSlow != nil {
			onSlow()
		}
		return false
	}
	c.queue = append(c.queue, frame)
	c.pending += len(frame)
	c.kick()
	c.mu.Unlock()
	return true
}

// Close queues an optional last text frame and a close frame with code and
// reason; later sends are dropped. The connection ends once the client
// answers, or after a grace period.
func (c *Conn) Close(code int, reason string, last []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.phase != phaseOpen {
		return
	}
	c.phase = phaseClosing
	if last != nil {
		c.queue = append(c.queue, last)
	}
	c.closeFrame = closePayload(code, reason)
	// A stream has no close handshake: it ends once its last chunk is out.
	c.peerDone = c.peerDone || c.stream
	c.kick()
}

// Abort ends the connection at once, without a close frame.
func (c *Conn) Abort() { c.finish() }

// Serve starts reading: each text or binary message from the client goes
// to handle (nil ignores them), one at a time, and end runs once when the
// connection has ended. It returns at once.
func (c *Conn) Serve(handle func([]byte), end func()) {
	c.mu.Lock()
	c.handle = handle
	c.onEnd = end
	if c.phase == phaseEnded {
		run := c.endState == endUnset
		c.endState = endRun
		c.mu.Unlock()
		if run && end != nil {
			go end()
		}
		return
	}
	c.endState = endArmed
	c.watchFromServe()
	if c.tlsSock != nil {
		// Records the TLS layer read before (with the request) are not
		// the socket's to report: a first read looks, then arms.
		c.mu.Unlock()
		c.flushInline()
		c.tlsSock.nonblocking.Store(true)
		if err := c.t.poller.add(c, false); err != nil {
			c.finish()
			return
		}
		go c.readable()
		return
	}
	if c.raw != nil {
		c.mu.Unlock()
		c.flushInline()
		if err := c.t.poller.add(c, true); err != nil {
			c.finish()
		}
		return
	}
	if c.hasOutput() {
		c.kick() // at least the handshake response
	}
	c.mu.Unlock()
	go c.readLoop()
}

// kick makes sure queued output will be written; c.mu is held. Output
// queued while a writer runs, or is due (deferred, or the connection is
// listed), is left to it.
func (c *Conn) kick() {
	if c.phase == phaseEnded || c.writer != writerIdle || c.scheduled {
		return
	}
	if c.flusher != nil {
		c.scheduled = true
		c.flusher.add(c)
		return
	}
	c.writer = writerBlocking
	go c.writeLoop(false)
}

// encode appends everything queued, as frames, to dst; c.mu is held. It
// reports how many text frames and payload bytes it took, and whether the
// close frame was among them.
func (c *Conn) encode(dst []byte) (out []byte, frames, bytes int, closed bool) {
	if c.prefix != nil {
		dst = append(dst, c.prefix...)
		c.prefix = nil
	}
	if c.pong != nil {
		dst = appendFrame(dst, opPong, c.pong)
		c.pong = nil
	}
	if c.watch.ping {
		dst = appendFrame(dst, opPing, nil)
		c.watch.ping = false
	}
	minDeflate := c.t.opts.compressionMinSize()
	for i, f := range c.queue {
		switch {
		case c.stream:
			dst = appendChunk(dst, f)
		case c.deflateBits != 0 && len(f) >= minDeflate:
			dst = appendFrame(dst, opText|rsv1, c.t.deflate.compressed(f, c.deflateBits))
		default:
			dst = appendFrame(dst, opText, f)
		}
		bytes += len(f)
		c.queue[i] = nil
	}
	frames = len(c.queue)
	c.queue = c.queue[:0]
	c.pending = 0
	if c.closeFrame != nil && c.phase < phaseCloseSent {
		if c.stream {
			dst = append(dst, lastChunk...)
		} else {
			dst = appendFrame(dst, opClose, c.closeFrame)
		}
		c.closeFrame = nil
		c.advance(phaseCloseSent)
		closed = true
	}
	return dst, frames, bytes, closed
}

func (c *Conn) sent(frames, bytes int) {
	if frames > 0 && c.t.opts.OnSent != nil {
		c.t.opts.OnSent(frames, bytes)
	}
}

// hasOutput reports whether anything waits to be written; c.mu is held.
func (c *Conn) hasOutput() bool {
	return len(c.queue) > 0 || c.prefix != nil || c.pong != nil || c.watch.ping || (c.closeFrame != nil && c.phase < phaseCloseSent)
}

// flushFrom writes the queue on flusher f's goroutine.
func (c *Conn) flushFrom(f *flusher) {
	c.mu.Lock()
	c.scheduled = false
	c.mu.Unlock()
	f.buf = c.flushRaw(&f.rawWriter, f.buf)
}

// flushInline writes the queue on the calling goroutine: the one that
// upgraded the connection or is handling its input, which is running
// anyway, so a reply (welcome, confirmation) needs no hand-off.
func (c *Conn) flushInline() {
	c.mu.Lock()
	if c.writer == writerDeferred {
		c.writer = writerIdle
	}
	out := c.hasOutput()
	if c.tlsSock != nil {
		// Encrypted output cannot go through a non-blocking write: this
		// goroutine writes it, bounded by the write timeout.
		if !out || c.writer != writerIdle || c.phase == phaseEnded {
			c.mu.Unlock()
			return
		}
		c.writer = writerBlocking
		c.mu.Unlock()
		c.writeLoop(false)
		return
	}
	c.mu.Unlock()
	if !out {
		return
	}
	w := c.t.rawWriters.Get().(*rawWriter)
	w.scratch = c.flushRaw(w, w.scratch)
	c.t.rawWriters.Put(w)
}

// flushRaw writes the queue with non-blocking writes through w, encoding
// into scratch (returned for reuse), unless another goroutine is writing.
// What the socket does not take goes to a writer goroutine.
func (c *Conn) flushRaw(w *rawWriter, scratch []byte) []byte {
	buf, out, ok := c.beginFlush(scratch[:0])
	if !ok {
		return buf
	}
	n, err := w.write(c.raw, buf)
	w.frames += out.frames
	w.writes++
	c.endFlush(buf, n, err, out)
	return keepScratch(buf)
}

// flushOut is what beginFlush took from the queue, for endFlush.
type flushOut struct {
	frames, bytes int
	closed        bool
}

// beginFlush appends everything queued, encoded, to dst and makes the
// caller the connection's writer (writerFlushing), unless another
// goroutine is writing, the connection ended or nothing is queued (ok is
// false, dst returned as it was). The caller then writes the appended
// bytes without blocking and reports the result to endFlush.
func (c *Conn) beginFlush(dst []byte) (buf []byte, out flushOut, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.phase == phaseEnded || c.writer != writerIdle {
		return dst, out, false
	}
	from := len(dst)
	buf, out.frames, out.bytes, out.closed = c.encode(dst)
	if len(buf) == from {
		return buf, out, false
	}
	c.writer = writerFlushing
	return buf, out, true
}

// endFlush takes the result of a non-blocking write of buf (beginFlush's
// bytes): n bytes were written, err is nil when all were, errWouldBlock
// when the socket was full, another error when the connection is broken.
// A full socket's rest goes to a writer goroutine.
func (c *Conn) endFlush(buf []byte, n int, err error, out flushOut) {
	switch {
	case err == nil:
		c.sent(out.frames, out.bytes)
		c.mu.Lock()
		c.writer = writerIdle
		if c.hasOutput() {
			c.kick()
		}
		c.mu.Unlock()
		if out.closed {
			c.afterClose()
		}
	case err == errWouldBlock:
		c.sent(out.frames, out.bytes)
		c.mu.Lock()
		if c.phase == phaseEnded {
			c.writer = writerIdle
			c.mu.Unlock()
			break
		}
		c.backlog = append([]byte(nil), buf[n:]...)
		c.writer = writerBlocking
		c.mu.Unlock()
		go c.writeLoop(out.closed) // it owns writing until the queue is empty
	default:
		c.finish()
		c.mu.Lock()
		c.writer = writerIdle
		c.mu.Unlock()
	}
}

// keepScratch returns buf emptied for reuse, or nil when it grew large.
func keepScratch(buf []byte) []byte {
	if cap(buf) > 64<<10 {
		return nil
	}
	return buf[:0]
}

// writeLoop writes with blocking writes, bounded by the write timeout,
// until nothing is queued. closeInBacklog says the backlog ends with the
// close frame.
func (c *Conn) writeLoop(closeInBacklog bool) {
	bp := c.t.writeBufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 64<<10 {
			*bp = (*bp)[:0]
			c.t.writeBufs.Put(bp)
		}
	}()
	for {
		c.mu.Lock()
		if c.phase == phaseEnded {
			c.writer = writerIdle
			c.mu.Unlock()
			return
		}
		buf := append((*bp)[:0], c.backlog...)
		// Frames start here: the backlog is the end of an earlier write,
		// the prefix an HTTP response.
		framesFrom := len(c.backlog) + len(c.prefix)
		c.backlog = nil
		buf, frames, bytes, closed := c.encode(buf)
		closed = closed || closeInBacklog
		closeInBacklog = false
		if len(buf) == 0 {
			c.writer = writerIdle
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		*bp = buf
		d := c.t.opts.WriteTimeout
		if d > 0 {
			c.nc.SetWriteDeadline(time.Now().Add(d))
		}
		n, err := c.nc.Write(buf)
		if d > 0 && err == nil {
			// Later non-blocking writes must not inherit the deadline.
			c.nc.SetWriteDeadline(time.Time{})
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			*bp = c.cutSlow(buf, n, framesFrom)
			return
		}
		if err != nil {
			c.finish()
			c.mu.Lock()
			c.writer = writerIdle
			c.mu.Unlock()
			return
		}
		c.sent(frames, bytes)
		if closed {
			c.afterClose()
		}
	}
}

// cutSlow ends a connection whose write of buf timed out after n bytes
// (frames start at buf[framesFrom]): the client does not take its frames.
// A connection already closing (cut by Send, or closed for another reason)
// just ends. Otherwise it is cut as too slow, as by Send: OnSlow runs (the
// node counts and logs it), and the client gets one more WriteTimeout to
// take the rest of the frame in progress, then the too_slow frame (Send's
// last slowFrame) and a close frame; if it takes them the close handshake
// follows as usual, else the socket is closed at once (a client whose
// socket stays full never sees why). It returns buf for reuse.
func (c *Conn) cutSlow(buf []byte, n, framesFrom int) []byte {
	c.mu.Lock()
	slow := c.phase == phaseOpen
	c.advance(phaseClosing)
	clear(c.queue)
	c.queue, c.pending, c.pong, c.watch.ping = c.queue[:0], 0, nil, false
	onSlow, notice := c.onSlow, c.slowFrame
	c.mu.Unlock()
	if slow && onSlow != nil {
		onSlow()
	}
	var err error = os.ErrDeadlineExceeded
	if slow && notice != nil && !c.stream {
		out := buf[n:frameEnd(buf, framesFrom, n)]
		out = appendFrame(out, opText, notice)
		out = appendFrame(out, opClose, closePayload(closeNormal, ""))
		c.nc.SetWriteDeadline(time.Now().Add(c.t.opts.WriteTimeout))
		_, err = c.nc.Write(out)
		c.nc.SetWriteDeadline(time.Time{})
	}
	c.mu.Lock()
	c.writer = writerIdle
	if err == nil {
		c.advance(phaseCloseSent)
	}
	c.mu.Unlock()
	if err != nil {
		c.finish()
	} else {
		c.afterClose()
	}
	return buf
}

// frameEnd returns where the frame holding buf[n] ends, n itself when a
// frame starts there, given that whole frames follow from buf[from]
// (what comes before from, ends at from with a frame).
func frameEnd(buf []byte, from, n int) int {
	i := from
	for i < n && i+2 <= len(buf) {
		size, hdr := int(buf[i+1]&0x7f), 2
		switch size {
		case 126:
			size, hdr = int(binary.BigEndian.Uint16(buf[i+2:])), 4
		case 127:
			size, hdr = int(binary.BigEndian.Uint64(buf[i+2:])), 10
		}
		i += hdr + size
	}
	return min(i, len(buf))
}

// afterClose runs once our close frame is on the wire: end now if the
// client has closed too, else give it the close grace to answer.
func (c *Conn) afterClose() {
	c.mu.Lock()
	done := c.peerDone
	c.mu.Unlock()
	if done {
		c.finishAfterClose()
		return
	}
	time.AfterFunc(c.t.opts.closeGrace(), c.finishAfterClose)
}

// finish ends the connection at once: the socket is closed, queued output
// dropped, and the end function runs unless a reader is still running (the
// last reader runs it then).
func (c *Conn) finish() { c.end(false) }

// end is finish; with linger the socket is closed by lingerClose instead.
func (c *Conn) end(linger bool) {
	c.mu.Lock()
	if c.phase == phaseEnded {
		c.mu.Unlock()
		return
	}
	c.phase = phaseEnded
	if c.writer == writerDeferred {
		c.writer = writerIdle // Serve, if it comes, writes nothing
	}
	c.queue, c.pending, c.backlog, c.pong, c.closeFrame = nil, 0, nil, nil, nil
	c.watch.ping = false
	c.unwatch()
	run := c.claimEnd()
	end := c.onEnd
	c.mu.Unlock()
	if c.raw != nil {
		c.t.poller.remove(c)
	}
	if linger {
		c.lingerClose()
	} else {
		c.nc.Close()
	}
	if run && end != nil {
		// Off the caller's goroutine: it may be a flusher, and ending a
		// session can wait on the broker.
		go end()
	}
}
