package ws

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// testTimeout bounds every wait in these tests.
const testTimeout = 5 * time.Second

// path is how a test server serves its connections.
type path struct {
	// poll: the poller path (epoll reads, flusher writes; Linux only),
	// else the goroutine path (Transport.noPoller).
	poll bool
	// uring: on the poller path, flushers send through io_uring
	// (Options.IOURing).
	uring bool
}

// bothPaths runs f against the poller path, the poller path with io_uring
// sends (Linux, where io_uring can be set up) and the goroutine path.
func bothPaths(t *testing.T, f func(t *testing.T, p path)) {
	for _, p := range []path{{poll: true}, {poll: true, uring: true}, {}} {
		name := "poller"
		switch {
		case p.uring:
			name = "poller+io_uring"
		case !p.poll:
			name = "goroutines"
		}
		t.Run(name, func(t *testing.T) {
			if p.uring {
				skipWithoutRing(t)
			}
			f(t, p)
		})
	}
}

// skipWithoutRing skips a test of the io_uring path where io_uring cannot
// be set up (not Linux, an old kernel, io_uring disabled).
func skipWithoutRing(t *testing.T) {
	t.Helper()
	r, err := newRingSender()
	if err != nil {
		t.Skipf("io_uring unavailable: %v", err)
	}
	r.close()
}

// eventually polls cond until it holds, failing the test after d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// serverConfig sets up a test server.
type serverConfig struct {
	opts Options
	// handle, if set, handles client messages instead of recording them in
	// serverConn.msgs.
	handle func(sc *serverConn, msg []byte)
	// beforeServe, if set, runs between Upgrade and Serve.
	beforeServe func(sc *serverConn)
	// tls, if set, serves TLS with it (wss:// URLs).
	tls *tls.Config
}

// testServer is an httptest server whose handler upgrades and serves
// connections, recording each.
type testServer struct {
	cfg   serverConfig
	path  path
	tr    *Transport
	hs    *httptest.Server
	url   string
	conns chan *serverConn

	mu  sync.Mutex
	all []*serverConn

	baseline int
	shutOnce sync.Once
}

// serverConn is a server-side connection and what happened to it.
type serverConn struct {
	*Conn
	msgs  chan []byte   // messages handled, unless serverConfig.handle is set
	ended chan struct{} // closed when end runs

	ends             atomic.Int32 // end calls
	handling         atomic.Int32 // handle calls running
	endWhileHandling atomic.Bool  // end ran while handle was running
	handleOverlap    atomic.Bool  // two handle calls ran at once
}

// newTestServer starts a server on the poller or the goroutine path. At
// cleanup (after the test's clients are closed) it checks every connection
// ended exactly once and never during a handler, that Transport.Close
// returns, and that the goroutine count is back to what it was before.
func newTestServer(t *testing.T, p path, cfg serverConfig) *testServer {
	t.Helper()
	cfg.opts.IOURing = p.uring
	s := &testServer{
		cfg:      cfg,
		path:     p,
		tr:       NewTransport(cfg.opts),
		conns:    make(chan *serverConn, 64),
		baseline: runtime.NumGoroutine(),
	}
	s.tr.noPoller = !p.poll
	if cfg.tls != nil {
		// Connections made on TLSSocket, as the server's TLS front makes
		// them, so the poller can read them.
		s.hs = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
		s.hs.Listener = &tlsSocketListener{Listener: s.hs.Listener, config: cfg.tls}
		s.hs.Start()
		s.url = "wss" + strings.TrimPrefix(s.hs.URL, "http")
	} else {
		s.hs = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
		s.url = "ws" + strings.TrimPrefix(s.hs.URL, "http")
	}
	t.Cleanup(func() { s.shutdown(t) })
	return s
}

func (s *testServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := s.tr.Upgrade(w, r)
	if err != nil {
		return
	}
	sc := &serverConn{Conn: c, msgs: make(chan []byte, 1<<14), ended: make(chan struct{})}
	s.mu.Lock()
	s.all = append(s.all, sc)
	s.mu.Unlock()
	if s.cfg.beforeServe != nil {
		s.cfg.beforeServe(sc)
	}
	s.conns <- sc
	c.Serve(func(m []byte) {
		if sc.handling.Add(1) != 1 {
			sc.handleOverlap.Store(true)
		}
		defer sc.handling.Add(-1)
		if s.cfg.handle != nil {
			s.cfg.handle(sc, m)
		} else {
			sc.msgs <- m
		}
	}, func() {
		if sc.handling.Load() != 0 {
			sc.endWhileHandling.Store(true)
		}
		if sc.ends.Add(1) == 1 {
			close(sc.ended)
		}
	})
}

// accept returns the server side of the connection just dialed, checking
// it is on the path under test.
func (s *testServer) accept(t *testing.T) *serverConn {
	t.Helper()
	select {
	case sc := <-s.conns:
		if onPoller := sc.raw != nil; onPoller != (s.path.poll && runtime.GOOS == "linux") {
			t.Fatalf("connection on the poller: %v, want %v", onPoller, s.path.poll)
		}
		if onRing := sc.flusher != nil && sc.flusher.ring != nil; onRing != (s.path.uring && !s.tr.noRing) {
			t.Fatalf("connection's flusher sends through io_uring: %v, want %v", onRing, s.path.uring)
		}
		return sc
	case <-time.After(testTimeout):
		t.Fatal("no connection reached the handler")
		return nil
	}
}

// shutdown waits for every connection to end, closes the server and the
// transport and checks for leaked goroutines. It runs once, at cleanup if
// not before.
func (s *testServer) shutdown(t *testing.T) {
	t.Helper()
	s.shutOnce.Do(func() {
		s.mu.Lock()
		all := s.all
		s.mu.Unlock()
		for i, sc := range all {
			select {
			case <-sc.ended:
			case <-time.After(testTimeout):
				t.Errorf("connection %d never ended", i)
			}
		}
		s.hs.Close()
		closed := make(chan struct{})
		go func() { s.tr.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(testTimeout):
			t.Fatal("Transport.Close did not return")
		}
		for i, sc := range all {
			if n := sc.ends.Load(); n != 1 {
				t.Errorf("connection %d: end ran %d times", i, n)
			}
			if sc.endWhileHandling.Load() {
				t.Errorf("connection %d: end ran while handle was running", i)
			}
			if sc.handleOverlap.Load() {
				t.Errorf("connection %d: handle calls overlapped", i)
			}
		}
		// A writer still returning from its last write (Transport.Close
		// ended the connection under it) puts the writer state back
		// itself, as the goroutine count comes back to its baseline; the
		// count alone cannot tell that goroutine from others exiting, so
		// wait for each connection to come to rest.
		checkGoroutines(t, s.baseline)
		for i, sc := range all {
			deadline := time.Now().Add(testTimeout)
			for {
				w, p, e, r := sc.state()
				if w == writerIdle && p == phaseEnded && e == endRun && r == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("connection %d at rest: writer %d, phase %d, end %d, %d readers; want idle, ended, run, none", i, w, p, e, r)
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
	})
}

// state returns the connection's state machines and reader count.
func (sc *serverConn) state() (writer, phase, endState, int) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.writer, sc.phase, sc.endState, sc.readers
}

// checkGoroutines waits for the goroutine count to fall to baseline.
func checkGoroutines(t *testing.T, baseline int) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines, %d before the test:\n%s", runtime.NumGoroutine(), baseline, buf)
		}
		time.Sleep(time.Millisecond)
	}
}

// dial connects a gorilla/websocket client (d may be nil), closed at
// cleanup, and returns it with the server's side of the connection.
func (s *testServer) dial(t *testing.T, d *websocket.Dialer, h http.Header) (*websocket.Conn, *serverConn) {
	t.Helper()
	if d == nil {
		d = &websocket.Dialer{}
	}
	d.HandshakeTimeout = testTimeout
	c, _, err := d.Dial(s.url, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(testTimeout))
	return c, s.accept(t)
}

// rawClient is a WebSocket client over a bare TCP connection, for writing
// hand-crafted frames and reading exactly what the server writes.
type rawClient struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

// dialRaw connects a raw client and performs the handshake by hand; the
// client is closed at cleanup.
func (s *testServer) dialRaw(t *testing.T) (*rawClient, *serverConn) {
	t.Helper()
	rc, sc := s.openRaw(t)
	rc.handshake()
	return rc, sc
}

// openRaw connects a raw client and sends the upgrade request, without
// reading the response.
func (s *testServer) openRaw(t *testing.T) (*rawClient, *serverConn) {
	t.Helper()
	addr := s.hs.Listener.Addr().String()
	nc, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetWriteDeadline(time.Now().Add(testTimeout))
	_, err = fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", addr)
	if err != nil {
		t.Fatal(err)
	}
	return &rawClient{t: t, nc: nc, br: bufio.NewReader(nc)}, s.accept(t)
}

// handshake reads the upgrade response.
func (c *rawClient) handshake() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(testTimeout))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.t.Fatalf("reading the upgrade response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		c.t.Fatalf("handshake: %s", resp.Status)
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		c.t.Fatalf("Sec-WebSocket-Accept %q", got)
	}
}

func (c *rawClient) write(frames ...[]byte) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(testTimeout))
	if _, err := c.nc.Write(cat(frames...)); err != nil {
		c.t.Fatal(err)
	}
}

// read reads the next server frame, failing the test on any error.
func (c *rawClient) read() serverFrame {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(testTimeout))
	f, err := readServerFrame(c.br)
	if err != nil {
		c.t.Fatalf("reading a frame: %v", err)
	}
	if !f.fin || f.rsv != 0 {
		c.t.Fatalf("frame %v: not final or with RSV bits", f)
	}
	return f
}

// expectText reads a text frame with payload want.
func (c *rawClient) expectText(want string) {
	c.t.Helper()
	if f := c.read(); f.op != opText || string(f.payload) != want {
		c.t.Fatalf("got %v, want text %q", f, want)
	}
}

// expectClose reads a close frame with code and reason.
func (c *rawClient) expectClose(code int, reason string) {
	c.t.Helper()
	f := c.read()
	if f.op != opClose {
		c.t.Fatalf("got %v, want a close frame", f)
	}
	if gotCode, gotReason := f.closeCode(); gotCode != code || gotReason != reason {
		c.t.Fatalf("close %d %q, want %d %q", gotCode, gotReason, code, reason)
	}
}

// expectEOF asserts the server closes the socket within d without sending
// anything more, and returns how long that took.
func (c *rawClient) expectEOF(d time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	c.nc.SetReadDeadline(start.Add(d))
	var b [512]byte
	n, err := c.br.Read(b[:])
	if n > 0 {
		c.t.Fatalf("got %q, want the socket closed", b[:n])
	}
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatalf("socket still open after %v", d)
	}
	return time.Since(start)
}

// expectSocketClosed asserts a gorilla client's socket is closed by the
// server (after the close handshake, without more data).
func expectSocketClosed(t *testing.T, c *websocket.Conn) {
	t.Helper()
	nc := c.NetConn()
	nc.SetReadDeadline(time.Now().Add(testTimeout))
	var b [512]byte
	n, err := nc.Read(b[:])
	if n > 0 {
		t.Fatalf("got %q, want the socket closed", b[:n])
	}
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("socket still open")
	}
}

// expectCloseError asserts err is a close frame from the server with code
// and reason.
func expectCloseError(t *testing.T, err error, code int, reason string) {
	t.Helper()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != code || ce.Text != reason {
		t.Fatalf("got %v, want close %d %q", err, code, reason)
	}
}

func waitEnded(t *testing.T, sc *serverConn) {
	t.Helper()
	select {
	case <-sc.ended:
	case <-time.After(testTimeout):
		t.Fatal("end did not run")
	}
}

func nextMsg(t *testing.T, sc *serverConn) []byte {
	t.Helper()
	select {
	case m := <-sc.msgs:
		return m
	case <-time.After(testTimeout):
		t.Fatal("no message reached handle")
		return nil
	}
}

// TestUpgradeSubprotocol asserts the client's first offered protocol the
// server speaks is chosen, on both sides, and Options.Header is sent.
func TestUpgradeSubprotocol(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{opts: Options{Header: http.Header{"X-Test": {"yes"}}}})
		for _, tt := range []struct {
			offered []string
			want    string
		}{
			{[]string{"chat", ProtocolExtended, ProtocolActionCable}, ProtocolExtended},
			{[]string{ProtocolActionCable, ProtocolExtended}, ProtocolActionCable},
			{[]string{"chat"}, ""},
			{nil, ""},
		} {
			d := &websocket.Dialer{Subprotocols: tt.offered, HandshakeTimeout: testTimeout}
			c, resp, err := d.Dial(s.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			sc := s.accept(t)
			if c.Subprotocol() != tt.want || sc.Subprotocol() != tt.want {
				t.Errorf("offered %q: client %q, server %q, want %q", tt.offered, c.Subprotocol(), sc.Subprotocol(), tt.want)
			}
			if resp.Header.Get("X-Test") != "yes" {
				t.Errorf("Options.Header not sent: %v", resp.Header)
			}
			c.Close()
			waitEnded(t, sc)
		}
	})
}

// TestUpgradeRefused asserts a rejected origin gets 403 and a plain GET
// 400, with no connection made.
func TestUpgradeRefused(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{opts: Options{AllowedOrigins: []string{"example.com"}}})
		d := &websocket.Dialer{HandshakeTimeout: testTimeout}
		if _, resp, err := d.Dial(s.url, http.Header{"Origin": {"http://evil.com"}}); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("evil origin: %v, %v", resp, err)
		}
		resp, err := http.Get(s.hs.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain GET: %s", resp.Status)
		}
		http.DefaultClient.CloseIdleConnections()
		c, sc := s.dial(t, nil, http.Header{"Origin": {"http://example.com"}})
		c.Close()
		waitEnded(t, sc)
	})
}

// clientMessage is the i-th test message of n bytes: binary for every
// seventh (clientBinary), else text.
func clientMessage(i, n int) []byte {
	m := textOf(n, byte(i))
	if clientBinary(i) {
		m = payloadOf(n, byte(i))
	}
	copy(m, fmt.Sprintf("%06d", i))
	return m
}

func clientBinary(i int) bool { return i%7 == 3 }

// TestReceiveMessages asserts client messages reach handle whole and in
// order: text and binary, empty, small, larger than a read buffer, and
// fragmented (gorilla/websocket splits messages larger than its write
// buffer).
func TestReceiveMessages(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{})
		c, sc := s.dial(t, &websocket.Dialer{WriteBufferSize: 1000}, nil)
		sizes := []int{0, 1, 6, 100, 999, 1000, 1001, 4095, 4096, 4097, 10_000, 65_536, 100_000}
		const n = 200
		go func() {
			for i := range n {
				typ := websocket.TextMessage
				if clientBinary(i) {
					typ = websocket.BinaryMessage
				}
				c.SetWriteDeadline(time.Now().Add(testTimeout))
				if c.WriteMessage(typ, clientMessage(i, sizes[i%len(sizes)])) != nil {
					return
				}
			}
		}()
		for i := range n {
			got, want := nextMsg(t, sc), clientMessage(i, sizes[i%len(sizes)])
			if !bytes.Equal(got, want) {
				t.Fatalf("message %d: got %d bytes %.20q, want %d bytes %.20q", i, len(got), got, len(want), want)
			}
		}
	})
}

// TestReceiveDribbled asserts a fragmented message with a ping between its
// fragments, written one byte per TCP write, reaches handle whole, and the
// ping is answered with a pong of the same payload.
func TestReceiveDribbled(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{})
		rc, sc := s.dialRaw(t)
		big := textOf(3000, 9)
		stream := cat(
			cfrag(opText, "Hel"),
			cframe(opPing, "are you there"),
			encodeFrame(opContinuation, big, true, [4]byte{7, 0, 7, 0}),
			cframe(opContinuation, "lo"),
			cframe(opText, "next"),
		)
		for _, b := range stream {
			rc.write([]byte{b})
		}
		if f := rc.read(); f.op != opPong || string(f.payload) != "are you there" {
			t.Fatalf("got %v, want the pong", f)
		}
		if got := nextMsg(t, sc); !bytes.Equal(got, cat([]byte("Hel"), big, []byte("lo"))) {
			t.Fatalf("got %d bytes %.20q", len(got), got)
		}
		if got := nextMsg(t, sc); string(got) != "next" {
			t.Fatalf("got %q", got)
		}
	})
}

// serverFrameOf is the i-th frame the server sends in the Send tests: its
// index, then filler; every 100th is large, so writes go partial.
func serverFrameOf(i int) []byte {
	n := 10 + i%200
	if i%100 == 0 {
		n = 70_000
	}
	m := payloadOf(n, byte(i))
	copy(m, fmt.Sprintf("%08d", i))
	return m
}

// TestSendOrder asserts 10,000 frames passed to Send reach the client in
// order and intact, and that OnSent counts all of them and their bytes.
func TestSendOrder(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		var sentFrames, sentBytes atomic.Int64
		s := newTestServer(t, p, serverConfig{opts: Options{OnSent: func(frames, bytes int) {
			sentFrames.Add(int64(frames))
			sentBytes.Add(int64(bytes))
		}}})
		c, sc := s.dial(t, nil, nil)
		const n = 10_000
		total := 0
		for i := range n {
			total += len(serverFrameOf(i))
		}
		go func() {
			for i := range n {
				if !sc.Send(serverFrameOf(i), nil) {
					return
				}
			}
		}()
		for i := range n {
			c.SetReadDeadline(time.Now().Add(testTimeout))
			typ, got, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("frame %d: %v", i, err)
			}
			if want := serverFrameOf(i); typ != websocket.TextMessage || !bytes.Equal(got, want) {
				t.Fatalf("frame %d: got type %d, %d bytes %.8q; want %.8q", i, typ, len(got), got, want)
			}
		}
		eventually(t, testTimeout, "OnSent to count every frame", func() bool {
			return sentFrames.Load() == n && sentBytes.Load() == int64(total)
		})
	})
}

// TestSendConcurrent asserts frames sent from several goroutines at once
// all arrive, each goroutine's in its order.
func TestSendConcurrent(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{})
		c, sc := s.dial(t, nil, nil)
		const senders, each = 4, 2000
		for g := range senders {
			go func() {
				for i := range each {
					sc.Send(fmt.Appendf(nil, "%d:%d", g, i), nil)
				}
			}()
		}
		next := make([]int, senders)
		for range senders * each {
			c.SetReadDeadline(time.Now().Add(testTimeout))
			_, m, err := c.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			var g, i int
			if _, err := fmt.Sscanf(string(m), "%d:%d", &g, &i); err != nil || g < 0 || g >= senders {
				t.Fatalf("frame %q", m)
			}
			if i != next[g] {
				t.Fatalf("sender %d: frame %d, want %d", g, i, next[g])
			}
			next[g]++
		}
	})
}

// TestPing asserts a client ping gets a pong with the same payload (up to
// the 125-byte maximum) and does not reach handle.
func TestPing(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{})
		c, sc := s.dial(t, nil, nil)
		pongs := make(chan string, 4)
		c.SetPongHandler(func(p string) error { pongs <- p; return nil })
		go func() {
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}()
		for _, p := range []string{"ping-payload", strings.Repeat("x", 125)} {
			if err := c.WriteControl(websocket.PingMessage, []byte(p), time.Now().Add(testTimeout)); err != nil {
				t.Fatal(err)
			}
			select {
			case got := <-pongs:
				if got != p {
					t.Fatalf("pong %q, want %q", got, p)
				}
			case <-time.After(testTimeout):
				t.Fatal("no pong")
			}
		}
		c.WriteMessage(websocket.TextMessage, []byte("after"))
		if got := nextMsg(t, sc); string(got) != "after" {
			t.Fatalf("handle got %q first", got)
		}
	})
}

// TestPingEmpty asserts a ping without payload is answered too (RFC 6455
// §5.5.2): the pong must come before a frame the server sends after the
// ping was read.
func TestPingEmpty(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{})
		rc, sc := s.dialRaw(t)
		rc.write(cframe(opPing, ""), cframe(opText, "sync"))
		if got := nextMsg(t, sc); string(got) != "sync" { // the ping was read
			t.Fatalf("got %q", got)
		}
		sc.Send([]byte("marker"), nil)
		f := rc.read()
		if f.op != opPong || len(f.payload) != 0 {
			t.Fatalf("got %v, want an empty pong", f)
		}
		rc.expectText("marker")
	})
}

// TestClientClose asserts a client close with 4001 is answered with a
// close frame echoing 4001 (nothing else), after which the server closes
// the socket and end runs once; Send then reports false.
func TestClientClose(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{})
		c, sc := s.dial(t, nil, nil)
		err := c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "client done"), time.Now().Add(testTimeout))
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = c.ReadMessage()
		expectCloseError(t, err, 4001, "")
		expectSocketClosed(t, c)
		waitEnded(t, sc)
		if sc.Send([]byte("late"), nil) {
			t.Fatal("Send after the end reported true")
		}
	})
}

// TestClientCloseWire asserts the exact close frames a raw client gets
// back: the code alone for a close with a code and reason, an empty
// payload for an empty close, and that frames queued before are dropped.
func TestClientCloseWire(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{})
		for _, tt := range []struct {
			payload string
			reply   string
		}{
			{closeBody(4001, "client done"), "\x0f\xa1"},
			{closeBody(1000, ""), "\x03\xe8"},
			{"", ""},
		} {
			rc, sc := s.dialRaw(t)
			rc.write(cframe(opClose, tt.payload))
			if f := rc.read(); f.op != opClose || string(f.payload) != tt.reply {
				t.Fatalf("close %q: got %v, want payload %q", tt.payload, f, tt.reply)
			}
			rc.expectEOF(testTimeout)
			waitEnded(t, sc)
		}
	})
}

// TestServerClose asserts Close(4000, "bye", last) sends last, then a
// close frame with 4000 and "bye"; later Sends and Closes are dropped; the
// client's answer ends the connection at once (before the grace period)
// and the socket is closed.
func TestServerClose(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{})
		c, sc := s.dial(t, nil, nil)
		start := time.Now()
		sc.Close(4000, "bye", []byte("last"))
		if sc.Send([]byte("after close"), nil) {
			t.Error("Send after Close reported true")
		}
		sc.Close(4002, "again", []byte("again"))
		typ, m, err := c.ReadMessage()
		if err != nil || typ != websocket.TextMessage || string(m) != "last" {
			t.Fatalf("got %d %q %v, want text \"last\"", typ, m, err)
		}
		_, _, err = c.ReadMessage() // gorilla answers the close
		expectCloseError(t, err, 4000, "bye")
		waitEnded(t, sc)
		if d := time.Since(start); d >= DefaultCloseGrace {
			t.Fatalf("ended after %v: the client's answer was not taken", d)
		}
		expectSocketClosed(t, c)
	})
}

// TestServerCloseNoAnswer asserts that when the client never answers the
// close, the server closes the socket once the grace period is over, with
// nothing sent after the close frame, and end runs once.
func TestServerCloseNoAnswer(t *testing.T) {
	const grace = 300 * time.Millisecond
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{opts: Options{CloseGrace: grace}})
		rc, sc := s.dialRaw(t)
		sc.Close(4000, "bye", []byte("last"))
		rc.expectText("last")
		rc.expectClose(4000, "bye")
		d := rc.expectEOF(testTimeout)
		if d < grace/2 {
			t.Fatalf("socket closed after %v, without waiting for the client's answer", d)
		}
		waitEnded(t, sc)
	})
}

// TestMessageTooBig asserts a message over Options.MaxMessageSize, in one
// frame or in fragments, is not handled and gets a close with 1009, after
// which the socket closes; a message of exactly the limit is handled.
func TestMessageTooBig(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{opts: Options{MaxMessageSize: 1000}})
		for _, bufSize := range []int{4096, 300} { // one frame; fragments
			c, sc := s.dial(t, &websocket.Dialer{WriteBufferSize: bufSize}, nil)
			c.WriteMessage(websocket.TextMessage, clientMessage(1, 1000))
			c.WriteMessage(websocket.TextMessage, clientMessage(2, 1001))
			_, _, err := c.ReadMessage()
			expectCloseError(t, err, 1009, "")
			expectSocketClosed(t, c)
			waitEnded(t, sc)
			if got := nextMsg(t, sc); !bytes.Equal(got, clientMessage(1, 1000)) {
				t.Fatalf("got %.10q", got)
			}
			if len(sc.msgs) != 0 {
				t.Fatal("the message over the limit was handled")
			}
		}
	})
}

// TestProtocolViolations asserts a raw client breaking the protocol gets a
// close frame with the matching code (1002, or 1007 for a text message or
// close reason that is not UTF-8) and nothing else, then the socket closes, end runs,
// and handle got only the valid message before.
func TestProtocolViolations(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
		code  int
	}{
		{"unmasked frame", encodeFrame(0x80|opText, []byte("plain"), false, testMask), 1002},
		{"reserved bit", encodeFrame(0x80|0x40|opText, []byte("x"), true, testMask), 1002},
		{"unknown opcode", cframe(0x3, "x"), 1002},
		{"fragmented ping", cfrag(opPing, "x"), 1002},
		{"ping over 125 bytes", cframe(opPing, strings.Repeat("p", 126)), 1002},
		{"continuation without a start", cframe(opContinuation, "x"), 1002},
		{"text while fragmented", cat(cfrag(opText, "a"), cframe(opText, "b")), 1002},
		{"close of one byte", cframe(opClose, "\x03"), 1002},
		{"close code 999", cframe(opClose, closeBody(999, "")), 1002},
		{"close code 1005", cframe(opClose, closeBody(1005, "")), 1002},
		{"close reason not UTF-8", cframe(opClose, closeBody(1000, "\xff")), 1007},
		{"text not UTF-8", cframe(opText, "a\xffb"), 1007},
		{"fragmented text not UTF-8", cat(cfrag(opText, "\xe2\x82"), cframe(opContinuation, "!")), 1007},
	}
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{})
		for _, tt := range tests {
			rc, sc := s.dialRaw(t)
			rc.write(cframe(opText, "valid"), tt.frame)
			f := rc.read()
			if f.op != opClose {
				t.Fatalf("%s: got %v, want a close frame", tt.name, f)
			}
			if code, _ := f.closeCode(); code != tt.code {
				t.Fatalf("%s: close %d, want %d", tt.name, code, tt.code)
			}
			rc.expectEOF(testTimeout)
			waitEnded(t, sc)
			if got := nextMsg(t, sc); string(got) != "valid" || len(sc.msgs) != 0 {
				t.Fatalf("%s: handle got %q and %d more", tt.name, got, len(sc.msgs))
			}
		}
	})
}

// TestAbort asserts Abort closes the socket without a close frame, end
// runs once, and Send then reports false.
func TestAbort(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{})
		rc, sc := s.dialRaw(t)
		sc.Abort()
		rc.expectEOF(testTimeout)
		waitEnded(t, sc)
		if sc.Send([]byte("x"), nil) {
			t.Fatal("Send after Abort reported true")
		}
		sc.Close(1000, "", nil) // no effect, no panic
		sc.Abort()
	})
}

// TestAbortWithQueuedFrames asserts frames queued before Abort may be cut
// short but are never followed by a close frame.
func TestAbortWithQueuedFrames(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{})
		rc, sc := s.dialRaw(t)
		for i := range 1000 {
			sc.Send(serverFrameOf(i), nil)
		}
		sc.Abort()
		rc.nc.SetReadDeadline(time.Now().Add(testTimeout))
		for i := 0; ; i++ {
			f, err := readServerFrame(rc.br)
			if err != nil {
				if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
					t.Fatal("socket still open")
				}
				break
			}
			if f.op != opText || !bytes.Equal(f.payload, serverFrameOf(i)) {
				t.Fatalf("frame %d: %v", i, f)
			}
		}
		waitEnded(t, sc)
	})
}

// TestAbortBeforeServe asserts a connection aborted before Serve still
// runs its end function once, when Serve is called, and its socket is
// closed with no frame sent (the handshake response, which leaves with
// the first frames, may be missing too).
func TestAbortBeforeServe(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{beforeServe: func(sc *serverConn) { sc.Abort() }})
		rc, sc := s.openRaw(t)
		rc.nc.SetReadDeadline(time.Now().Add(testTimeout))
		if _, err := rc.br.Peek(1); err == nil {
			rc.handshake()
		}
		rc.expectEOF(testTimeout)
		waitEnded(t, sc)
	})
}

// TestSendBeforeServe asserts frames sent between Upgrade and Serve (a
// welcome) reach the client right after the upgrade response.
func TestSendBeforeServe(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{beforeServe: func(sc *serverConn) {
			sc.Send([]byte("welcome"), nil)
			sc.Send([]byte("second"), nil)
		}})
		rc, sc := s.dialRaw(t)
		rc.expectText("welcome")
		rc.expectText("second")
		rc.write(cframe(opText, "hi"))
		if got := nextMsg(t, sc); string(got) != "hi" {
			t.Fatalf("got %q", got)
		}
	})
}

// TestCloseBeforeServe asserts a connection refused between Upgrade and
// Serve (Close with a last frame, as an authentication failure does) gets
// the upgrade response, the last frame and the close frame, and ends when
// the client answers.
func TestCloseBeforeServe(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{beforeServe: func(sc *serverConn) {
			sc.Close(1000, "Auth Failed", []byte(`{"type":"disconnect","reason":"unauthorized"}`))
		}})
		rc, sc := s.dialRaw(t)
		rc.expectText(`{"type":"disconnect","reason":"unauthorized"}`)
		rc.expectClose(1000, "Auth Failed")
		start := time.Now()
		rc.write(cframe(opClose, closeBody(1000, "")))
		rc.expectEOF(testTimeout)
		waitEnded(t, sc)
		if d := time.Since(start); d >= DefaultCloseGrace {
			t.Fatalf("ended after %v: the client's answer was not taken", d)
		}
	})
}

// TestHandleReplies asserts frames sent by handle itself (replies to
// commands) reach the client in order, each after the message that caused
// it.
func TestHandleReplies(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{handle: func(sc *serverConn, m []byte) {
			sc.Send(append([]byte("re:"), m...), nil)
			sc.Send(append([]byte("re2:"), m...), nil)
		}})
		c, _ := s.dial(t, nil, nil)
		for i := range 200 {
			m := fmt.Sprintf("cmd %d", i)
			if err := c.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 200 {
			for _, prefix := range []string{"re:", "re2:"} {
				c.SetReadDeadline(time.Now().Add(testTimeout))
				_, got, err := c.ReadMessage()
				if want := fmt.Sprintf("%scmd %d", prefix, i); err != nil || string(got) != want {
					t.Fatalf("got %q, %v; want %q", got, err, want)
				}
			}
		}
	})
}

// TestSendWhileHandling asserts a frame sent from another goroutine (a
// broadcast) while handle is busy reaches the client without waiting for
// handle to return.
func TestSendWhileHandling(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		entered, release := make(chan struct{}), make(chan struct{})
		s := newTestServer(t, p, serverConfig{handle: func(sc *serverConn, m []byte) {
			close(entered)
			<-release
		}})
		rc, sc := s.dialRaw(t)
		defer func() {
			select {
			case <-release:
			default:
				close(release)
			}
		}()
		rc.write(cframe(opText, "block"))
		<-entered
		sc.Send([]byte("broadcast"), nil)
		rc.nc.SetReadDeadline(time.Now().Add(2 * time.Second))
		f, err := readServerFrame(rc.br)
		if err != nil {
			close(release)
			t.Fatalf("the frame waited for handle to return (%v)", err)
		}
		if f.op != opText || string(f.payload) != "broadcast" {
			t.Fatalf("got %v", f)
		}
	})
}

// TestClientDisconnect asserts a client that drops the TCP connection
// without a close frame ends the connection once.
func TestClientDisconnect(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{})
		c, sc := s.dial(t, nil, nil)
		c.WriteMessage(websocket.TextMessage, []byte("hi"))
		nextMsg(t, sc)
		c.NetConn().Close()
		waitEnded(t, sc)
	})
}

// slowFrame is the frame a client cut as too slow gets.
var slowFrame = []byte("too slow")

// slowServer starts a server with MaxPending 64 KiB and writeTimeout, that
// counts OnSlow calls and written frames (from OnSent).
func slowServer(t *testing.T, p path, writeTimeout time.Duration) (s *testServer, slow, written *atomic.Int64) {
	slow, written = new(atomic.Int64), new(atomic.Int64)
	s = newTestServer(t, p, serverConfig{
		opts: Options{
			MaxPending:   64 << 10,
			WriteTimeout: writeTimeout,
			OnSent:       func(frames, _ int) { written.Add(int64(frames)) },
		},
		beforeServe: func(sc *serverConn) { sc.OnSlow(func() { slow.Add(1) }) },
	})
	return s, slow, written
}

// slowFrameOf is the i-th frame sent to a slow client.
func slowFrameOf(i int) []byte {
	m := payloadOf(16<<10, byte(i))
	copy(m, fmt.Sprintf("%08d", i))
	return m
}

// fillSocket sends frames to a client that does not read, one at a time
// as the server writes them, until the server stops writing them: the
// socket buffers are full and a write is blocked. Pacing the frames keeps
// the cut from coming early, from frames queued faster than a working
// writer takes them. It returns how many frames were sent.
func fillSocket(t *testing.T, sc *serverConn, written *atomic.Int64) int {
	t.Helper()
	deadline := time.Now().Add(2 * testTimeout)
	for sent := 0; ; {
		if !sc.Send(slowFrameOf(sent), slowFrame) {
			t.Fatalf("cut after %d frames, before the socket was full", sent)
		}
		sent++
		stall := time.Now().Add(100 * time.Millisecond)
		for written.Load() < int64(sent) {
			if time.Now().After(stall) {
				return sent
			}
			time.Sleep(100 * time.Microsecond)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d frames (%d MiB) written to a client that does not read", sent, sent>>6)
		}
	}
}

// sendUntilCut sends frames from the sent-th on until Send reports false,
// and returns how many it accepted in all.
func sendUntilCut(t *testing.T, sc *serverConn, sent int) int {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for sc.Send(slowFrameOf(sent), slowFrame) {
		sent++
		if time.Now().After(deadline) {
			t.Fatalf("%d frames accepted for a client that does not read", sent)
		}
	}
	return sent
}

// TestSlowClientCut asserts a client that never reads is cut once
// MaxPending bytes are queued: Send reports false from then on, OnSlow
// runs once, and the connection ends (its blocked write times out).
func TestSlowClientCut(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		s, slow, written := slowServer(t, p, 200*time.Millisecond)
		_, sc := s.dialRaw(t) // never reads
		sendUntilCut(t, sc, fillSocket(t, sc, written))
		if slow.Load() != 1 {
			t.Fatalf("OnSlow ran %d times", slow.Load())
		}
		for range 10 {
			if sc.Send([]byte("x"), slowFrame) {
				t.Fatal("Send reported true after the cut")
			}
		}
		waitEnded(t, sc)
		if slow.Load() != 1 {
			t.Fatalf("OnSlow ran %d times", slow.Load())
		}
	})
}

// TestSlowClientGetsSlowFrame asserts a client cut as too slow that then
// reads gets an unbroken prefix of the frames sent (the frames still
// queued at the cut are dropped), then slowFrame, then a close with 1000;
// its answer ends the connection.
func TestSlowClientGetsSlowFrame(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		s, slow, written := slowServer(t, p, testTimeout)
		rc, sc := s.dialRaw(t)
		accepted := sendUntilCut(t, sc, fillSocket(t, sc, written))
		got := 0
		for {
			f := rc.read()
			if f.op != opText {
				t.Fatalf("after %d frames: got %v, want slowFrame", got, f)
			}
			if bytes.Equal(f.payload, slowFrame) {
				break
			}
			if !bytes.Equal(f.payload, slowFrameOf(got)) {
				t.Fatalf("frame %d: got %.8q", got, f.payload)
			}
			got++
		}
		if got >= accepted {
			t.Fatalf("got all %d frames accepted, want the queued ones dropped", accepted)
		}
		rc.expectClose(1000, "")
		rc.write(cframe(opClose, closeBody(1000, "")))
		rc.expectEOF(testTimeout)
		waitEnded(t, sc)
		if slow.Load() != 1 {
			t.Fatalf("OnSlow ran %d times", slow.Load())
		}
	})
}

// TestSendAfterBlockedWrite asserts a connection whose output once
// backed up (a write blocked until the client read) keeps working: a frame
// sent after the write timeout has passed still reaches the client.
func TestSendAfterBlockedWrite(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		const writeTimeout = time.Second
		written := new(atomic.Int64)
		s := newTestServer(t, p, serverConfig{opts: Options{
			WriteTimeout: writeTimeout,
			OnSent:       func(frames, _ int) { written.Add(int64(frames)) },
		}})
		rc, sc := s.dialRaw(t)
		sent := fillSocket(t, sc, written) // a write is now blocked
		for i := range sent {
			if f := rc.read(); !bytes.Equal(f.payload, slowFrameOf(i)) {
				t.Fatalf("frame %d: %v", i, f)
			}
		}
		eventually(t, testTimeout, "the blocked write to complete", func() bool { return written.Load() == int64(sent) })
		eventually(t, testTimeout, "the writer to go idle", func() bool { w, _, _, _ := sc.state(); return w == writerIdle })
		// Let the blocked write's deadline pass: it must not apply to
		// later writes.
		time.Sleep(writeTimeout + writeTimeout/4)
		sc.Send([]byte("after"), nil)
		rc.nc.SetReadDeadline(time.Now().Add(testTimeout))
		f, err := readServerFrame(rc.br)
		if err != nil {
			t.Fatalf("the connection was dropped (%v): a write deadline outlived its write", err)
		}
		if f.op != opText || string(f.payload) != "after" {
			t.Fatalf("got %v", f)
		}
	})
}

// TestEndWaitsForHandle asserts end does not run while handle is running:
// the connection is aborted (from outside, or by the handler itself)
// while handle blocks, the socket closes, yet end runs only after handle
// returns; a message read after the abort is not handled.
func TestEndWaitsForHandle(t *testing.T) {
	for _, fromHandler := range []bool{false, true} {
		t.Run(fmt.Sprintf("abort from handler %v", fromHandler), func(t *testing.T) {
			bothPaths(t, func(t *testing.T, p path) {
				entered, release := make(chan struct{}), make(chan struct{})
				var handled []string
				s := newTestServer(t, p, serverConfig{handle: func(sc *serverConn, m []byte) {
					handled = append(handled, string(m))
					if string(m) != "block" {
						return
					}
					if fromHandler {
						sc.Abort()
					}
					close(entered)
					<-release
				}})
				c, sc := s.dial(t, nil, nil)
				c.WriteMessage(websocket.TextMessage, []byte("block"))
				c.WriteMessage(websocket.TextMessage, []byte("second"))
				select {
				case <-entered:
				case <-time.After(testTimeout):
					t.Fatal("handle not called")
				}
				if !fromHandler {
					sc.Abort()
				}
				expectSocketClosed(t, c)
				// end would run on a goroutine of its own: give it time
				// to show up if it wrongly does.
				select {
				case <-sc.ended:
					t.Fatal("end ran while handle was running")
				case <-time.After(50 * time.Millisecond):
				}
				close(release)
				waitEnded(t, sc)
				if sc.endWhileHandling.Load() {
					t.Fatal("end ran while handle was running")
				}
				if fmt.Sprint(handled) != "[block]" {
					t.Fatalf("handled %q", handled)
				}
			})
		})
	}
}

// TestTransportClose asserts Close returns for a transport never used, and
// (at every test server's cleanup) for one whose connections have ended.
func TestTransportClose(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		baseline := runtime.NumGoroutine()
		tr := NewTransport(Options{IOURing: p.uring})
		tr.noPoller = !p.poll
		done := make(chan struct{})
		go func() { tr.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(testTimeout):
			t.Fatal("Close did not return")
		}
		checkGoroutines(t, baseline)
	})
}

// TestNoGoroutineLeak asserts that once connections have ended every way
// there is and the transport is closed, the goroutine count is back to
// what it was before.
func TestNoGoroutineLeak(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		baseline := runtime.NumGoroutine()
		s := newTestServer(t, p, serverConfig{opts: Options{MaxMessageSize: 100, MaxPending: 1 << 20, WriteTimeout: time.Second}})

		c1, sc1 := s.dial(t, nil, nil) // client close handshake
		c1.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(testTimeout))
		c2, sc2 := s.dial(t, nil, nil) // server close handshake
		sc2.Send([]byte("hello"), nil)
		sc2.Close(1000, "", nil)
		_, sc3 := s.dial(t, nil, nil) // abort
		sc3.Abort()
		c4, sc4 := s.dial(t, nil, nil) // client drops
		c4.NetConn().Close()
		c5, sc5 := s.dial(t, nil, nil) // too big
		c5.WriteMessage(websocket.TextMessage, make([]byte, 101))
		rc6, sc6 := s.dialRaw(t) // protocol error
		rc6.write(cframe(0x3, ""))

		for _, c := range []*websocket.Conn{c1, c2, c5} {
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					break
				}
			}
		}
		if f := rc6.read(); f.op != opClose {
			t.Fatalf("got %v, want a close frame", f)
		}
		for _, sc := range []*serverConn{sc1, sc2, sc3, sc4, sc5, sc6} {
			waitEnded(t, sc)
		}
		s.shutdown(t)
		checkGoroutines(t, baseline)
	})
}
