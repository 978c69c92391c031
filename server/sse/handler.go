package sse

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/cablehub/cablehub/server/node"
	"github.com/cablehub/cablehub/server/origins"
	"github.com/cablehub/cablehub/server/protocol"
	"github.com/cablehub/cablehub/server/ws"
)

// Gate admits a transport's connections into the node; *node.Gate is one.
type Gate interface {
	Serve(conn node.Connection, r *http.Request, o node.SessionOptions)
}

// Options configure the endpoint.
type Options struct {
	// AllowedOrigins (--allowed_origins) decide the CORS answers; none
	// allows every origin. Unlike WebSocket upgrades, requests from other
	// origins are served: the browser decides what a page may read.
	AllowedOrigins []string
	// JWTHeader is the request header that may carry the client's JWT
	// ("X-JID"), listed in preflight answers.
	JWTHeader string
	// Header is added to every answer (X-Cablehub-Version).
	Header http.Header
	// OnOpen and OnClose count streams (the sse_clients_num gauge).
	OnOpen, OnClose func()
}

// Handler serves the Server-Sent Events endpoint (--sse_path): it reads
// the subscriptions a request asks for, hands the connection to the gate
// as a session whose codec writes events, and answers 200 with the event
// stream once every subscription is confirmed (400 or 401 otherwise). The
// stream is written by the transport's flushers and watched by its
// poller, so an idle SSE client costs what an idle WebSocket does: no
// goroutine, no buffers.
type Handler struct {
	gate      Gate
	transport *ws.Transport
	opts      Options
	cors      origins.CORS
	log       *slog.Logger
	// fields are Options.Header as header lines, sorted.
	fields []byte
}

// NewHandler returns the endpoint, admitting sessions through g and
// streaming through t.
func NewHandler(g Gate, t *ws.Transport, o Options, log *slog.Logger) *Handler {
	headers := origins.DefaultHeaders + ", Last-Event-ID"
	if o.JWTHeader != "" {
		headers += ", " + o.JWTHeader
	}
	h := &Handler{gate: g, transport: t, opts: o, log: log, cors: origins.CORS{
		Hosts: o.AllowedOrigins, Methods: "GET, POST, OPTIONS", Headers: headers,
	}}
	names := make([]string, 0, len(o.Header))
	for k := range o.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, v := range o.Header[k] {
			h.fields = fmt.Appendf(h.fields, "%s: %s\r\n", k, v)
		}
	}
	return h
}

// streamHeaders are the headers of every answer past the method check, as
// AnyCable sends them (with Expires beside AnyCable's misspelt Expire).
var streamHeaders = [][2]string{
	{"Cache-Control", "private, no-cache, no-store, must-revalidate, max-age=0"},
	{"Content-Type", "text/event-stream; charset=utf-8"},
	{"Expire", "0"},
	{"Expires", "0"},
	{"Pragma", "no-cache"},
	{"X-Accel-Buffering", "no"},
	{"X-Content-Type-Options", "nosniff"},
}

// ServeHTTP answers preflights, refusals and POSTs through net/http, and
// GETs the listener's front did not take (see ServeRaw).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	h.cors.Apply(hdr, r)
	switch r.Method {
	case http.MethodOptions:
		w.WriteHeader(http.StatusOK)
		return
	case http.MethodGet, http.MethodPost:
	default:
		hdr.Set("Allow", "GET, POST, OPTIONS")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	for _, kv := range streamHeaders {
		hdr.Set(kv[0], kv[1])
	}
	for k, v := range h.opts.Header {
		hdr[k] = v
	}
	cmds, err := h.commands(w, r)
	if err != nil {
		h.log.Debug("SSE request refused", "error", err)
		hdr.Set("Content-Length", "0")
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if r.ProtoMajor != 1 {
		// A stream is served off the socket, which HTTP/2 shares.
		hdr.Set("Content-Length", "0")
		w.WriteHeader(http.StatusHTTPVersionNotSupported)
		return
	}
	nc, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	nc.SetDeadline(time.Time{})
	h.serve(nc, r, cmds, r.Method == http.MethodPost)
}

// ServeRaw serves a GET the listener's front read off nc (ws.ParseRequest)
// without net/http. It reports false, having written nothing, for a
// request whose answer is not a stream (a refusal, decided before the
// session): net/http then answers it through ServeHTTP.
func (h *Handler) ServeRaw(nc net.Conn, r *http.Request) bool {
	cmd, err := queryCommand(r.URL.Query(), r.Header.Get("Last-Event-ID"))
	if err != nil {
		return false
	}
	h.serve(nc, r, []*protocol.Command{cmd}, false)
	return true
}

// commands reads the subscriptions of a request: a GET's query, a POST's
// body (bounded by MaxBody).
func (h *Handler) commands(w http.ResponseWriter, r *http.Request) ([]*protocol.Command, error) {
	if r.Method == http.MethodGet {
		cmd, err := queryCommand(r.URL.Query(), r.Header.Get("Last-Event-ID"))
		if err != nil {
			return nil, err
		}
		return []*protocol.Command{cmd}, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	cmds, err := bodyCommands(body)
	for _, c := range cmds {
		if c.Command != "subscribe" {
			return nil, errors.New("only subscribe commands are taken")
		}
	}
	return cmds, err
}

// serve hands the connection to the gate as a session that runs cmds.
func (h *Handler) serve(nc net.Conn, r *http.Request, cmds []*protocol.Command, post bool) {
	c := &conn{h: h, nc: nc, raw: !post && isRaw(r), waiting: len(cmds)}
	c.fields = h.answerFields(r)
	h.gate.Serve(c, r, node.SessionOptions{Codec: Codec{Envelope: post}, Commands: cmds})
}

// answerFields are the header lines of the answer to r: CORS, the stream
// headers and Options.Header.
func (h *Handler) answerFields(r *http.Request) []byte {
	hdr := http.Header{}
	h.cors.Apply(hdr, r)
	for _, kv := range streamHeaders {
		hdr.Set(kv[0], kv[1])
	}
	names := make([]string, 0, len(hdr))
	for k := range hdr {
		names = append(names, k)
	}
	sort.Strings(names)
	var b []byte
	for _, k := range names {
		for _, v := range hdr[k] {
			b = fmt.Appendf(b, "%s: %s\r\n", k, v)
		}
	}
	b = append(b, h.fields...)
	return fmt.Appendf(b, "Date: %s\r\n", time.Now().UTC().Format(http.TimeFormat))
}

// head is the answer's head for status: a 200 streams a chunked body; a
// refusal has none. Either way the connection closes after the answer, and
// says so: a client told keep-alive pools the socket once the body ends
// and sends its next request into the closed connection.
func (c *conn) head(status int) []byte {
	b := fmt.Appendf(nil, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	b = append(b, c.fields...)
	switch status {
	case http.StatusOK:
		return append(b, "Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n"...)
	case http.StatusUnauthorized:
		b = append(b, "WWW-Authenticate: Bearer\r\n"...)
	case http.StatusServiceUnavailable:
		b = append(b, "Retry-After: 1\r\n"...)
	}
	return append(b, "Connection: close\r\nContent-Length: 0\r\n\r\n"...)
}

func (h *Handler) opened() {
	if h.opts.OnOpen != nil {
		h.opts.OnOpen()
	}
}

func (h *Handler) closed() {
	if h.opts.OnClose != nil {
		h.opts.OnClose()
	}
}
