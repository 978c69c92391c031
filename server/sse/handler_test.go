package sse

import (
	"bufio"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cablehub/cablehub/server/node"
	"github.com/cablehub/cablehub/server/protocol"
	"github.com/cablehub/cablehub/server/ws"
)

// scriptedGate plays a session's start on the connection it is given.
type scriptedGate func(c node.Connection, o node.SessionOptions)

func (g scriptedGate) Serve(c node.Connection, _ *http.Request, o node.SessionOptions) { g(c, o) }

// answer serves a GET through a gate playing script and returns the
// status line and headers the client reads.
func answer(t *testing.T, script scriptedGate) *http.Response {
	t.Helper()
	tr := ws.NewTransport(ws.Options{})
	t.Cleanup(tr.Close)
	h := NewHandler(script, tr, Options{}, slog.New(slog.DiscardHandler))
	server, client := net.Pipe()
	t.Cleanup(func() { client.Close() })
	r := httptest.NewRequest("GET", "/events?stream=s", nil)
	go h.ServeRaw(server, r)
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(client), r)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// The status of a session that ends before it starts says why: who is not
// identified gets 401, a rejected subscription 400, a server that cannot
// take the client now 503.
func TestRefusals(t *testing.T) {
	welcome := Codec{}.Encode(protocol.Welcome("sid", nil))
	cases := []struct {
		name   string
		script scriptedGate
		status int
		header string
	}{
		{"unauthorized", func(c node.Connection, _ node.SessionOptions) {
			c.Close(1000, "Auth Failed", Codec{}.Encode(protocol.Disconnect(protocol.ReasonUnauthorized, false)))
			c.Serve(nil, func() {})
		}, 401, "Www-Authenticate"},
		{"rejected", func(c node.Connection, _ node.SessionOptions) {
			c.Send(welcome, nil)
			c.Send(Codec{}.Encode(protocol.Reject("x")), nil)
			c.Serve(nil, func() {})
		}, 400, ""},
		{"shutting down", func(c node.Connection, _ node.SessionOptions) {
			c.Close(1001, "Server restart", Codec{}.Encode(protocol.Disconnect(protocol.ReasonServerRestart, true)))
			c.Serve(nil, func() {})
		}, 503, "Retry-After"},
		{"over --max-conn", func(c node.Connection, _ node.SessionOptions) {
			c.Close(1013, "Try Again Later", nil)
			c.Serve(nil, nil)
		}, 503, "Retry-After"},
		{"pub/sub down", func(c node.Connection, _ node.SessionOptions) {
			c.Send(welcome, nil)
			c.Serve(nil, func() {})
			c.Close(1000, "", Codec{}.Encode(protocol.Disconnect(protocol.ReasonStreamUnavailable, true)))
		}, 503, "Retry-After"},
		{"confirmed", func(c node.Connection, o node.SessionOptions) {
			if len(o.Commands) != 1 || o.Commands[0].Identifier != `{"channel":"$pubsub","stream_name":"s"}` {
				panic("commands")
			}
			c.Send(welcome, nil)
			c.Serve(nil, func() {})
			c.Send(Codec{}.Encode(protocol.Confirm(o.Commands[0].Identifier)), nil)
		}, 200, "Transfer-Encoding"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := answer(t, tc.script)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if tc.header == "Transfer-Encoding" {
				if len(res.TransferEncoding) != 1 {
					t.Errorf("not chunked: %v", res.TransferEncoding)
				}
			} else if tc.header != "" && res.Header.Get(tc.header) == "" {
				t.Errorf("no %s: %v", tc.header, res.Header)
			}
		})
	}
}

// HTTP/2 requests cannot take the socket: 505.
func TestHTTP2Refused(t *testing.T) {
	h := NewHandler(scriptedGate(func(node.Connection, node.SessionOptions) { panic("served") }), ws.NewTransport(ws.Options{}), Options{}, slog.New(slog.DiscardHandler))
	r := httptest.NewRequest("GET", "/events?stream=s", nil)
	r.ProtoMajor, r.ProtoMinor = 2, 0
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusHTTPVersionNotSupported {
		t.Errorf("HTTP/2: %d", w.Code)
	}
}
