package ws

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
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
