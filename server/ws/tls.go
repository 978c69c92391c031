package ws

import (
	"crypto/tls"
	"io"
	"net"
	"sync/atomic"
	"syscall"
)

// TLSSocket is the TCP connection under a server's *tls.Conn, made with
// NewTLSSocket, that lets the transport read TLS connections through its
// poller: once a connection is served, its TLS layer reads the socket
// without blocking, so a readiness event is handled by reading records
// until the socket has nothing more, and an idle wss:// connection holds no
// goroutine, as an idle ws:// one. Writes stay blocking (bounded by the
// write timeout): a TLS connection's output is written by a goroutine
// that exists while the connection has output.
type TLSSocket struct {
	*net.TCPConn
	raw syscall.RawConn
	// nonblocking is set while the poller serves the connection.
	nonblocking atomic.Bool
}

// NewTLSSocket wraps a TCP connection accepted for TLS (pass the result
// to tls.Server); other connections are returned as they are.
func NewTLSSocket(nc net.Conn) net.Conn {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nc
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nc
	}
	return &TLSSocket{TCPConn: tc, raw: raw}
}

// Read is the TCP connection's, except while the poller serves the
// connection: then it does not wait, and reports errWouldBlockTLS when
// the socket has nothing, which the TLS layer passes on without failing
// the connection (it is a temporary net.Error), keeping any partial record.
func (s *TLSSocket) Read(p []byte) (int, error) {
	if !s.nonblocking.Load() {
		return s.TCPConn.Read(p)
	}
	var n int
	var rerr error
	if err := s.raw.Read(func(fd uintptr) bool {
		n, rerr = readFD(fd, p)
		return true
	}); err != nil {
		return 0, err
	}
	switch {
	case rerr == errWouldBlock:
		return 0, errWouldBlockTLS
	case rerr != nil:
		return 0, rerr
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// wouldBlockError is a read that found nothing, as a temporary net.Error.
type wouldBlockError struct{}

func (wouldBlockError) Error() string   { return "would block" }
func (wouldBlockError) Timeout() bool   { return true }
func (wouldBlockError) Temporary() bool { return true }

var errWouldBlockTLS net.Error = wouldBlockError{}

// tlsSocket returns the TLSSocket under nc, a server *tls.Conn made on
// one, or nil.
func tlsSocket(nc net.Conn) *TLSSocket {
	tc, ok := nc.(*tls.Conn)
	if !ok {
		return nil
	}
	s, _ := tc.NetConn().(*TLSSocket)
	return s
}

// readTLS reads what the TLS layer can give without waiting, into buf,
// and consumes it, until the socket is drained and no decrypted input is
// left: the poller reports the socket, not what the TLS layer holds.
func (c *Conn) readTLS(buf []byte) readState {
	for {
		n, err := c.nc.Read(buf)
		if n > 0 {
			if state := c.consume(buf[:n]); state != readMore {
				return state
			}
		}
		switch {
		case err == errWouldBlockTLS:
			return readMore
		case err != nil:
			return readFailed
		}
	}
}
