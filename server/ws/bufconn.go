package ws

import (
	"net"
	"sync"
	"time"
)

// batchConn sits between gorilla/websocket and the hijacked connection so
// that several frames leave in one write: while the connection's writer is
// draining its queue, everything gorilla writes is collected, then sent with
// a single syscall. Outside a batch (the handshake, control frames answered
// from the read loop) writes go straight through.
//
// Deadlines are owned here: gorilla's own SetWriteDeadline calls would apply
// to buffered writes that reach the socket later, so they are ignored and
// every real write gets writeTimeout.
type batchConn struct {
	net.Conn
	writeTimeout time.Duration
	pool         *sync.Pool

	mu       sync.Mutex
	batching bool
	buf      *[]byte
}

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.batching {
		*b.buf = append(*b.buf, p...)
		return len(p), nil
	}
	b.Conn.SetWriteDeadline(time.Now().Add(b.writeTimeout))
	return b.Conn.Write(p)
}

// SetWriteDeadline is a no-op; see the type's comment.
func (b *batchConn) SetWriteDeadline(time.Time) error { return nil }

// begin starts collecting writes. The buffer comes from a pool, so idle
// connections hold none.
func (b *batchConn) begin() {
	b.mu.Lock()
	b.batching = true
	if b.buf == nil {
		b.buf = b.pool.Get().(*[]byte)
	}
	b.mu.Unlock()
}

// flush sends what was collected in one write and ends the batch.
func (b *batchConn) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batching = false
	if b.buf == nil {
		return nil
	}
	var err error
	if len(*b.buf) > 0 {
		b.Conn.SetWriteDeadline(time.Now().Add(b.writeTimeout))
		_, err = b.Conn.Write(*b.buf)
	}
	buf := b.buf
	b.buf = nil
	if cap(*buf) <= 64<<10 {
		*buf = (*buf)[:0]
		b.pool.Put(buf)
	}
	return err
}
