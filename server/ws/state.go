package ws

// A connection's state under Conn.mu is three small machines: who writes
// its output (writer), where it is in its life (phase), and whether its
// end function is due (endState). Each moves only along the transitions
// listed with it, so the invariants the rest of the package relies on can
// be read here.

// writer says who writes a connection's output. One goroutine at a time
// writes, so frames leave in the order they were queued; while one does,
// the others only queue, and the writer takes everything queued when it
// next encodes.
type writer uint8

const (
	// writerIdle: nobody writes. kick hands output to the connection's
	// flusher (listing it, see Conn.scheduled; the flusher then calls
	// flushRaw) or, on the goroutine path, to a new writer goroutine.
	writerIdle writer = iota
	// writerDeferred: the goroutine that upgraded a poller connection
	// writes at Serve (flushInline), so the handshake response leaves
	// with the first frames; until then queued output waits.
	writerDeferred
	// writerFlushing: a goroutine (a flusher, or one handling the
	// connection's input) makes one non-blocking write (flushRaw), or a
	// flusher one send in an io_uring batch (flushChunk): beginFlush
	// takes the output, endFlush the result.
	writerFlushing
	// writerBlocking: a writer goroutine (writeLoop) owns the output
	// until nothing is queued, with blocking writes bounded by the write
	// timeout.
	writerBlocking
)

// The writer's transitions:
//
//	idle     -> deferred   Upgrade, poller path
//	deferred -> idle       flushInline (Serve), or end
//	idle     -> blocking   kick, goroutine path: go writeLoop
//	idle     -> flushing   beginFlush took output to write
//	flushing -> idle       endFlush: it was all written, failed and ended the connection, or
//	                       found it ended when the socket was full
//	flushing -> blocking   endFlush: the socket took part; go writeLoop with the rest
//	blocking -> idle       writeLoop: nothing left, the connection ended, or a write failed or timed out
//
// A writer that finds the connection ended goes back to idle itself, so
// writer is idle once every goroutine that wrote has returned.

// phase is where a connection is in its life. It only moves forward.
type phase uint8

const (
	// phaseOpen: frames are queued and written.
	phaseOpen phase = iota
	// phaseClosing: no more frames are queued. Either a close frame
	// (Conn.closeFrame) waits behind the queue, or a writer that cut the
	// connection as too slow writes its own (cutSlow); a connection
	// cut by Send has the too_slow frame as its queue.
	phaseClosing
	// phaseCloseSent: our close frame was taken by a writer (it is in a
	// write, or on the wire). The connection ends when the client has
	// closed too (Conn.peerDone), else the close grace after the write.
	phaseCloseSent
	// phaseEnded: the socket is closed, or shut for writing and drained
	// (lingerClose); output is dropped and nothing more is read. Readers
	// still running finish their input, without handling messages.
	phaseEnded
)

// The phase's transitions:
//
//	open       -> closing    Close; Send over MaxPending; the client's close frame or a
//	                         protocol error (closeEarly); the watcher (closeEarly); cutSlow
//	closing    -> closeSent  encode took the close frame; cutSlow wrote its own
//	any        -> ended      end: Abort, a failed read or write, the close handshake done
//	                         or its grace over (finishAfterClose)
//
// Nothing moves it back: advance ignores a phase already passed.

// advance moves the connection forward to p; c.mu is held.
func (c *Conn) advance(p phase) {
	if c.phase < p {
		c.phase = p
	}
}

// endState says whether the end function given to Serve is due. It runs
// exactly once, after Serve, once the connection has ended and no reader
// is running, so never while a message handler runs.
type endState uint8

const (
	// endUnset: Serve has not been called, there is nothing to run.
	endUnset endState = iota
	// endArmed: Serve has been called; whoever ends the connection, or
	// the last reader after it ended, runs the end function (claimEnd).
	endArmed
	// endRun: the end function has run or been started; it never runs
	// again.
	endRun
)

// The end state's transitions:
//
//	unset -> armed   Serve on a connection that has not ended
//	unset -> run     Serve on a connection that has ended: it runs end at once
//	armed -> run     claimEnd

// claimEnd reports whether the caller must run the end function now, and
// if so marks it run; c.mu is held. It is due once the connection has
// ended and the last reader is done: end calls it when no reader runs,
// else the last reader (doneReading) does.
func (c *Conn) claimEnd() bool {
	if c.endState != endArmed || c.phase != phaseEnded || c.readers != 0 {
		return false
	}
	c.endState = endRun
	return true
}
