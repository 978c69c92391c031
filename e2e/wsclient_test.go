package e2e

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// wsClient is a test WebSocket client that records every frame it gets.
type wsClient struct {
	t      *testing.T
	conn   *websocket.Conn
	resp   *http.Response
	frames chan string
	closed chan *websocket.CloseError
	// keepPings makes next return ping frames too; pingPrefix is how a
	// server ping starts ("" for Action Cable's).
	keepPings  bool
	pingPrefix string
}

type dialOpts struct {
	query        string
	protocols    []string
	header       http.Header
	paused       bool // do not read until resume is called
	expectStatus int  // expect the upgrade to fail with this status
}

// dialWS connects to the server's /cable (or the path in opts.query's
// prefix) with the extended protocol unless protocols are given.
func dialWS(t *testing.T, s *server, opts dialOpts) *wsClient {
	t.Helper()
	if opts.protocols == nil {
		opts.protocols = []string{"actioncable-v1-ext-json"}
	}
	d := websocket.Dialer{Subprotocols: opts.protocols, HandshakeTimeout: 10 * time.Second}
	url := "ws://" + s.Main + "/cable" + opts.query
	conn, resp, err := d.Dial(url, opts.header)
	if opts.expectStatus != 0 {
		if err == nil {
			conn.Close()
			t.Fatalf("upgrade succeeded, want status %d", opts.expectStatus)
		}
		if resp == nil || resp.StatusCode != opts.expectStatus {
			t.Fatalf("upgrade failed with %v (%v), want status %d", resp, err, opts.expectStatus)
		}
		return nil
	}
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c := &wsClient{t: t, conn: conn, resp: resp, frames: make(chan string, 100000), closed: make(chan *websocket.CloseError, 1)}
	t.Cleanup(func() { conn.Close() })
	if !opts.paused {
		go c.read()
	}
	return c
}

func (c *wsClient) resume() { go c.read() }

func (c *wsClient) read() {
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				c.closed <- ce
			} else {
				c.closed <- &websocket.CloseError{Code: websocket.CloseAbnormalClosure, Text: err.Error()}
			}
			close(c.frames)
			return
		}
		c.frames <- string(data)
	}
}

// next returns the next frame (pings skipped unless keepPings), failing the
// test after timeout.
func (c *wsClient) next(timeout time.Duration) string {
	c.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				c.t.Fatalf("connection closed while waiting for a frame")
			}
			ping := c.pingPrefix
			if ping == "" {
				ping = `{"type":"ping"`
			}
			if !c.keepPings && strings.HasPrefix(f, ping) {
				continue
			}
			return f
		case <-deadline:
			c.t.Fatalf("no frame within %s", timeout)
			return ""
		}
	}
}

// expect checks the next frame byte for byte.
func (c *wsClient) expect(want string) {
	c.t.Helper()
	if got := c.next(5 * time.Second); got != want {
		c.t.Fatalf("frame\n got: %s\nwant: %s", got, want)
	}
}

// welcome reads the welcome frame and returns the sid.
func (c *wsClient) welcome() string {
	c.t.Helper()
	f := c.next(5 * time.Second)
	var w struct {
		Type string `json:"type"`
		SID  string `json:"sid"`
	}
	if err := json.Unmarshal([]byte(f), &w); err != nil || w.Type != "welcome" || f != `{"type":"welcome","sid":"`+w.SID+`"}` {
		c.t.Fatalf("not a welcome: %s", f)
	}
	return w.SID
}

func (c *wsClient) send(frame string) {
	c.t.Helper()
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// barrier proves every earlier frame has been handled: the server answers
// commands in order, so the pong comes after any reply to them.
func (c *wsClient) barrier() {
	c.t.Helper()
	c.send(`{"command":"ping"}`)
	c.expect(`{"type":"pong"}`)
}

// expectClose waits for the close frame (frames before it are skipped).
func (c *wsClient) expectClose(code int, reason string) {
	c.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ce := <-c.closed:
			if ce.Code != code || ce.Text != reason {
				c.t.Fatalf("closed with %d %q, want %d %q", ce.Code, ce.Text, code, reason)
			}
			return
		case <-c.frames:
		case <-deadline:
			c.t.Fatalf("not closed within 10s")
		}
	}
}

func identifier(stream string) string {
	b, _ := json.Marshal(map[string]string{"channel": "$pubsub", "stream_name": stream})
	return string(b)
}

func signedIdentifier(signed string) string {
	b, _ := json.Marshal(map[string]string{"channel": "$pubsub", "signed_stream_name": signed})
	return string(b)
}

func subscribeCmd(id string) string {
	b, _ := json.Marshal(map[string]string{"command": "subscribe", "identifier": id})
	return string(b)
}

func quoted(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// subscribe subscribes to a public stream and waits for the confirmation.
func (c *wsClient) subscribe(stream string) string {
	c.t.Helper()
	id := identifier(stream)
	c.send(subscribeCmd(id))
	c.expect(`{"type":"confirm_subscription","identifier":` + quoted(id) + `}`)
	return id
}
