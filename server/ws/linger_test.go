package ws

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

// expectFIN asserts the server has shut its side of the socket in order
// (end of stream) rather than reset it: a reset, which a kernel sends
// when a socket is closed with unread input, can destroy the frames before
// it on the way to the client.
func (c *rawClient) expectFIN() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(testTimeout))
	var b [512]byte
	n, err := c.br.Read(b[:])
	if n > 0 || err != io.EOF {
		c.t.Fatalf("got %q, %v; want end of stream", b[:n], err)
	}
}

// TestCloseWithUnreadInput asserts that a connection ending with input
// the server never read (what followed a protocol error, the rest of a
// message over the limit) sends its close frame and then shuts the
// socket in order: the client reads the close, then end of stream, not a
// reset.
func TestCloseWithUnreadInput(t *testing.T) {
	junk := bytes.Repeat(cframe(opText, "junk after the error"), 1500) // about 40 KiB
	tests := []struct {
		name  string
		input []byte
		code  int
	}{
		{"protocol error", cat(cframe(0x3, ""), junk), 1002},
		{"invalid UTF-8", cat(cframe(opText, "\xff"), junk), 1007},
		{"message over the limit", cat(encodeFrame(0x80|opText, textOf(100<<10, 0), true, testMask)[:32<<10]), 1009},
	}
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{opts: Options{MaxMessageSize: 1000}})
		for _, tt := range tests {
			rc, sc := s.dialRaw(t)
			rc.write(tt.input)
			f := rc.read()
			if code, _ := f.closeCode(); f.op != opClose || code != tt.code {
				t.Fatalf("%s: got %v, want close %d", tt.name, f, tt.code)
			}
			rc.expectFIN()
			waitEnded(t, sc)
			rc.nc.Close()
		}
	})
}

// TestCloseHandshakeFIN asserts that after a complete close handshake,
// started by either side, the server shuts the socket in order.
func TestCloseHandshakeFIN(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{})
		rc, sc := s.dialRaw(t)
		rc.write(cframe(opClose, closeBody(1000, "")))
		rc.expectClose(1000, "")
		rc.expectFIN()
		waitEnded(t, sc)

		rc, sc = s.dialRaw(t)
		sc.Close(4000, "bye", nil)
		rc.expectClose(4000, "bye")
		rc.write(cframe(opClose, closeBody(4000, "")), cframe(opText, "sent too late"))
		rc.expectFIN()
		waitEnded(t, sc)
	})
}

// TestDrainBounded asserts a client that keeps sending after the server's
// close frame does not keep the connection: it reads the close and end of
// stream, and its writes then fail (the server closed the socket after
// draining a bounded amount).
func TestDrainBounded(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{})
		rc, sc := s.dialRaw(t)
		rc.write(cframe(0x3, ""))
		writeErr := make(chan error, 1)
		go func() {
			chunk := bytes.Repeat(cframe(opText, "more"), 1000)
			rc.nc.SetWriteDeadline(time.Now().Add(2 * testTimeout))
			for {
				if _, err := rc.nc.Write(chunk); err != nil {
					writeErr <- err
					return
				}
			}
		}()
		rc.expectClose(1002, "unknown opcode")
		rc.expectFIN()
		waitEnded(t, sc)
		select {
		case err := <-writeErr:
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("writes still accepted after %v", 2*testTimeout)
			}
		case <-time.After(3 * testTimeout):
			t.Fatal("the client's writer never returned")
		}
	})
}
