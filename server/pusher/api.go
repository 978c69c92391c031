package pusher

// This file holds Pusher's HTTP API as an http.Handler: the routing of
// /apps/<id>/..., the request checks every endpoint shares (method, body
// limit, signature) and the JSON answers. The endpoints are in
// api_events.go and api_channels.go.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cablehub/cablehub/server/broker"
	"github.com/cablehub/cablehub/server/protocol"
)

// Backend is what the HTTP API needs from the server.
type Backend interface {
	// Broadcast delivers publications in order on every node (a nil error means accepted).
	Broadcast(ctx context.Context, pubs []protocol.Publication) error
	// Presence returns the members of a presence channel's stream (broker.PresenceInfo: Total unique ids, Records{ID, Info json.RawMessage} sorted by id); broker.ErrPresenceUnsupported when the broker keeps no presence.
	Presence(ctx context.Context, stream string) (*broker.PresenceInfo, error)
	// Channels lists the occupied channels whose names start with prefix.
	Channels(ctx context.Context, prefix string) ([]ChannelInfo, error)
	// Subscriptions is the number of subscriptions of an occupied channel.
	Subscriptions(ctx context.Context, channel string) (int, error)
	// TerminateUser closes every connection of a signed-in user (on every node).
	TerminateUser(ctx context.Context, userID string) error
}

// ChannelInfo is one occupied channel.
type ChannelInfo struct {
	Name string
	// Subscriptions is its number of subscriptions, where the Backend
	// knows it at no cost (not used by the API: see
	// Backend.Subscriptions).
	Subscriptions int
}

// APIOptions tune the HTTP API. The zero value is usable.
type APIOptions struct {
	// MaxBody is the largest request body accepted, in bytes (larger: 413);
	// 0 or less means DefaultAPIMaxBody.
	MaxBody int64
	// Now is the clock request timestamps are checked against; nil means
	// time.Now.
	Now func() time.Time
	// Log receives the backend failures (and, at debug level, the refused
	// signatures); nil discards them.
	Log *slog.Logger
	// Timeout bounds each request's calls to the Backend; 0 or less means
	// DefaultAPITimeout.
	Timeout time.Duration
}

// Defaults of APIOptions.
const (
	DefaultAPIMaxBody = 1 << 20
	DefaultAPITimeout = 5 * time.Second
)

// NewAPI returns Pusher's HTTP API for app, served by b: the handler
// answers requests for paths under /apps/<app.ID>/ (given whole, not
// stripped of the prefix) and 404 to any other path. Every answer is JSON;
// an error's body is {"error":"<message>"}. A request is checked in this
// order: path (404) and method (405, with Allow), body size (413 over
// MaxBody), signature (401, see App.VerifyRequest, on the path as sent),
// then the endpoint's parameters (400, 413 for event data over 10 KiB)
// and the backend's answer (501 when it keeps no presence, 503 when it
// times out, 500 for another failure).
func NewAPI(app *App, b Backend, o APIOptions) http.Handler {
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultAPIMaxBody
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultAPITimeout
	}
	return &api{app: app, b: b, o: o}
}

// api is the handler NewAPI returns.
type api struct {
	app *App
	b   Backend
	o   APIOptions
}

// apiRequest is a request that passed the shared checks, as an endpoint
// sees it.
type apiRequest struct {
	ctx   context.Context
	path  string // decoded, for logs
	param string // the channel name or user id of the path, decoded
	query url.Values
	body  []byte
}

// endpoint answers a checked request with a value to encode as JSON, or
// with an error.
type endpoint func(a *api, r *apiRequest) (any, *RequestError)

// route finds the method and endpoint serving the path segments after
// /apps/<id>/ (decoded), and the segment that is its parameter.
func route(segs []string) (method string, e endpoint, param string, ok bool) {
	switch {
	case len(segs) == 1 && segs[0] == "events":
		return http.MethodPost, (*api).events, "", true
	case len(segs) == 1 && segs[0] == "batch_events":
		return http.MethodPost, (*api).batchEvents, "", true
	case len(segs) == 1 && segs[0] == "channels":
		return http.MethodGet, (*api).channels, "", true
	case len(segs) == 2 && segs[0] == "channels" && segs[1] != "":
		return http.MethodGet, (*api).channel, segs[1], true
	case len(segs) == 3 && segs[0] == "channels" && segs[1] != "" && segs[2] == "users":
		return http.MethodGet, (*api).users, segs[1], true
	case len(segs) == 3 && segs[0] == "users" && segs[1] != "" && segs[2] == "terminate_connections":
		return http.MethodPost, (*api).terminate, segs[1], true
	}
	return "", nil, "", false
}

// segments splits an escaped path into decoded segments and returns those
// after /apps/<appID>/, or false when the path is not under that prefix.
// Splitting before decoding keeps an escaped "/" inside a segment.
func segments(escaped, appID string) ([]string, bool) {
	parts := strings.Split(escaped, "/")
	if len(parts) < 4 || parts[0] != "" || parts[1] != "apps" {
		return nil, false
	}
	for i, p := range parts {
		d, err := url.PathUnescape(p)
		if err != nil {
			return nil, false
		}
		parts[i] = d
	}
	if parts[2] != appID {
		return nil, false
	}
	return parts[3:], true
}

// ServeHTTP checks the request (see NewAPI for the order) and hands it to
// its endpoint.
func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	escaped := r.URL.EscapedPath()
	segs, ok := segments(escaped, a.app.ID)
	if !ok {
		writeError(w, &RequestError{Status: http.StatusNotFound, Message: "Not found"})
		return
	}
	method, handle, param, ok := route(segs)
	if !ok {
		writeError(w, &RequestError{Status: http.StatusNotFound, Message: "Not found"})
		return
	}
	if r.Method != method {
		w.Header().Set("Allow", method)
		writeError(w, &RequestError{Status: http.StatusMethodNotAllowed, Message: "Method not allowed: use " + method})
		return
	}
	body, rerr := readBody(w, r, a.o.MaxBody)
	if rerr != nil {
		writeError(w, rerr)
		return
	}
	query := r.URL.Query()
	if rerr := a.app.VerifyRequest(r.Method, escaped, query, body, a.o.Now()); rerr != nil {
		a.o.Log.Debug("pusher API: request refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "reason", rerr.Message)
		writeError(w, rerr)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.o.Timeout)
	defer cancel()
	res, rerr := handle(a, &apiRequest{ctx: ctx, path: r.URL.Path, param: param, query: query, body: body})
	if rerr != nil {
		writeError(w, rerr)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// readBody reads the whole body, refusing one over limit bytes with 413.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *RequestError) {
	if r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, tooLarge(limit)
		}
		return nil, badRequest("Could not read the request body")
	}
	return body, nil
}

func tooLarge(limit int64) *RequestError {
	return &RequestError{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("Request body too large: the limit is %d bytes", limit)}
}

// badRequest is a 400 with a formatted message.
func badRequest(format string, args ...any) *RequestError {
	return &RequestError{Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

// backendError turns a Backend failure during op (a phrase such as
// "publishing the events") into the answer: 501 when the broker keeps no
// presence, 503 when the request's time ran out (or its client left), 500
// otherwise. Failures other than the 501 are logged.
func (a *api) backendError(r *apiRequest, op string, err error) *RequestError {
	switch {
	case errors.Is(err, broker.ErrPresenceUnsupported):
		return &RequestError{Status: http.StatusNotImplemented, Message: "Presence is not supported: the server's broker keeps no presence"}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		a.o.Log.Warn("pusher API: backend timed out", "op", op, "path", r.path, "err", err)
		return &RequestError{Status: http.StatusServiceUnavailable, Message: "Timed out " + op}
	}
	a.o.Log.Error("pusher API: backend failed", "op", op, "path", r.path, "err", err)
	return &RequestError{Status: http.StatusInternalServerError, Message: "Internal error " + op}
}

// decodeJSON decodes a request body into v, with a 400 that says where
// the body is wrong.
func decodeJSON(body []byte, v any) *RequestError {
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case len(bytes.TrimSpace(body)) == 0:
		return badRequest("Invalid JSON body: the body is empty")
	case errors.As(err, &syntax):
		return badRequest("Invalid JSON body: syntax error at byte %d", syntax.Offset)
	case errors.As(err, &typ) && typ.Field != "":
		return badRequest("Invalid JSON body: %s must not be a JSON %s", typ.Field, typ.Value)
	case errors.As(err, &typ):
		return badRequest("Invalid JSON body: expected an object, got a JSON %s", typ.Value)
	}
	return badRequest("Invalid JSON body")
}

// writeJSON answers with status and v as compact JSON (HTML characters
// not escaped), under Content-Type application/json and an exact
// Content-Length.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	b := []byte(`{"error":"Could not encode the answer"}`)
	if err := enc.Encode(v); err == nil { // it fails for no type answered here
		b = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	} else {
		status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// writeError answers with e's status and the body {"error":e.Message}.
func writeError(w http.ResponseWriter, e *RequestError) {
	writeJSON(w, e.Status, struct {
		Error string `json:"error"`
	}{e.Message})
}

// validChannel reports whether name is a channel an event may be sent to
// or asked about: a channel a client may subscribe to (ValidChannel), or
// userPrefix followed by a non-empty user id.
func validChannel(name string) bool {
	if id, ok := strings.CutPrefix(name, userPrefix); ok {
		return id != ""
	}
	return ValidChannel(name)
}

func isPresence(channel string) bool { return strings.HasPrefix(channel, presencePrefix) }

// infoSet is the attributes an info parameter asks for.
type infoSet struct {
	userCount, subscriptionCount bool
}

func (s infoSet) any() bool { return s.userCount || s.subscriptionCount }

// parseInfo reads an info parameter, a comma-separated list of attribute
// names (spaces around them and empty items ignored), accepting only
// user_count and, when subscriptions is true, subscription_count.
func parseInfo(info string, subscriptions bool) (infoSet, *RequestError) {
	var s infoSet
	for _, item := range strings.Split(info, ",") {
		switch item = strings.TrimSpace(item); {
		case item == "":
		case item == "user_count":
			s.userCount = true
		case item == "subscription_count" && subscriptions:
			s.subscriptionCount = true
		default:
			return s, badRequest("Unsupported info attribute %q", item)
		}
	}
	return s, nil
}

// channelAttrs are the attributes of one channel an info parameter asked
// for; nil fields were not asked for.
type channelAttrs struct {
	UserCount         *int `json:"user_count,omitempty"`
	SubscriptionCount *int `json:"subscription_count,omitempty"`
}
