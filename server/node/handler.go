package node

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cablehub/cablehub/server/identity"
	"github.com/cablehub/cablehub/server/protocol"
	"github.com/cablehub/cablehub/server/ws"
)

// Authenticator identifies a connection from its upgrade request;
// identity.Authenticator is one.
type Authenticator interface {
	Authenticate(r *http.Request) (identifiers string, err error)
}

// Handler serves the WebSocket endpoint: upgrade, identification, welcome,
// then the connection is handed to the transport's reader and the HTTP
// handler returns, so nothing of net/http (goroutine, buffers, request) is
// kept per connection.
type Handler struct {
	node      *Node
	transport *ws.Transport
	auth      Authenticator
}

// NewHandler returns the WebSocket endpoint for n.
func NewHandler(n *Node, t *ws.Transport, a Authenticator) *Handler {
	return &Handler{node: n, transport: t, auth: a}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conn, err := h.transport.Upgrade(w, r)
	if err != nil {
		return // the upgrader has answered (400, 403, 426)
	}
	h.admit(conn, r)
}

// ServeRaw serves r, an upgrade request the listener read off nc itself
// (ws.ParseRequest), as ServeHTTP would, without net/http. It reports false
// when the request is not one to upgrade (ws.Transport.UpgradeRaw); then
// nothing has been written and the caller gives the request to net/http,
// whose answer is the refusal.
func (h *Handler) ServeRaw(nc net.Conn, r *http.Request) bool {
	conn, ok := h.transport.UpgradeRaw(nc, r)
	if !ok {
		return false
	}
	h.admit(conn, r)
	return true
}

// admit serves an upgraded connection, or refuses it over --max-conn.
func (h *Handler) admit(conn *ws.Conn, r *http.Request) {
	if h.node.conns.max <= 0 {
		h.serve(conn, r)
		return
	}
	if !h.node.conns.acquire() {
		h.refuseOverLimit(conn)
		return
	}
	h.serve(countedConn{conn, h.node.conns.release}, r)
}

// serve runs the session of an upgraded connection: restore or
// identification, registration, welcome, then conn reads the client's
// commands. r is the upgrade request, read here only.
func (h *Handler) serve(conn Connection, r *http.Request) {
	s := newSession(h.node, conn)
	app := h.node.opts.App
	if app != nil {
		s.env = captureEnv(r, &h.node.opts.AppOptions)
	}
	// A resumable client that names its previous session gets it back
	// instead of identifying again, as in AnyCable.
	var prev string
	var cached *cachedState
	if s.resumable() {
		prev, cached = h.cachedSession(r)
	}
	viaApp := false
	if cached != nil {
		s.identifiers = cached.Identifiers
	} else {
		identifiers, err := h.auth.Authenticate(r)
		switch {
		case err == nil:
			s.identifiers = identifiers
		case errors.Is(err, identity.ErrNotIdentified) && app != nil:
			viaApp = true // the App's Connect decides, once the session has its sid
		default:
			if errors.Is(err, identity.ErrNotIdentified) {
				h.node.warnNoApp("connection", "connections without a JWT are refused")
			}
			h.node.metrics.FailedAuthsTotal.Inc()
			h.refuse(conn, err)
			conn.Serve(nil, s.cancel)
			return
		}
	}
	s.applyQuery(r.URL.Query())
	if !h.node.register(s, requestSID(r.Header.Get("X-Request-ID"))) {
		if cached != nil {
			// Taken for nothing: leave it for a restore on another node.
			s.putBack(prev, cached)
		}
		s.close(1001, "Server restart", protocol.Disconnect(protocol.ReasonServerRestart, true))
		conn.Serve(nil, s.cancel)
		return
	}
	if viaApp && !s.connectApp() {
		h.node.unregister(s)
		conn.Serve(nil, s.cancel)
		return
	}
	var restored []string
	if cached != nil {
		restored = s.restore(cached)
	}
	// The App's answer carried its own welcome (or none, as it chose).
	s.start(restored, !viaApp)
	conn.Serve(s.handle, s.end)
}

// maxPingInterval caps ?pi=: larger values only disable pings in effect,
// and unbounded ones overflowed into many pings a second.
const maxPingInterval = time.Hour

// applyQuery takes the per-connection options: pi (ping interval in
// seconds, 0 disables, capped at maxPingInterval) and ptp (timestamp
// precision). Invalid values keep the server's defaults.
func (s *Session) applyQuery(q url.Values) {
	if pi := q.Get("pi"); pi != "" {
		if secs, err := strconv.ParseInt(pi, 10, 64); err == nil && secs >= 0 {
			s.pingInterval = time.Duration(min(secs, int64(maxPingInterval/time.Second))) * time.Second
		}
	}
	switch q.Get("ptp") {
	case "s", "ms", "ns":
		s.pingPrecision = q.Get("ptp")
	}
}

// maxRequestSID is the longest X-Request-ID taken as a session id.
const maxRequestSID = 128

// requestSID returns the X-Request-ID header as a session id, as AnyCable
// takes it (load balancers set it to trace requests), or "" when it is not
// one: longer than maxRequestSID or holding anything but letters, digits
// and "-_.:" (UUIDs, nanoids, trace ids). The header is client input; the
// sid travels in logs, broker keys and the welcome.
func requestSID(v string) string {
	if len(v) > maxRequestSID {
		return ""
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return ""
		}
	}
	// A copy: v may be a slice of the whole request head, which the
	// session would otherwise keep alive.
	return strings.Clone(v)
}

// cachedSession takes the state of the session the request asks to
// restore (header X-AnyCable-Restore-Sid, else ?sid=): its sid and state,
// or nil for none.
func (h *Handler) cachedSession(r *http.Request) (string, *cachedState) {
	prev := r.Header.Get("X-AnyCable-Restore-Sid")
	if prev == "" {
		prev = r.URL.Query().Get("sid")
	}
	if prev == "" || len(prev) > maxRequestSID {
		return "", nil
	}
	prev = strings.Clone(prev) // may be kept; not a slice of the request head
	ctx, cancel := context.WithTimeout(r.Context(), brokerTimeout)
	defer cancel()
	data, err := h.node.broker.RestoreSession(ctx, prev)
	if err != nil {
		return "", nil
	}
	var state cachedState
	if err := json.Unmarshal(data, &state); err != nil {
		h.node.log.Warn("cached session unreadable", "sid", prev, "error", err)
		return "", nil
	}
	return prev, &state
}

// refuse tells a client why it is not welcome and closes: a disconnect
// message and 1000 "Auth Failed" for bad or expired credentials, a bare
// 1011 "Auth Error" for a token without identifiers.
func (h *Handler) refuse(conn Connection, err error) {
	switch {
	case errors.Is(err, identity.ErrExpired):
		conn.Close(1000, "Auth Failed", protocol.Disconnect(protocol.ReasonTokenExpired, false))
	case errors.Is(err, identity.ErrUnauthorized):
		conn.Close(1000, "Auth Failed", protocol.Disconnect(protocol.ReasonUnauthorized, false))
	default:
		h.node.log.Warn("authentication error", "error", err)
		conn.Close(1011, "Auth Error", nil)
	}
}

const sidAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"

// newSID returns a random 21-character id in the nanoid alphabet, like
// AnyCable's session ids.
func newSID() string {
	var b [21]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = sidAlphabet[b[i]&63]
	}
	return string(b[:])
}
