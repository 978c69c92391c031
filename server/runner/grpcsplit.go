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
	// prefaceGET opens an HTTP/1 GET request, which may be a WebSocket
	// upgrade.
	prefaceGET
	prefaceOther
)

func classify(first []byte) prefaceKind {
	const get = "GET "
	if n := min(len(first), len(get)); string(first[:n]) == get[:n] {
		if n == len(get) {
			return prefaceGET
		}
		return prefaceUnknown
	}
	n := min(len(first), len(h2Preface))
	switch {
	case string(first[:n]) != h2Preface[:n]:
		return prefaceOther
	case n == len(h2Preface):
		return prefaceHTTP2
	}
	return prefaceUnknown
}

// splitListener is the front of a listener that serves gRPC or WebSocket
// beside net/http. Connections that open with the HTTP/2 preface go to the
// gRPC server's native transport; WebSocket upgrades are answered on the
// raw connection (wsFront); all others go to net/http. gRPC through
// net/http's HTTP/2 server (grpc.Server.ServeHTTP) costs about twice as
// much per call, which made gRPC on the shared port slower than REST.
//
// The first bytes are peeked (MSG_PEEK), not read, so each server gets its
// connection untouched, as a *net.TCPConn; only GET requests, when
// WebSocket is served, are read by the front and replayed to net/http if
// they are not upgrades it answers. Where peeking is not supported every
// connection goes to net/http, which still serves gRPC through ServeHTTP
// and WebSocket through the handler.
type splitListener struct {
	inner net.Listener
	http  *chanListener
	grpc  *chanListener // nil: the listener serves no gRPC
	ws    *wsFront      // nil: upgrades go to net/http
	// routeTimeout bounds the wait for a connection's first bytes, and for
	// a GET's whole head.
	routeTimeout time.Duration
}

// newSplitListener starts routing inner's connections and returns the
// listeners net/http and (withGRPC) the gRPC server accept from; grpcLn is
// nil without gRPC. ws, if not nil, answers WebSocket upgrades. Closing
// either listener closes inner.
func newSplitListener(inner net.Listener, routeTimeout time.Duration, withGRPC bool, ws *wsFront) (httpLn, grpcLn net.Listener) {
	s := &splitListener{inner: inner, routeTimeout: routeTimeout, ws: ws}
	s.http = newChanListener(inner)
	if withGRPC {
		s.grpc = newChanListener(inner)
		grpcLn = s.grpc
	}
	go s.run()
	return s.http, grpcLn
}

func (s *splitListener) run() {
	// When the listener is closed net/http is told; the gRPC server stops
	// accepting when it is stopped itself.
	acceptEach(s.inner, s.http.fail, func(c net.Conn) {
		switch kind := peekPreface(c, false); kind {
		case prefaceUnknown:
			go s.route(c)
		case prefaceGET:
			if s.ws != nil {
				go s.ws.serve(c, s.http, s.routeTimeout)
				return
			}
			s.http.push(c)
		default:
			s.hand(c, kind)
		}
	})
}

// acceptEach accepts ln's connections and hands each to handle, on the
// calling goroutine, until ln fails for good (it is closed), which it
// reports to closed. Temporary failures (out of descriptors and the like)
// are retried after a growing pause, as net/http does.
func acceptEach(ln net.Listener, closed func(error), handle func(net.Conn)) {
	delay := time.Duration(0)
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			closed(err)
			return
		}
		delay = 0
		handle(c)
	}
}

// route waits for a connection's first bytes and hands it on.
func (s *splitListener) route(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(s.routeTimeout))
	kind := peekPreface(c, true)
	c.SetReadDeadline(time.Time{})
	switch {
	case kind == prefaceUnknown:
		c.Close()
	case kind == prefaceGET && s.ws != nil:
		s.ws.serve(c, s.http, s.routeTimeout)
	default:
		s.hand(c, kind)
	}
}

// hand gives c to the server its first bytes call for.
func (s *splitListener) hand(c net.Conn, kind prefaceKind) {
	if kind == prefaceHTTP2 && s.grpc != nil {
		s.grpc.push(c)
		return
	}
	s.http.push(c)
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
