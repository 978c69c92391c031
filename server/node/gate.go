package node

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cablehub/cablehub/server/identity"
	"github.com/cablehub/cablehub/server/protocol"
)

// Authenticator identifies a connection from its upgrade request;
// identity.Authenticator is one.
type Authenticator interface {
	Authenticate(r *http.Request) (identity.Identity, error)
}

// Gate admits the connections of every transport into the node: the
// --max-conn count, restore of a previous session or identification,
// registration, welcome, the transport's initial commands, then the
// connection reads the client's commands. A transport (the WebSocket
// handler in package ws, Server-Sent Events, ...) accepts a connection in
// its own way and hands it to Serve; nothing else of the node is
// transport-specific.
type Gate struct {
	node *Node
	auth Authenticator
	// testSID, set by tests only, names a session from its request;
	// otherwise every sid is a new random one.
	testSID func(r *http.Request) string
}

// NewGate returns the gate of n, identifying clients with a.
func NewGate(n *Node, a Authenticator) *Gate {
	return &Gate{node: n, auth: a}
}

// Serve runs the session of conn, a connection its transport has
// accepted; r is the request that opened it (its headers, query and
// cookies identify the client, see Authenticator), read during Serve
// only. o is what the transport decides for its sessions. Over --max-conn
// the client is refused (close 1013, see refuseOverLimit). Serve returns
// once the session is welcomed or refused, its connection reading
// (Connection.Serve).
func (h *Gate) Serve(conn Connection, r *http.Request, o SessionOptions) {
	if h.node.conns.max <= 0 {
		h.serve(conn, r, &o)
		return
	}
	if !h.node.conns.acquire() {
		h.refuseOverLimit(conn, o.codec())
		return
	}
	h.serve(countedConn{conn, h.node.conns.release}, r, &o)
}

// serve runs the session of an accepted connection: restore or
// identification, registration, welcome, the transport's commands, then
// conn reads the client's commands.
func (h *Gate) serve(conn Connection, r *http.Request, o *SessionOptions) {
	s := newSession(h.node, conn, o)
	if h.node.opts.App != nil {
		s.env = captureEnv(r, &h.node.opts.AppOptions)
	}
	s.applyQuery(r.URL.Query())
	var wanted string
	if h.testSID != nil {
		wanted = h.testSID(r)
	}
	// A resumable client that names its previous session gets it back
	// instead of identifying again, as in AnyCable.
	if s.resumable() && h.restore(s, r, wanted, o) {
		return
	}
	viaApp, ok := false, true
	if !o.Anonymous {
		viaApp, ok = h.identify(s, r)
	}
	if !ok {
		return
	}
	if err := h.node.register(s, wanted, false); err != nil {
		h.refuseRestart(s)
		return
	}
	if viaApp && !s.connectApp() {
		h.node.unregister(s)
		conn.Serve(nil, s.cancel)
		return
	}
	h.logConnected(s, r, "")
	// The App's answer carried its own welcome (or none, as it chose).
	s.start(nil, !viaApp)
	s.runInitial(o.Commands)
	conn.Serve(s.handle, s.end)
}

// identify authenticates a new session: its identity, or viaApp when the
// App's Connect decides (once the session has its sid). It reports false
// when the connection was refused.
func (h *Gate) identify(s *Session, r *http.Request) (viaApp, ok bool) {
	id, err := h.auth.Authenticate(r)
	switch {
	case err == nil:
		s.identifiers, s.expires = id.Identifiers, id.Expires
		return false, true
	case errors.Is(err, identity.ErrNotIdentified) && h.node.opts.App != nil:
		return true, true
	}
	if errors.Is(err, identity.ErrNotIdentified) {
		h.node.warnNoApp("connection", "connections without a JWT are refused")
	}
	h.node.metrics.FailedAuthsTotal.Inc()
	h.refuse(s, err)
	s.conn.Serve(nil, s.cancel)
	return false, false
}

// restore serves the connection as the restore of the session its request
// names, when there is one to restore. It reports false, leaving the
// session unregistered and unidentified, when there is none: none named,
// none cached (or restored already), its identity expired, or disconnected
// remotely since it was established; the client then identifies as a new
// session, with whatever credentials it sent.
func (h *Gate) restore(s *Session, r *http.Request, wanted string, o *SessionOptions) bool {
	prev, cached := h.cachedSession(r)
	if cached == nil {
		return false
	}
	s.adopt(cached)
	switch err := h.node.register(s, wanted, true); {
	case errors.Is(err, errRevoked):
		h.node.log.Debug("session not restored: its identifiers were disconnected remotely", "sid", prev)
		s.adopt(&cachedState{})
		return false
	case err != nil:
		// Taken for nothing: leave it for a restore on another node.
		s.putBack(prev, cached)
		h.refuseRestart(s)
		return true
	}
	h.logConnected(s, r, prev)
	s.start(s.restore(cached), true)
	s.runInitial(o.Commands)
	s.conn.Serve(s.handle, s.end)
	return true
}

// refuseRestart turns away a session the node, shutting down, cannot
// take: the client reconnects elsewhere.
func (h *Gate) refuseRestart(s *Session) {
	s.close(1001, "Server restart", protocol.Disconnect(protocol.ReasonServerRestart, true))
	s.conn.Serve(nil, s.cancel)
}

// logConnected logs a registered session at debug level, with the
// request's X-Request-ID (when it is a plain token, see requestID) so a
// request traced through a proxy can be found by its sid, and the sid it
// restored, if any.
func (h *Gate) logConnected(s *Session, r *http.Request, restoredFrom string) {
	if !h.node.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	attrs := []any{"sid", s.sid}
	if id := requestID(r.Header.Get("X-Request-ID")); id != "" {
		attrs = append(attrs, "request_id", id)
	}
	if restoredFrom != "" {
		attrs = append(attrs, "restored_from", restoredFrom)
	}
	h.node.log.Debug("client connected", attrs...)
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

// maxSIDLength is the longest sid a restore request may name, and the
// longest X-Request-ID logged.
const maxSIDLength = 128

// requestID returns the X-Request-ID header for the log, or "" when it is
// not a plain token: longer than maxSIDLength or holding anything but
// letters, digits and "-_.:" (UUIDs, nanoids, trace ids). It is client
// input, and never a sid: a sid is the key to its session's restore.
func requestID(v string) string {
	if len(v) > maxSIDLength {
		return ""
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return ""
		}
	}
	return v
}

// cachedSession takes the state of the session the request asks to
// restore (header X-AnyCable-Restore-Sid, else ?sid=): its sid and state,
// or nil for none. A state whose identity has expired is taken (so never
// restored) and not returned.
func (h *Gate) cachedSession(r *http.Request) (string, *cachedState) {
	prev := r.Header.Get("X-AnyCable-Restore-Sid")
	if prev == "" {
		prev = r.URL.Query().Get("sid")
	}
	if prev == "" || len(prev) > maxSIDLength {
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
	if state.Expires != 0 && time.Now().UnixMilli() >= state.Expires {
		h.node.log.Debug("session not restored: its identity has expired", "sid", prev)
		return "", nil
	}
	return prev, &state
}

// refuse tells a client why it is not welcome and closes: a disconnect
// message and 1000 "Auth Failed" for bad or expired credentials, a bare
// 1011 "Auth Error" for a token without identifiers.
func (h *Gate) refuse(s *Session, err error) {
	switch {
	case errors.Is(err, identity.ErrExpired):
		s.close(1000, "Auth Failed", protocol.Disconnect(protocol.ReasonTokenExpired, false))
	case errors.Is(err, identity.ErrUnauthorized):
		s.close(1000, "Auth Failed", protocol.Disconnect(protocol.ReasonUnauthorized, false))
	default:
		h.node.log.Warn("authentication error", "error", err)
		s.close(1011, "Auth Error", nil)
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
