package ds

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/cablehub/cablehub/server/identity"
	"github.com/cablehub/cablehub/server/node"
	"github.com/cablehub/cablehub/server/origins"
	"github.com/cablehub/cablehub/server/protocol"
	"github.com/cablehub/cablehub/server/streams"
	"github.com/cablehub/cablehub/server/ws"
)

// Gate admits a read's session into the node; *node.Gate is one.
type Gate interface {
	Serve(conn node.Connection, r *http.Request, o node.SessionOptions)
}

// Reader reads streams' history; *node.Node is one.
type Reader interface {
	History(ctx context.Context, stream, epoch string, offset uint64) (*node.StreamHistory, error)
	Tail(ctx context.Context, stream string) (string, uint64, error)
	Message(p *protocol.Publication) []byte
}

// Options configure the endpoint.
type Options struct {
	// Prefix is --ds_path: a stream is read at Prefix + "/" + its name.
	Prefix string
	// PollInterval bounds a long-poll's wait; SSETTL an SSE answer's life.
	PollInterval, SSETTL time.Duration
	// Secret verifies signed stream names (--streams_secret); Public
	// (--public_streams) lets unsigned names be read.
	Secret string
	Public bool
	// Private marks answers that depend on the reader's credentials
	// (connection authentication is on): caches must not share them.
	Private bool
	// AllowedOrigins decide the CORS answers (none: every origin).
	AllowedOrigins []string
	// JWTHeader is the header that may carry the reader's JWT ("X-JID").
	JWTHeader string
	// Header is added to every answer (X-Cablehub-Version).
	Header http.Header
}

// Handler serves the Durable Streams read API under Options.Prefix. Each
// request is checked (parameters, method, the stream's authorization),
// then its reader is admitted as a session through the gate, which
// authenticates it as any client (with --ds_skip_auth the runner gives a
// gate that accepts everyone). Catch-up reads and HEAD read the broker
// through the Reader and end the session; live reads subscribe it to the
// stream from their position, so the node's ordering, gap and epoch
// checks apply to them as to any subscriber (see conn).
type Handler struct {
	reader    Reader
	gate      Gate
	transport *ws.Transport
	opts      Options
	cors      origins.CORS
	log       *slog.Logger
}

// NewHandler returns the endpoint.
func NewHandler(rd Reader, g Gate, t *ws.Transport, o Options, log *slog.Logger) *Handler {
	headers := origins.DefaultHeaders + ", X-Signed, If-None-Match"
	if o.JWTHeader != "" {
		headers += ", " + o.JWTHeader
	}
	return &Handler{reader: rd, gate: g, transport: t, opts: o, log: log, cors: origins.CORS{
		Hosts: o.AllowedOrigins, Methods: "GET, HEAD, OPTIONS", Headers: headers,
	}}
}

// exposed are the answer headers a cross-origin page may read: without
// them a browser hides the offsets from the client.
const exposed = "Stream-Next-Offset, Stream-Cursor, Stream-Up-To-Date, ETag"

// ServeHTTP runs the pipeline: CORS and preflight, parameters (400, before
// the method check as in AnyCable), method (405), the stream's
// authorization and the reader's authentication (401), then the read.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	h.cors.Apply(hdr, r)
	hdr.Set("Access-Control-Expose-Headers", exposed)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Cross-Origin-Resource-Policy", "cross-origin")
	for k, v := range h.opts.Header {
		hdr[k] = v
	}
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusOK)
		return
	}
	rest, _ := strings.CutPrefix(r.URL.Path, h.opts.Prefix+"/")
	req, err := parseRequest(rest, r.URL.Query(), r.Header.Get("X-Signed"))
	if err != nil {
		h.log.Debug("Durable Streams request refused", "error", err)
		status(w, http.StatusBadRequest)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD, OPTIONS")
		status(w, http.StatusMethodNotAllowed)
		return
	}
	identifier, ok := h.authorize(req)
	if !ok {
		unauthorized(w)
		return
	}
	c := &conn{}
	h.gate.Serve(c, r, node.SessionOptions{Codec: Codec{}, PingInterval: -1})
	c.mu.Lock()
	accepted, authFailed := c.accepted, c.authFailed
	c.mu.Unlock()
	switch {
	case authFailed:
		unauthorized(w)
	case !accepted:
		hdr.Set("Retry-After", "1")
		status(w, http.StatusServiceUnavailable)
	case h.read(w, r, req, c, identifier):
		return // the SSE stream ends the session
	}
	c.finish()
}

// authorize checks the reader may read the stream: a signed name that
// verifies to the very stream of the path (a token for another stream
// grants nothing here), or an unsigned one with public streams. It
// returns the identifier of the $pubsub subscription a live read uses.
func (h *Handler) authorize(req *request) (string, bool) {
	var id struct {
		Channel string `json:"channel"`
		Stream  string `json:"stream_name,omitempty"`
		Signed  string `json:"signed_stream_name,omitempty"`
	}
	id.Channel = streams.PubSubChannel
	switch {
	case req.signed != "":
		name, err := streams.Verify(req.signed, h.opts.Secret)
		if err != nil || name != req.stream {
			return "", false
		}
		id.Signed = req.signed
	case h.opts.Public:
		id.Stream = req.stream
	default:
		return "", false
	}
	b, _ := json.Marshal(id)
	return string(b), true
}

// private reports whether an answer to req must not be shared by caches.
func (h *Handler) private(req *request) bool {
	return h.opts.Private || req.signed != ""
}

// status answers code without a body.
func status(w http.ResponseWriter, code int) {
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(code)
}

// unauthorized answers 401.
func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", "Bearer")
	status(w, http.StatusUnauthorized)
}

// Anyone is the authenticator of --ds_skip_auth: it accepts every reader,
// unidentified. Streams are still authorized (signed or public names).
type Anyone struct{}

// Authenticate accepts r.
func (Anyone) Authenticate(*http.Request) (identity.Identity, error) {
	return identity.Identity{}, nil
}
