package ws

// readState is what a read leaves the connection to do next.
type readState int

const (
	readMore    readState = iota // keep reading
	readStopped                  // stop reading; the writer ends the connection after the close frame
	readFailed                   // end the connection now
	readDone                     // the close handshake is complete: end the connection (finishAfterClose)
)

// startReading counts a reader in before it consumes input, unless the
// connection has ended: the end function waits for the readers counted.
func (c *Conn) startReading() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.phase == phaseEnded {
		return false
	}
	c.readers++
	return true
}

// doneReading is a reader's last step: it runs the end function if the
// connection ended while it was running.
func (c *Conn) doneReading() {
	c.mu.Lock()
	c.readers--
	run := c.claimEnd()
	end := c.onEnd
	c.mu.Unlock()
	if run && end != nil {
		end()
	}
}

// readLoop reads with blocking reads on a goroutine of its own, for
// connections the poller does not serve. It counts as a reader only while
// it consumes input, so a connection that ends while the loop waits for
// input (or shares it with lingerClose) does not wait for it to end.
func (c *Conn) readLoop() {
	buf := make([]byte, 1024)
	for {
		n, err := c.nc.Read(buf)
		if n > 0 {
			if !c.startReading() {
				return
			}
			state := c.consume(buf[:n])
			c.doneReading()
			switch state {
			case readStopped:
				return
			case readFailed:
				c.finish()
				return
			case readDone:
				c.finishAfterClose()
				return
			}
		}
		if err != nil {
			c.finish()
			return
		}
	}
}

// consume parses input and acts on it: messages go to the handler, pings
// get pongs, a close frame is answered.
func (c *Conn) consume(data []byte) readState {
	if c.stream {
		return c.discard(len(data))
	}
	state := readMore
	frames, starts := c.fr.frames, c.fr.starts
	cerr := c.fr.feed(data, func(op byte, payload []byte) bool {
		switch op {
		case opText, opBinary:
			c.heard()
			if c.handle != nil && !c.isClosing() {
				c.handle(payload)
			}
		case opPing:
			c.queuePong(payload)
		case opClose:
			code, perr := parseClose(payload)
			if perr != nil {
				state = c.failRead(perr)
			} else {
				state = c.peerClose(code)
			}
			return false
		}
		return true
	})
	if cerr != nil {
		return c.failRead(cerr)
	}
	if state == readMore {
		c.track(frames, starts)
	}
	return state
}

func (c *Conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.phase != phaseOpen
}

func (c *Conn) queuePong(payload []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.phase != phaseOpen {
		return
	}
	// Never nil, even for an empty ping: nil means no pong is due.
	c.pong = append([]byte{}, payload...)
	c.kick()
}

// peerClose answers the client's close frame with the same code (as
// gorilla/websocket does) and ends the connection once that is out; if our
// close went first, the handshake is complete.
func (c *Conn) peerClose(code int) readState {
	return c.closeFromRead(code, "", true)
}

// failRead closes with the read side's error code, without waiting for
// the client to answer.
func (c *Conn) failRead(e *closeError) readState {
	return c.closeFromRead(e.code, e.reason, false)
}

// closeFromRead queues a close frame (unless one is queued already) after
// which the connection ends without waiting for the client; dropQueued
// discards frames not yet written. If our close frame is already out, the
// connection ends now.
func (c *Conn) closeFromRead(code int, reason string, dropQueued bool) readState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeEarly(code, reason, dropQueued)
}

// closeEarly is closeFromRead with c.mu held.
func (c *Conn) closeEarly(code int, reason string, dropQueued bool) readState {
	c.peerDone = true
	if c.phase >= phaseCloseSent {
		return readDone
	}
	if c.phase == phaseOpen {
		if dropQueued {
			clear(c.queue)
			c.queue, c.pending = c.queue[:0], 0
		}
		c.phase = phaseClosing
		c.closeFrame = closePayload(code, reason)
	}
	c.kick()
	return readStopped
}

// readable handles one readiness event from the poller, on a goroutine of
// its own: it reads what is there, then asks for the next event.
func (c *Conn) readable() {
	c.mu.Lock()
	if c.phase == phaseEnded {
		c.mu.Unlock()
		return
	}
	c.readers++
	c.mu.Unlock()
	defer c.doneReading()

	bp := c.t.readBufs.Get().(*[]byte)
	state := c.readAvailable(*bp)
	c.t.readBufs.Put(bp)
	c.flushInline()
	switch state {
	case readMore:
		// Re-armed under c.mu so the next reader (on another goroutine)
		// is ordered after this one's use of the frame reader.
		c.mu.Lock()
		err := error(nil)
		if c.phase != phaseEnded {
			err = c.t.poller.rearm(c)
		}
		c.mu.Unlock()
		if err != nil {
			c.finish()
		}
	case readFailed:
		c.finish()
	case readDone:
		c.finishAfterClose()
	}
}

// readAvailable reads and consumes until the socket has nothing more.
func (c *Conn) readAvailable(buf []byte) readState {
	if c.tlsSock != nil {
		return c.readTLS(buf)
	}
	for {
		var n int
		var rerr error
		err := c.raw.Read(func(fd uintptr) bool {
			n, rerr = readFD(fd, buf)
			return true
		})
		switch {
		case err != nil:
			return readFailed
		case rerr == errWouldBlock:
			return readMore
		case rerr != nil || n <= 0:
			return readFailed
		}
		if state := c.consume(buf[:n]); state != readMore {
			return state
		}
		if n < len(buf) {
			// Drained; if more arrived meanwhile, the re-armed poller says so.
			return readMore
		}
	}
}
