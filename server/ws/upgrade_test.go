package ws

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestUpgradeVersion asserts an upgrade request for a WebSocket version
// other than 13 (or none) gets 426 with Sec-WebSocket-Version: 13, and no
// connection; a request that is no upgrade at all still gets 400, and one
// that offers 13 among others is upgraded.
func TestUpgradeVersion(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{})
		for _, tt := range []struct {
			name, headers string
			status        int
		}{
			{"version 8", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\n", 426},
			{"version 14", "Upgrade: WebSocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 14\r\n", 426},
			{"no version", "Upgrade: websocket\r\nConnection: Upgrade\r\n", 426},
			{"no upgrade", "Sec-WebSocket-Version: 8\r\n", 400},
			{"13 among others", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8, 13\r\n", 101},
		} {
			resp := s.request(t, tt.headers+"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
			if resp.StatusCode != tt.status {
				t.Fatalf("%s: %s, want %d", tt.name, resp.Status, tt.status)
			}
			switch tt.status {
			case 426:
				if v := resp.Header.Values("Sec-WebSocket-Version"); len(v) != 1 || v[0] != "13" {
					t.Fatalf("%s: Sec-WebSocket-Version %q, want 13", tt.name, v)
				}
			case 101:
				sc := s.accept(t)
				sc.Abort()
				waitEnded(t, sc)
			}
		}
		select {
		case sc := <-s.conns:
			t.Fatalf("a refused request made a connection: %v", sc)
		default:
		}
	})
}

// request sends a GET with headers (CRLF-terminated lines) on a new TCP
// connection and reads the response head; the connection is closed at
// cleanup.
func (s *testServer) request(t *testing.T, headers string) *http.Response {
	t.Helper()
	addr := s.hs.Listener.Addr().String()
	nc, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(testTimeout))
	if _, err := fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: %s\r\n%s\r\n", addr, headers); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestUpgradeRawWritesGorillasHandshake asserts the 101 response of the
// raw path is, byte for byte, what the net/http path (gorilla) writes for
// the same request, with and without a subprotocol, with Options.Header
// (control bytes in values become spaces in both; with several headers
// gorilla's order is the map's, random, and the raw path's sorted).
func TestUpgradeRawWritesGorillasHandshake(t *testing.T) {
	tr := NewTransport(Options{Header: http.Header{"X-Cablehub-Version": {"1.2\x01b", "2"}}})
	defer tr.Close()
	for _, protocols := range []string{"", "Sec-WebSocket-Protocol: x, actioncable-v1-ext-json\r\n"} {
		head := strings.Replace(upgradeHead, "Sec-WebSocket-Protocol: actioncable-v1-json, actioncable-unsupported\r\n", protocols, 1)
		req, ok := ParseRequest(head)
		if !ok {
			t.Fatalf("not taken: %q", head)
		}
		server, client := net.Pipe()
		defer client.Close()
		raw, ok := tr.UpgradeRaw(server, req)
		if !ok {
			t.Fatal("a valid upgrade was refused")
		}
		rec := &hijackRecorder{}
		gorilla, err := tr.Upgrade(rec, req)
		if err != nil {
			t.Fatal(err)
		}
		if string(raw.prefix) != string(gorilla.prefix) || raw.subprotocol != gorilla.subprotocol {
			t.Fatalf("raw path wrote\n%q\ngorilla\n%q", raw.prefix, gorilla.prefix)
		}
		server.Close()
	}
}

// hijackRecorder is a ResponseWriter whose connection can be hijacked.
type hijackRecorder struct {
	httptest.ResponseRecorder
}

func (h *hijackRecorder) Header() http.Header {
	if h.HeaderMap == nil {
		h.HeaderMap = http.Header{}
	}
	return h.HeaderMap
}

func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, _ := net.Pipe()
	return c, bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c)), nil
}
