package ws

import (
	"net"
	"net/http"

	"github.com/cablehub/cablehub/server/node"
)

// Gate admits a transport's connections into the node; *node.Gate is one.
type Gate interface {
	Serve(conn node.Connection, r *http.Request, o node.SessionOptions)
}

// Handler serves the WebSocket endpoint: it upgrades the request and hands
// the connection to the gate (identification, welcome, commands), then
// returns, so nothing of net/http (goroutine, buffers, request) is kept
// per connection: the transport's poller reads the connection from then
// on.
type Handler struct {
	gate      Gate
	transport *Transport
}

// NewHandler returns the WebSocket endpoint of t, admitting through g.
func NewHandler(g Gate, t *Transport) *Handler {
	return &Handler{gate: g, transport: t}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conn, err := h.transport.Upgrade(w, r)
	if err != nil {
		return // the upgrader has answered (400, 403, 426)
	}
	h.gate.Serve(conn, r, sessionOptions(conn))
}

// ServeRaw serves r, an upgrade request the listener read off nc itself
// (ParseRequest), as ServeHTTP would, without net/http. It reports false
// when the request is not one to upgrade (Transport.UpgradeRaw); then
// nothing has been written and the caller gives the request to net/http,
// whose answer is the refusal.
func (h *Handler) ServeRaw(nc net.Conn, r *http.Request) bool {
	conn, ok := h.transport.UpgradeRaw(nc, r)
	if !ok {
		return false
	}
	h.gate.Serve(conn, r, sessionOptions(conn))
	return true
}

// sessionOptions are the session's options of a connection: Action Cable,
// extended when the client chose AnyCable's extended subprotocol.
func sessionOptions(c *Conn) node.SessionOptions {
	return node.SessionOptions{Extended: c.Subprotocol() == ProtocolExtended}
}

var _ node.Connection = (*Conn)(nil)
