package ws

import (
	"errors"
	"sync"
	"syscall"
)

// errWouldBlock reports that a socket could not take (all of) a write, or
// had nothing to read, without blocking.
var errWouldBlock = errors.New("would block")

// flusher writes connections' queued frames from one goroutine, with
// non-blocking writes. Connections are listed when they get output; by the
// time the flusher reaches one, everything queued since (more publications
// under load) goes out in the same write, so the busier the server, the
// fewer syscalls per frame.
//
// With a ring (Options.IOURing), while nothing coalesces (the last batch's
// writes carried about one frame each: publications reach idle
// connections one at a time) a batch's writes are submitted through
// io_uring, up to ringEntries connections per system call, which costs
// the server about a third less CPU per delivery. Once writes carry
// several frames it writes with write(2) again: cheaper visits come round
// sooner with fewer frames each, which measured costlier per delivery,
// for the server and the client, than the system calls they saved (see
// BENCHMARKS.md).
type flusher struct {
	mu    sync.Mutex
	dirty []*Conn
	wake  chan struct{}
	quit  chan struct{}
	done  chan struct{}

	// Owned by the flusher goroutine.
	rawWriter
	buf []byte
	// ring is nil without io_uring; ringBatch is its reused batch.
	ring *ringSender
	ringBatch
	// coalescing: the last batch's writes carried more than about one
	// frame each, so the next goes through write(2).
	coalescing bool
}

// newFlusher returns a flusher; with ring it submits through io_uring
// where the kernel allows it, else it writes with write(2).
func newFlusher(ring bool) *flusher {
	f := &flusher{wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	f.rawWriter.init()
	if ring {
		if r, err := newRingSender(); err == nil {
			f.ring = r
		}
	}
	return f
}

// add lists c for writing; c.mu is held.
func (f *flusher) add(c *Conn) {
	f.mu.Lock()
	f.dirty = append(f.dirty, c)
	first := len(f.dirty) == 1
	f.mu.Unlock()
	if first {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

func (f *flusher) run() {
	defer close(f.done)
	var batch []*Conn
	for {
		select {
		case <-f.wake:
		case <-f.quit:
			return
		}
		for {
			f.mu.Lock()
			batch, f.dirty = f.dirty, batch[:0]
			f.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			f.frames, f.writes = 0, 0
			if f.ring != nil && !f.coalescing {
				f.flushRing(batch)
			} else {
				for _, c := range batch {
					c.flushFrom(f)
				}
			}
			f.coalescing = f.frames > f.writes+f.writes/4
			clear(batch)
		}
	}
}

func (f *flusher) close() {
	close(f.quit)
	<-f.done
	if f.ring != nil {
		f.ring.close()
	}
}

// rawWriter does non-blocking writes through a connection's descriptor with
// one closure, made once, so writes do not allocate. One goroutine uses it
// at a time.
type rawWriter struct {
	wbuf    []byte
	wn      int
	werr    error
	writeFn func(fd uintptr) bool
	// scratch is an encoding buffer for users that have none of their own.
	scratch []byte
	// frames and writes count text frames and writes made through it
	// (flushRaw, and the flusher's ring), for the flusher to tell whether
	// its writes coalesce; the flusher resets them.
	frames, writes int
}

func (w *rawWriter) init() {
	w.writeFn = func(fd uintptr) bool {
		w.wn, w.werr = writeFD(fd, w.wbuf)
		return true
	}
}

// write sends buf without blocking. It returns how much was written and
// nil, errWouldBlock when the socket took only part, or another error when
// the connection is broken.
func (w *rawWriter) write(raw syscall.RawConn, buf []byte) (int, error) {
	written := 0
	defer func() { w.wbuf = nil }()
	for written < len(buf) {
		w.wbuf = buf[written:]
		if err := raw.Write(w.writeFn); err != nil {
			return written, err
		}
		if w.werr == errWouldBlock {
			return written, errWouldBlock
		}
		if w.werr != nil {
			return written, w.werr
		}
		written += w.wn
	}
	return written, nil
}
