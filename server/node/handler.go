package node

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"cablehub/server/identity"
	"cablehub/server/protocol"
	"cablehub/server/ws"
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
		return // the upgrader has answered (400, 403)
	}
	sid := r.Header.Get("X-Request-ID")
	if sid == "" {
		sid = newSID()
	}
	s := &Session{
		node:          h.node,
		conn:          conn,
		sid:           sid,
		extended:      conn.Subprotocol() == ws.ProtocolExtended,
		pingInterval:  h.node.opts.PingInterval,
		pingPrecision: h.node.opts.PingPrecision,
	}
	// A resumable client that names its previous session gets it back
	// instead of identifying again, as in AnyCable.
	var cached *cachedState
	if s.resumable() {
		cached = h.cachedSession(r)
	}
	if cached != nil {
		s.identifiers = cached.Identifiers
	} else {
		identifiers, err := h.auth.Authenticate(r)
		if err != nil {
			h.node.metrics.FailedAuthsTotal.Inc()
			h.refuse(conn, err)
			conn.Serve(nil, nil)
			return
		}
		s.identifiers = identifiers
	}
	q := r.URL.Query()
	if pi := q.Get("pi"); pi != "" {
		if secs, err := strconv.Atoi(pi); err == nil && secs >= 0 {
			s.pingInterval = time.Duration(secs) * time.Second
		}
	}
	switch q.Get("ptp") {
	case "s", "ms", "ns":
		s.pingPrecision = q.Get("ptp")
	}
	var restored []string
	if cached != nil {
		restored = s.restore(cached)
	}
	if !s.start(restored) {
		conn.Serve(nil, s.end)
		return
	}
	conn.Serve(s.handle, s.end)
}

// cachedSession returns the state of the session the request asks to
// restore (header X-AnyCable-Restore-Sid, else ?sid=), nil for none.
func (h *Handler) cachedSession(r *http.Request) *cachedState {
	prev := r.Header.Get("X-AnyCable-Restore-Sid")
	if prev == "" {
		prev = r.URL.Query().Get("sid")
	}
	if prev == "" {
		return nil
	}
	data, err := h.node.broker.RestoreSession(r.Context(), prev)
	if err != nil {
		return nil
	}
	var state cachedState
	if err := json.Unmarshal(data, &state); err != nil {
		h.node.log.Warn("cached session unreadable", "sid", prev, "error", err)
		return nil
	}
	return &state
}

// refuse tells a client why it is not welcome and closes: a disconnect
// message and 1000 "Auth Failed" for bad or expired credentials, a bare
// 1011 "Auth Error" for a token without identifiers.
func (h *Handler) refuse(conn *ws.Conn, err error) {
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
