//go:build linux

package ws

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// TestRingSenderResults asserts one submission reports, per connection,
// what a non-blocking write would: all bytes for a socket with room, a
// short count or errWouldBlock for a full one (no wait), and an error for
// a closed connection, whose neighbours are unaffected.
func TestRingSenderResults(t *testing.T) {
	skipWithoutRing(t)
	s, err := newRingSender()
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()

	okClient, okServer := tcpPair(t)
	_, fullServer := tcpPair(t)
	fullServer.SetWriteBuffer(4096)
	fill := make([]byte, 64<<10)
	for {
		n, err := writeRaw(fullServer, fill)
		if errors.Is(err, errWouldBlock) || n < len(fill) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	_, closedServer := tcpPair(t)
	closedServer.Close()

	msg := []byte("hello through io_uring")
	batch := []ringSend{
		{raw: rawConn(okServer), buf: msg},
		{raw: rawConn(closedServer), buf: msg},
		{raw: rawConn(fullServer), buf: bytes.Repeat([]byte("x"), 1<<20)},
		{raw: rawConn(okServer), buf: msg},
	}
	start := time.Now()
	s.send(batch)
	if d := time.Since(start); d > testTimeout {
		t.Fatalf("send took %v: a full socket made it wait", d)
	}
	for _, i := range []int{0, 3} {
		if batch[i].err != nil || batch[i].n != len(msg) {
			t.Fatalf("entry %d: n %d, err %v; want %d, nil", i, batch[i].n, batch[i].err, len(msg))
		}
	}
	if batch[1].err == nil || errors.Is(batch[1].err, errWouldBlock) {
		t.Fatalf("closed connection: err %v, want a failure", batch[1].err)
	}
	if batch[2].err != errWouldBlock || batch[2].n >= len(batch[2].buf) {
		t.Fatalf("full socket: n %d, err %v; want a short count and errWouldBlock", batch[2].n, batch[2].err)
	}
	okClient.SetReadDeadline(time.Now().Add(testTimeout))
	got := make([]byte, 2*len(msg))
	if _, err := io.ReadFull(okClient, got); err != nil {
		t.Fatal(err)
	}
	if want := append(append([]byte(nil), msg...), msg...); !bytes.Equal(got, want) {
		t.Fatalf("client read %q, want %q", got, want)
	}
}

// writeRaw is one non-blocking write to c.
func writeRaw(c *net.TCPConn, buf []byte) (int, error) {
	var w rawWriter
	w.init()
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	return w.write(raw, buf)
}

// TestRingUnavailableFallsBack asserts a transport asked for io_uring
// where it cannot be set up writes with write(2), as without it.
func TestRingUnavailableFallsBack(t *testing.T) {
	p := path{poll: true, uring: true}
	ts := newTestServer(t, p, serverConfig{})
	ts.tr.noRing = true
	c, sc := ts.dial(t, nil, nil)
	if sc.flusher == nil || sc.flusher.ring != nil {
		t.Fatal("the connection's flusher has a ring")
	}
	for i := range 100 {
		sc.Send(serverFrameOf(i), nil)
	}
	for i := range 100 {
		c.SetReadDeadline(time.Now().Add(testTimeout))
		typ, got, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if typ != websocket.TextMessage || !bytes.Equal(got, serverFrameOf(i)) {
			t.Fatalf("frame %d: %.8q", i, got)
		}
	}
}
