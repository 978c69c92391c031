package node

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cablehub/cablehub/server/broker"
	"github.com/cablehub/cablehub/server/hub"
	"github.com/cablehub/cablehub/server/identity"
	"github.com/cablehub/cablehub/server/metrics"
	"github.com/cablehub/cablehub/server/streams"
)

// panicRouter accepts every identifier as a stream of that name, and
// panics on "boom": a stand-in for a bug in command handling.
type panicRouter struct{}

func (panicRouter) Subscribe(id string) (*streams.Subscription, error) {
	if id == "boom" {
		panic("router bug")
	}
	if id == "" {
		return nil, errors.New("empty")
	}
	return &streams.Subscription{Stream: id}, nil
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testServer serves a node over WebSocket with r deciding subscriptions and
// no authentication.
func testServer(t *testing.T, r Router, opts Options) (url string, logs *syncBuffer) {
	url, logs, _, _ = testNode(t, r, opts)
	return url, logs
}

// testNode is testServer that also returns the node and its memory broker.
func testNode(t *testing.T, r Router, opts Options) (url string, logs *syncBuffer, n *Node, b *broker.Memory) {
	t.Helper()
	logs = &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b = broker.NewMemory(broker.MemoryOptions{SessionsTTL: time.Minute, HistoryTTL: time.Minute})
	n = New(hub.New(4), b, r, metrics.New(), log, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	srv := httptest.NewServer(serveWS(NewGate(n, identity.NewAuthenticator(nil, true))))
	t.Cleanup(func() {
		srv.Close()
		n.Shutdown(context.Background())
		cancel()
		<-done
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http"), logs, n, b
}

func dial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"actioncable-v1-ext-json"}}
	c, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, msg, err := c.ReadMessage(); err != nil || !strings.HasPrefix(string(msg), `{"type":"welcome"`) {
		t.Fatalf("welcome: %s %v", msg, err)
	}
	return c
}

// A panic while handling one client's command ends that connection with
// 1011 and a logged stack; the process and other clients carry on.
func TestPanicEndsOneConnection(t *testing.T) {
	url, logs := testServer(t, panicRouter{}, Options{})
	victim, other := dial(t, url), dial(t, url)

	victim.WriteMessage(websocket.TextMessage, []byte(`{"command":"subscribe","identifier":"boom"}`))
	_, _, err := victim.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 1011 {
		t.Fatalf("victim: %v, want close 1011", err)
	}
	other.WriteMessage(websocket.TextMessage, []byte(`{"command":"subscribe","identifier":"fine"}`))
	if _, msg, err := other.ReadMessage(); err != nil || string(msg) != `{"type":"confirm_subscription","identifier":"fine"}` {
		t.Fatalf("other client after the panic: %s %v", msg, err)
	}
	if l := logs.String(); !strings.Contains(l, "panic handling client message: router bug") || !strings.Contains(l, "session_test.go") {
		t.Errorf("panic not logged with its stack:\n%s", l)
	}
}

// ?pi= is clamped: a huge value overflowed into many pings a second.
func TestPingIntervalQueryClamped(t *testing.T) {
	for q, want := range map[string]time.Duration{
		"pi=18717284022294576":   time.Hour,
		"pi=9223372036854775807": time.Hour,
		"pi=5":                   5 * time.Second,
		"pi=0":                   0,
		"pi=-1":                  3 * time.Second,
		"pi=x":                   3 * time.Second,
	} {
		s := &Session{pingInterval: 3 * time.Second}
		v, _ := url.ParseQuery(q)
		s.applyQuery(v)
		if s.pingInterval != want {
			t.Errorf("%s: %s, want %s", q, s.pingInterval, want)
		}
	}
}
