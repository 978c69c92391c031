package e2e

import (
	wire "encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// rawWS is a WebSocket client that writes exactly the frames a test says,
// over a connection upgraded by hand.
type rawWS struct {
	*rawHTTP
}

const upgradeHead = "GET /cable HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: actioncable-v1-ext-json\r\n"

func dialRawWS(t *testing.T, s *server) *rawWS {
	t.Helper()
	c := dialRawHTTP(t, s.Main)
	if _, err := io.WriteString(c, upgradeHead+"Sec-WebSocket-Version: 13\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if r := c.readResponse(t); r.Status != 101 {
		t.Fatalf("upgrade: %d %s", r.Status, r.Body)
	}
	w := &rawWS{c}
	if op, p := w.frame(t); op != 1 || !strings.HasPrefix(string(p), `{"type":"welcome"`) {
		t.Fatalf("no welcome: %d %s", op, p)
	}
	return w
}

// frame returns the next server frame's opcode and payload.
func (w *rawWS) frame(t *testing.T) (byte, []byte) {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(w.br, h[:]); err != nil {
		t.Fatalf("reading a frame: %v", err)
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		io.ReadFull(w.br, b[:])
		n = uint64(wire.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		io.ReadFull(w.br, b[:])
		n = wire.BigEndian.Uint64(b[:])
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(w.br, p); err != nil {
		t.Fatalf("reading a frame: %v", err)
	}
	return h[0] & 0x0f, p
}

// closeCode reads frames until the close frame and returns its code.
func (w *rawWS) closeCode(t *testing.T) int {
	t.Helper()
	for {
		op, p := w.frame(t)
		if op == 8 {
			if len(p) < 2 {
				return 1005
			}
			return int(wire.BigEndian.Uint16(p))
		}
	}
}

// masked is one client frame: fin, opcode, masked payload.
func masked(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	f := []byte{b0}
	switch n := len(payload); {
	case n <= 125:
		f = append(f, 0x80|byte(n))
	case n <= 0xffff:
		f = append(f, 0x80|126, byte(n>>8), byte(n))
	default:
		f = append(f, 0x80|127)
		f = wire.BigEndian.AppendUint64(f, uint64(n))
	}
	key := []byte{1, 2, 3, 4}
	f = append(f, key...)
	for i, c := range payload {
		f = append(f, c^key[i&3])
	}
	return f
}

// Item 7: text messages must be UTF-8, also when split across fragments.
func TestHardeningWSInvalidUTF8(t *testing.T) {
	s := startServer(t, nil, "--public")
	cases := map[string][][]byte{
		"one frame":          {masked(true, 1, []byte("ok \xff"))},
		"split across frags": {masked(false, 1, []byte("{\"a\":\"\xe2\x82")), masked(true, 0, []byte("\xff\"}"))},
		"truncated rune":     {masked(false, 1, []byte("abc")), masked(true, 0, []byte("\xe2\x82"))},
	}
	for name, frames := range cases {
		w := dialRawWS(t, s)
		for _, f := range frames {
			w.Write(f)
		}
		if code := w.closeCode(t); code != 1007 {
			t.Errorf("%s: close %d, want 1007", name, code)
		}
	}
	// A rune split by a fragment boundary is fine.
	w := dialRawWS(t, s)
	w.Write(masked(false, 1, []byte("{\"command\":\"ping\",\"x\":\"\xe2\x82")))
	w.Write(masked(true, 0, []byte("\xac\"}")))
	if op, p := w.frame(t); op != 1 || string(p) != `{"type":"pong"}` {
		t.Errorf("split rune: %d %s", op, p)
	}
}

// Item 7: another WebSocket version gets 426 naming the one spoken.
func TestHardeningWSVersionMismatch(t *testing.T) {
	s := startServer(t, nil, "--public")
	for _, v := range []string{"8", "12", ""} {
		c := dialRawHTTP(t, s.Main)
		head := upgradeHead
		if v != "" {
			head += "Sec-WebSocket-Version: " + v + "\r\n"
		}
		io.WriteString(c, head+"\r\n")
		r := c.readResponse(t)
		if r.Status != 426 || r.Header.Get("Sec-WebSocket-Version") != "13" {
			t.Errorf("version %q: %d %v", v, r.Status, r.Header)
		}
	}
}

// Item 7: after a protocol error the client gets the close frame and a
// clean end of stream, not a reset, even with unread input on the socket.
func TestHardeningWSCloseIsDelivered(t *testing.T) {
	s := startServer(t, nil, "--public")
	for range 5 {
		w := dialRawWS(t, s)
		unmasked := []byte{0x81, 2, 'h', 'i'}
		junk := make([]byte, 32<<10)
		w.Write(append(unmasked, junk...))
		if code := w.closeCode(t); code != 1002 {
			t.Fatalf("close %d, want 1002", code)
		}
		w.Conn.(*net.TCPConn).CloseWrite()
		if _, err := io.Copy(io.Discard, w.br); err != nil {
			t.Fatalf("after the close frame: %v, want a clean end of stream", err)
		}
	}
}

// Item 7: a frame left unfinished is cut (1008) after the frame timeout
// (10 s), and a client that stays silent but answers pings, as every
// WebSocket library does, is kept past the first-frame timeout (30 s),
// while one that answers nothing is closed.
func TestHardeningWSStuckAndSilentPeers(t *testing.T) {
	s := startServer(t, nil, "--public")
	t.Run("mid-frame", func(t *testing.T) {
		t.Parallel()
		w := dialRawWS(t, s)
		w.Write(masked(true, 1, []byte(`{"command":"ping"}`)))
		if op, p := w.frame(t); op != 1 || string(p) != `{"type":"pong"}` {
			t.Fatalf("pong: %d %s", op, p)
		}
		full := masked(true, 1, []byte(`{"command":"ping"}`))
		w.Write(full[:5])
		if code := w.closeCode(t); code != 1008 {
			t.Errorf("close %d, want 1008", code)
		}
	})
	t.Run("silent", func(t *testing.T) {
		t.Parallel()
		w := dialRawWS(t, s)
		var sawPing bool
		for {
			op, p := w.frame(t)
			if op == 9 {
				sawPing = true
			}
			if op == 8 {
				if code := wire.BigEndian.Uint16(p); code != 1008 || !sawPing {
					t.Errorf("close %d after ping %v, want 1008 after a ping", code, sawPing)
				}
				return
			}
		}
	})
	t.Run("quiet but alive", func(t *testing.T) {
		t.Parallel()
		c := dialWS(t, s, dialOpts{})
		c.welcome()
		// gorilla answers the server's ping while it reads; run past the
		// first-frame timeout, then prove the connection still works.
		select {
		case ce := <-c.closed:
			t.Fatalf("a client that answers pings was closed: %v", ce)
		case <-time.After(35 * time.Second):
		}
		c.barrier()
	})
}
