package pusher

import (
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cablehub/cablehub/server/node"
	"github.com/cablehub/cablehub/server/ws"
)

// Gate admits connections into the node; *node.Gate is one.
type Gate interface {
	Serve(conn node.Connection, r *http.Request, o node.SessionOptions)
}

// ActivityTimeout is the activity_timeout clients are told, how often the
// server pings a connection (pusher:ping), and how long it has to answer
// (as pusher-js gives the server): a client that stops answering is
// closed with 4201, so one whose network died is gone within a minute.
const ActivityTimeout = 30 * time.Second

// Handler serves Pusher WebSocket connections at /app/<key> (protocol 7):
// it upgrades the request with the WebSocket transport and hands the
// connection to the gate as an anonymous session with the Pusher codec
// and router, a server-made socket_id, presence that ends with the
// connection, and pings it must answer. A key other than the app's is
// upgraded and told pusher:error 4001, then closed with 4001, as Pusher
// does; so is a protocol version outside 4-7 (4007).
type Handler struct {
	gate      Gate
	transport *ws.Transport
	app       *App
	opts      node.SessionOptions
	metrics   *Metrics
	// clients counts the open connections (Clients).
	clients atomic.Int64
}

// Clients is the number of open Pusher connections.
func (h *Handler) Clients() int64 { return h.clients.Load() }

// NewHandler returns the WebSocket endpoint of app, upgrading with t and
// admitting through g; m may be nil.
func NewHandler(g Gate, t *ws.Transport, app *App, m *Metrics) *Handler {
	return &Handler{
		gate: g, transport: t, app: app, metrics: m,
		opts: node.SessionOptions{
			Codec:        Codec{ActivityTimeout: int(ActivityTimeout / time.Second)},
			PingInterval: ActivityTimeout,
			Anonymous:    true,
			Router:       &Router{App: app},
			LeaveOnClose: true,
			PongTimeout:  ActivityTimeout,
		},
	}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := h.transport.Upgrade(w, r)
	if err != nil {
		return // the upgrader has answered (400, 403, 426)
	}
	h.serve(c, r)
}

// ServeRaw serves an upgrade request the listener read off nc itself, as
// ServeHTTP would; false when it is not one to upgrade (see
// ws.Handler.ServeRaw).
func (h *Handler) ServeRaw(nc net.Conn, r *http.Request) bool {
	c, ok := h.transport.UpgradeRaw(nc, r)
	if !ok {
		return false
	}
	h.serve(c, r)
	return true
}

func (h *Handler) serve(c *ws.Conn, r *http.Request) {
	if code, msg := h.refusal(r); code != 0 {
		c.Close(code, "", errorFrame(code, msg))
		c.Serve(nil, nil)
		return
	}
	pc := &conn{Connection: c, app: h.app, events: h.metrics, clients: &h.clients}
	o := h.opts
	o.NewSID = pc.nextSocketID
	h.gate.Serve(pc, r, o)
}

// refusal is the close code and message of a request the endpoint does
// not serve: another app's key, an unsupported protocol version.
func (h *Handler) refusal(r *http.Request) (int, string) {
	key := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	if key != h.app.Key {
		return codeUnknownApp, "App key " + strconv.Quote(key) + " not in this cluster"
	}
	if p := r.URL.Query().Get("protocol"); p != "" {
		if v, err := strconv.Atoi(p); err != nil || v < 4 || v > 7 {
			return codeProtocol, "Unsupported protocol version " + strconv.Quote(p)
		}
	}
	return 0, ""
}

// NewSocketID makes a socket_id: two decimal numbers joined by a dot, as
// Pusher's SDKs check (^\d+\.\d+$), random, so that no client can guess
// another's.
func NewSocketID() string {
	b := strconv.AppendUint(nil, rand.Uint64N(1e9), 10)
	b = append(b, '.')
	return string(strconv.AppendUint(b, rand.Uint64N(1e9), 10))
}
