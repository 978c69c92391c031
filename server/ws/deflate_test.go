package ws

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/klauspost/compress/flate"
)

const agreed = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

// TestNegotiateDeflate: the answers AnyCable gives to the offers browsers,
// ws and other clients make, except where RFC 7692 says otherwise (a
// server_max_window_bits is echoed, an unknown parameter declines the
// offer).
func TestNegotiateDeflate(t *testing.T) {
	cases := []struct {
		offer []string
		want  string // "" declines
		bits  uint8
	}{
		{nil, "", 0},
		{[]string{"permessage-deflate"}, agreed, 15},
		{[]string{"permessage-deflate; client_max_window_bits"}, agreed, 15},
		{[]string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover"}, agreed, 15},
		{[]string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits"}, agreed, 15},
		{[]string{"permessage-deflate; client_max_window_bits=10"}, agreed, 15},
		{[]string{`permessage-deflate; client_max_window_bits="10"`}, agreed, 15},
		{[]string{"permessage-deflate; server_max_window_bits=10"}, agreed + "; server_max_window_bits=10", 10},
		{[]string{"permessage-deflate; server_max_window_bits=10; client_max_window_bits"}, agreed + "; server_max_window_bits=10", 10},
		{[]string{"x-webkit-deflate-frame"}, "", 0},
		{[]string{"permessage-deflate; server_max_window_bits=10, permessage-deflate"}, agreed + "; server_max_window_bits=10", 10},
		{[]string{"foo, permessage-deflate; bogus_param"}, "", 0},
		{[]string{"permessage-deflate; bogus_param, permessage-deflate"}, agreed, 15},
		{[]string{"foo", "permessage-deflate"}, agreed, 15},
		{[]string{"PerMessage-Deflate"}, agreed, 15},
		// Declined: a value out of range, missing, or where none is allowed;
		// a parameter twice.
		{[]string{"permessage-deflate; server_max_window_bits=16"}, "", 0},
		{[]string{"permessage-deflate; server_max_window_bits=7"}, "", 0},
		{[]string{"permessage-deflate; server_max_window_bits=010"}, "", 0},
		{[]string{"permessage-deflate; server_max_window_bits"}, "", 0},
		{[]string{"permessage-deflate; client_max_window_bits=x"}, "", 0},
		{[]string{"permessage-deflate; server_no_context_takeover=1"}, "", 0},
		{[]string{"permessage-deflate; client_no_context_takeover; client_no_context_takeover"}, "", 0},
	}
	for _, c := range cases {
		h := http.Header{}
		for _, v := range c.offer {
			h.Add("Sec-WebSocket-Extensions", v)
		}
		p, ok := negotiateDeflate(h)
		if ok != (c.want != "") || p.response != c.want || p.windowBits != c.bits {
			t.Errorf("%q: %v %q bits %d, want %q bits %d", c.offer, ok, p.response, p.windowBits, c.want, c.bits)
		}
	}
}

// deflateOpts are options with compression on, compressing messages of 64
// bytes and more.
func deflateOpts() Options {
	return Options{Compression: true, CompressionMinSize: 64, MaxMessageSize: 1 << 16}
}

// openDeflate connects a raw client offering extensions (none when ""),
// and returns it with the upgrade response's headers.
func (s *testServer) openDeflate(t *testing.T, extensions string) (*rawClient, *serverConn, http.Header) {
	t.Helper()
	addr := s.hs.Listener.Addr().String()
	nc, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	ext := ""
	if extensions != "" {
		ext = "Sec-WebSocket-Extensions: " + extensions + "\r\n"
	}
	nc.SetDeadline(time.Now().Add(testTimeout))
	fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n", addr, ext)
	rc := &rawClient{t: t, nc: nc, br: bufio.NewReader(nc)}
	sc := s.accept(t)
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	return rc, sc, resp.Header
}

// deflated is p compressed as a client sends it: raw deflate without the
// sync flush's tail.
func deflated(t *testing.T, p []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestCompression)
	w.Write(p)
	w.Flush()
	out := b.Bytes()
	if !bytes.HasSuffix(out, []byte(deflateTail)) {
		t.Fatalf("no sync flush tail: %x", out)
	}
	return out[:len(out)-4]
}

// readMessage reads a server frame and inflates it when RSV1 is set.
func readMessage(t *testing.T, rc *rawClient) (payload []byte, compressed bool) {
	t.Helper()
	rc.nc.SetReadDeadline(time.Now().Add(testTimeout))
	f, err := readServerFrame(rc.br)
	if err != nil {
		t.Fatal(err)
	}
	if f.rsv&^0x40 != 0 || !f.fin || f.op != opText {
		t.Fatalf("frame %v rsv %#x", f, f.rsv)
	}
	if f.rsv == 0 {
		return f.payload, false
	}
	out, cerr := (&deflateCodec{}).inflate(f.payload, 1<<20)
	if cerr != nil {
		t.Fatalf("server frame does not inflate: %v", cerr)
	}
	return out, true
}

// TestDeflateServerFrames: a client that agreed compression gets messages
// from the threshold up compressed (RSV1), smaller ones plain; a client
// that offered nothing gets plain frames from the same server; both read
// the same messages.
func TestDeflateServerFrames(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{opts: deflateOpts()})
		zc, zsc, zh := s.openDeflate(t, "permessage-deflate; client_max_window_bits")
		pc, psc, ph := s.openDeflate(t, "")
		if got := zh.Get("Sec-WebSocket-Extensions"); got != agreed {
			t.Fatalf("extension answer %q", got)
		}
		if got, ok := ph["Sec-Websocket-Extensions"]; ok {
			t.Fatalf("extension answered to no offer: %q", got)
		}
		small := []byte(`{"type":"welcome","sid":"abc"}`)
		big := []byte(`{"identifier":"{\"channel\":\"$pubsub\",\"stream_name\":\"z\"}","message":{"text":"` + strings.Repeat("hello ", 40) + `"}}`)
		for _, sc := range []*serverConn{zsc, psc} {
			sc.Send(small, nil)
			sc.Send(big, nil)
		}
		for _, c := range []struct {
			rc       *rawClient
			deflated bool
		}{{zc, true}, {pc, false}} {
			if got, z := readMessage(t, c.rc); !bytes.Equal(got, small) || z {
				t.Fatalf("small message %q compressed %v", got, z)
			}
			if got, z := readMessage(t, c.rc); !bytes.Equal(got, big) || z != c.deflated {
				t.Fatalf("big message %q compressed %v, want %v", preview(got), z, c.deflated)
			}
		}
	})
}

// TestDeflateGorillaClient: gorilla's client with compression on reads
// many messages, small and large, in order, and its compressed messages
// reach the handler inflated.
func TestDeflateGorillaClient(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{opts: deflateOpts()})
		c, sc := s.dial(t, &websocket.Dialer{EnableCompression: true}, nil)
		const n = 300
		for i := range n {
			sc.Send(fmt.Appendf(nil, `{"n":%d,"pad":%q}`, i, strings.Repeat("x", i*7)), nil)
		}
		for i := range n {
			_, got, err := c.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf(`{"n":%d,"pad":%q}`, i, strings.Repeat("x", i*7)); string(got) != want {
				t.Fatalf("message %d: %q", i, preview(got))
			}
		}
		c.EnableWriteCompression(true)
		want := []byte(strings.Repeat("compressible ", 500))
		if err := c.WriteMessage(websocket.TextMessage, want); err != nil {
			t.Fatal(err)
		}
		if got := nextMsg(t, sc); !bytes.Equal(got, want) {
			t.Fatalf("client message %q", preview(got))
		}
	})
}

// TestDeflateClientFrames: compressed client messages, whole and
// fragmented, are inflated; a message inflating past the limit closes
// with 1009; bytes that are not deflate close with 1007; RSV1 on a
// continuation or control frame, or from a client that did not agree
// compression, is a protocol error.
func TestDeflateClientFrames(t *testing.T) {
	text := []byte(`{"command":"message","data":"` + strings.Repeat("ab", 300) + `"}`)
	z := deflated(t, text)
	bomb := deflated(t, bytes.Repeat([]byte{'a'}, 1<<20))
	if len(bomb) > 1<<16 {
		t.Fatalf("bomb of %d bytes is over the frame limit", len(bomb))
	}
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{opts: deflateOpts()})
		rc, sc, _ := s.openDeflate(t, "permessage-deflate")
		rc.write(encodeFrame(0x80|rsv1|opText, z, true, testMask))
		rc.write(encodeFrame(rsv1|opText, z[:5], true, testMask), encodeFrame(0x80|opContinuation, z[5:], true, testMask))
		rc.write(cframe(opText, "plain"))
		for _, want := range [][]byte{text, text, []byte("plain")} {
			if got := nextMsg(t, sc); !bytes.Equal(got, want) {
				t.Fatalf("got %q, want %q", preview(got), preview(want))
			}
		}

		for _, c := range []struct {
			frames [][]byte
			code   int
			reason string
		}{
			{[][]byte{encodeFrame(0x80|rsv1|opText, bomb, true, testMask)}, closeTooBig, ""},
			{[][]byte{encodeFrame(0x80|rsv1|opText, []byte{0xff, 0xff, 0xff}, true, testMask)}, closeInvalidData, "invalid compressed message"},
			{[][]byte{encodeFrame(0x80|rsv1|opBinary, deflated(t, []byte{0xff, 0xfe}), true, testMask)}, -1, ""},
			{[][]byte{encodeFrame(0x80|rsv1|opText, deflated(t, []byte{0xff, 0xfe}), true, testMask)}, closeInvalidData, "text message is not UTF-8"},
			{[][]byte{encodeFrame(opText, []byte("abc"), true, testMask), encodeFrame(0x80|rsv1|opContinuation, []byte("def"), true, testMask)}, closeProtocolError, "reserved bits set without an extension"},
			{[][]byte{encodeFrame(0x80|rsv1|opPing, nil, true, testMask)}, closeProtocolError, "reserved bits set without an extension"},
		} {
			rc, sc, _ := s.openDeflate(t, "permessage-deflate")
			rc.write(c.frames...)
			if c.code < 0 { // accepted: a binary message is not checked as text
				if got := nextMsg(t, sc); !bytes.Equal(got, []byte{0xff, 0xfe}) {
					t.Fatalf("binary message %q", got)
				}
				continue
			}
			rc.expectClose(c.code, c.reason)
		}
		rc, _, _ = s.openDeflate(t, "")
		rc.write(encodeFrame(0x80|rsv1|opText, z, true, testMask))
		rc.expectClose(closeProtocolError, "reserved bits set without an extension")
	})
}

// TestDeflateOncePerBroadcast: the same message sent to many connections
// is compressed once; an equal message in another buffer, or another
// window, is compressed again.
func TestDeflateOncePerBroadcast(t *testing.T) {
	d := &deflateCodec{}
	msg := []byte(strings.Repeat(`{"a":"broadcast"}`, 30))
	first := d.compressed(msg, 15)
	for range 100 {
		if again := d.compressed(msg, 15); &again[0] != &first[0] {
			t.Fatal("the same message was compressed again")
		}
	}
	if other := d.compressed(bytes.Clone(msg), 15); &other[0] == &first[0] || !bytes.Equal(other, first) {
		t.Fatal("an equal message in another buffer shares the cache entry, or compresses differently")
	}
	if narrow := d.compressed(msg, 9); &narrow[0] == &first[0] {
		t.Fatal("another window shares the cache entry")
	}
	back, err := d.inflate(first, int64(len(msg)))
	if err != nil || !bytes.Equal(back, msg) {
		t.Fatalf("round trip: %v", err)
	}
}
