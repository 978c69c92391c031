package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const deflateAnswer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

// upgradeExtensions sends an upgrade request for target on addr offering
// offer ("" for none) and returns the 101's Sec-WebSocket-Extensions.
func upgradeExtensions(t *testing.T, addr, target, offer string) string {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	ext := ""
	if offer != "" {
		ext = "Sec-WebSocket-Extensions: " + offer + "\r\n"
	}
	fmt.Fprintf(nc, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: actioncable-v1-json\r\n%s\r\n", target, addr, ext)
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade %s: %v %v", target, resp, err)
	}
	return resp.Header.Get("Sec-WebSocket-Extensions")
}

// TestCompressionNegotiation: with --enable_ws_compression, /cable and the
// Pusher endpoint answer a permessage-deflate offer as AnyCable does (an
// unknown parameter declines the offer, as RFC 7692 asks); a client that
// offers nothing, or a server without the flag, gets no extension. A
// client that agreed reads large broadcasts (gorilla inflates them).
func TestCompressionNegotiation(t *testing.T) {
	t.Parallel()
	s := startPusher(t, "--enable_ws_compression", "--public_streams")
	plain := startServer(t, nil, "--public")
	for _, c := range []struct {
		addr, target, offer, want string
	}{
		{s.Main, "/cable", "permessage-deflate; client_max_window_bits", deflateAnswer},
		{s.Main, "/cable", "permessage-deflate; server_max_window_bits=10", deflateAnswer + "; server_max_window_bits=10"},
		{s.Main, "/cable", "permessage-deflate; bogus_param", ""},
		{s.Main, "/cable", "", ""},
		{s.Main, "/app/" + pusherKey + "?protocol=7", "permessage-deflate; client_max_window_bits", deflateAnswer},
		{plain.Main, "/cable", "permessage-deflate", ""},
	} {
		if got := upgradeExtensions(t, c.addr, c.target, c.offer); got != c.want {
			t.Errorf("%s%s offering %q: %q, want %q", c.addr, c.target, c.offer, got, c.want)
		}
	}

	d := websocket.Dialer{Subprotocols: []string{"actioncable-v1-json"}, EnableCompression: true, HandshakeTimeout: 10 * time.Second}
	open := startServer(t, nil, "--public", "--enable_ws_compression")
	conn, resp, err := d.Dial("ws://"+open.Main+"/cable", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if resp.Header.Get("Sec-WebSocket-Extensions") != deflateAnswer {
		t.Fatalf("gorilla's offer: %q", resp.Header.Get("Sec-WebSocket-Extensions"))
	}
	c := &wsClient{t: t, conn: conn, frames: make(chan string, 100), closed: make(chan *websocket.CloseError, 1)}
	go c.read()
	c.welcome()
	id := quoted(c.subscribe("zipped"))
	big := strings.Repeat("compress me ", 1000)
	publish(t, open, `{"stream":"zipped","data":"`+big+`"}`)
	if f := c.next(5 * time.Second); !strings.HasPrefix(f, `{"identifier":`+id+`,"message":"`+big+`"`) {
		t.Fatalf("broadcast %.200s", f)
	}
}
