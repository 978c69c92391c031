package ws

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// tlsSocketListener serves TLS on connections made on TLSSocket.
type tlsSocketListener struct {
	net.Listener
	config *tls.Config
}

func (l *tlsSocketListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return tls.Server(NewTLSSocket(c), l.config), nil
}

// testTLSConfig is a server configuration with httptest's certificate.
func testTLSConfig(t *testing.T) *tls.Config {
	hs := httptest.NewUnstartedServer(nil)
	hs.StartTLS()
	defer hs.Close()
	return &tls.Config{Certificates: hs.TLS.Certificates}
}

// TestTLSConnections: a TLS connection is read by the poller (through the
// TLS layer, without a goroutine while idle) and written by a goroutine
// while it has output; messages flow both ways, in order, large ones (many
// records) too, and compressed ones over TLS.
func TestTLSConnections(t *testing.T) {
	config := testTLSConfig(t)
	for _, p := range []path{{poll: true}, {}} {
		t.Run(fmt.Sprintf("poller=%v", p.poll), func(t *testing.T) {
			opts := deflateOpts()
			opts.MaxMessageSize = 1 << 20
			s := newTestServer(t, p, serverConfig{opts: opts, tls: config})
			d := &websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, EnableCompression: true}
			c, sc := s.dial(t, d, nil)
			if onPoller := sc.tlsSock != nil; onPoller != p.poll {
				t.Fatalf("read through the poller: %v, want %v", onPoller, p.poll)
			}
			if sc.flusher != nil {
				t.Fatal("a TLS connection has a flusher: it would write plaintext")
			}
			big := strings.Repeat("0123456789", 50_000)
			for i := range 50 {
				msg := fmt.Sprintf("client %d", i)
				if i%10 == 0 {
					msg += big
				}
				if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
					t.Fatal(err)
				}
				if got := nextMsg(t, sc); string(got) != msg {
					t.Fatalf("message %d: %q", i, preview(got))
				}
				sc.Send([]byte("server "+msg), nil)
				_, got, err := c.ReadMessage()
				if err != nil || string(got) != "server "+msg {
					t.Fatalf("reply %d: %q %v", i, preview(got), err)
				}
			}
			c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(testTimeout))
			waitEnded(t, sc)
		})
	}
}

// TestTLSIdleHoldsNoGoroutine: idle TLS connections on the poller hold no
// goroutine of the server's (the goroutine path holds one each).
func TestTLSIdleHoldsNoGoroutine(t *testing.T) {
	config := testTLSConfig(t)
	s := newTestServer(t, path{poll: true}, serverConfig{opts: deflateOpts(), tls: config})
	d := &websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	c, sc := s.dial(t, d, nil)
	sc.Send([]byte("first"), nil)
	c.ReadMessage()
	base := runtime.NumGoroutine()
	const n = 30
	for range n {
		c, sc := s.dial(t, d, nil)
		sc.Send([]byte("hello"), nil)
		if _, got, err := c.ReadMessage(); err != nil || string(got) != "hello" {
			t.Fatalf("%q %v", got, err)
		}
	}
	eventually(t, testTimeout, "idle TLS connections to hold no goroutine", func() bool {
		return runtime.NumGoroutine()-base < n/3
	})
}
