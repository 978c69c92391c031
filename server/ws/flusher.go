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
type flusher struct {
	mu    sync.Mutex
	dirty []*Conn
	wake  chan struct{}
	quit  chan struct{}
	done  chan struct{}

	// Owned by the flusher goroutine.
	rawWriter
	buf []byte
}

func newFlusher() *flusher {
	f := &flusher{wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	f.rawWriter.init()
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
			for i, c := range batch {
				c.flushFrom(f)
				batch[i] = nil
			}
		}
	}
}

func (f *flusher) close() {
	close(f.quit)
	<-f.done
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
