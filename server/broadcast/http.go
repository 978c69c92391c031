package broadcast

import (
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"

	"github.com/cablehub/cablehub/server/httpbody"
	"github.com/cablehub/cablehub/server/jsonerr"
)

// HTTP is the http adapter: AnyCable's POST /_broadcast. It is an
// http.Handler for that one path; the runner mounts it on the main
// listener or on --http_broadcast_port.
//
// The checks run in AnyCable's order: a method other than POST is 422
// (before the key, so it tells nothing about the key), a missing or wrong
// "Authorization: Bearer <key>" is 401 (the key compared in constant time),
// then the body is read as the REST API reads its bodies (413 over
// --api_max_body_size, 408 when it does not arrive in time). A payload the
// handler refuses is 422 with the REST API's error body
// {"code":3,"message":"…"}, where AnyCable answers 201 and drops it; 501
// when the broker or pub/sub did not take it; else 201 with an empty body.
type HTTP struct {
	opts HTTPOptions
	key  []byte
	body httpbody.Limit
	h    *Handler
	log  *slog.Logger

	mu  sync.Mutex
	err error
}

var _ http.Handler = (*HTTP)(nil)

func newHTTP(o HTTPOptions, h *Handler, log *slog.Logger) *HTTP {
	a := &HTTP{opts: o, body: httpbody.Limit{MaxSize: o.MaxBodySize, Timeout: o.BodyTimeout}, h: h, log: log}
	if o.Key != "" {
		a.key = []byte(o.Key)
	}
	return a
}

// Name is "http".
func (a *HTTP) Name() string { return NameHTTP }

// Run waits for ctx: the listener serving the adapter is the runner's.
func (a *HTTP) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// Err is nil, or why the adapter's listener could not be opened
// (SetErr).
func (a *HTTP) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// SetErr records that the adapter cannot be reached (its port could not be
// bound), for Err.
func (a *HTTP) SetErr(err error) {
	a.mu.Lock()
	a.err = err
	a.mu.Unlock()
}

// Path is where the adapter is to be mounted.
func (a *HTTP) Path() string { return a.opts.Path }

// AuthRequired reports whether requests must carry the key.
func (a *HTTP) AuthRequired() bool { return a.key != nil }

// Role is "": every node serves the http adapter alike.
func (a *HTTP) Role() string { return "" }

// Describe is "": the adapter's startup line names the address it is
// served at, which only the runner knows once it is bound (DescribeAt).
func (a *HTTP) Describe() string { return "" }

// DescribeAt is the startup line for the adapter served at base
// (scheme://host:port).
func (a *HTTP) DescribeAt(base string) string {
	mode := "no authorization"
	if a.AuthRequired() {
		mode = "authorization required"
	}
	return fmt.Sprintf("Accept broadcast requests at %s%s (%s)", base, a.opts.Path, mode)
}

func (a *HTTP) allowed(authorization string) bool {
	if a.key == nil {
		return true
	}
	token, ok := strings.CutPrefix(authorization, "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(token), a.key) == 1
}

// ServeHTTP answers a broadcast request (see HTTP).
func (a *HTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	lift := a.body.Deadline(w, r)
	if r.Method != http.MethodPost {
		jsonerr.Write(w, http.StatusUnprocessableEntity, codes.InvalidArgument,
			fmt.Sprintf("method %s is not allowed here, use POST", r.Method))
		return
	}
	if !a.allowed(r.Header.Get("Authorization")) {
		w.Header().Set("WWW-Authenticate", "Bearer")
		jsonerr.Write(w, http.StatusUnauthorized, codes.Unauthenticated,
			"missing or invalid broadcast key: send Authorization: Bearer <key> (--broadcast_key, or derived from --secret)")
		return
	}
	body, ok := a.body.Read(w, r)
	if !ok {
		return
	}
	lift()
	if err := a.h.Handle(r.Context(), body); err != nil {
		a.log.Debug("broadcast refused", "error", err)
		jsonerr.WriteStatus(w, err)
		return
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}
