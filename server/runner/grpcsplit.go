package runner

import (
	"errors"
	"net"
	"sync"
	"time"
)

// h2Preface opens every HTTP/2 connection with prior knowledge, which is
// how gRPC clients speak cleartext HTTP/2.
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// prefaceKind is what a connection's first bytes say it is.
type prefaceKind int

const (
	prefaceUnknown prefaceKind = iota // too few bytes yet
	prefaceHTTP2
	prefaceOther
)

func classify(first []byte) prefaceKind {
	n := min(len(first), len(h2Preface))
	switch {
	case string(first[:n]) != h2Preface[:n]:
		return prefaceOther
	case n == len(h2Preface):
		return prefaceHTTP2
	}
	return prefaceUnknown
}

// splitListener serves gRPC and HTTP/1.1 on one port with each protocol's
// own server: connections that open with the HTTP/2 preface go to the gRPC
// server's native transport, all others to net/http. gRPC through
// net/http's HTTP/2 server (grpc.Server.ServeHTTP) costs about twice as
// much per call, which made gRPC on the shared port slower than REST.
//
// The first bytes are peeked (MSG_PEEK), not read, so each server gets its
// connection untouched, as a *net.TCPConn. Where peeking is not supported
// every connection goes to net/http, which still serves gRPC through
// ServeHTTP.
type splitListener struct {
	inner net.Listener
	http  *chanListener
	grpc  *chanListener
	// routeTimeout bounds the wait for a connection's first bytes.
	routeTimeout time.Duration
}

// newSplitListener starts routing inner's connections and returns the
// listeners the two servers accept from. Closing either closes inner.
func newSplitListener(inner net.Listener, routeTimeout time.Duration) (httpLn, grpcLn net.Listener) {
	s := &splitListener{inner: inner, routeTimeout: routeTimeout}
	s.http = newChanListener(inner)
	s.grpc = newChanListener(inner)
	go s.run()
	return s.http, s.grpc
}

func (s *splitListener) run() {
	delay := time.Duration(0)
	for {
		c, err := s.inner.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Out of descriptors and the like: back off as net/http does.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			// The listener is closed: net/http is told; the gRPC server
			// stops accepting when it is stopped itself.
			s.http.fail(err)
			return
		}
		delay = 0
		switch peekPreface(c, false) {
		case prefaceHTTP2:
			s.grpc.push(c)
		case prefaceOther:
			s.http.push(c)
		default:
			go s.route(c)
		}
	}
}

// route waits for a connection's first bytes and hands it on.
func (s *splitListener) route(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(s.routeTimeout))
	kind := peekPreface(c, true)
	c.SetReadDeadline(time.Time{})
	switch kind {
	case prefaceHTTP2:
		s.grpc.push(c)
	case prefaceOther:
		s.http.push(c)
	default:
		c.Close()
	}
}

// chanListener is a listener fed by splitListener.
type chanListener struct {
	inner  net.Listener
	conns  chan net.Conn
	once   sync.Once
	closed chan struct{}
	mu     sync.Mutex
	err    error
}

func newChanListener(inner net.Listener) *chanListener {
	return &chanListener{inner: inner, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *chanListener) push(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.closed:
		c.Close()
	}
}

// fail makes Accept return err from now on.
func (l *chanListener) fail(err error) {
	l.mu.Lock()
	l.err = err
	l.mu.Unlock()
	l.once.Do(func() { close(l.closed) })
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		l.mu.Lock()
		defer l.mu.Unlock()
		return nil, l.err
	}
}

func (l *chanListener) Close() error {
	l.fail(net.ErrClosed)
	return l.inner.Close()
}

func (l *chanListener) Addr() net.Addr { return l.inner.Addr() }
