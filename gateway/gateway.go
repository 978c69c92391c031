// Package gateway serves Cablehub's REST API: a grpc-gateway mux that
// transcodes AnyCable's REST paths onto CableService, reached through a gRPC
// client connection (in the server, api.InProcess) so the server's auth
// interceptor runs for REST requests too.
//
// In front of the mux sit the checks whose order the contract fixes and the
// transcoder cannot know: CORS, the method (405 before auth), the bearer
// token (401 before the body is even read, so an unauthenticated caller
// learns nothing about body validation), and the body's size limit (413)
// and time limit (408). What the routes are (method, path, token) is the
// routes package's table. The OpenAPI description of these routes is
// served at {prefix}/openapi.json, without a token (openapi.go).
package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/cablehub/cablehub/server/publication"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/cablehub/cablehub/gateway/routes"
	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
	"github.com/cablehub/cablehub/server/api"
	"github.com/cablehub/cablehub/server/httpbody"
	"github.com/cablehub/cablehub/server/jsonerr"
	"github.com/cablehub/cablehub/server/origins"
)

// Authorizer decides whether an Authorization header, or an admin
// console's session token, grants API access. It must be the same check
// the gRPC interceptor applies (*api.Auth).
type Authorizer interface {
	Allowed(authorization string) bool
	AllowedSession(token string) bool
}

// Options configure the REST API.
type Options struct {
	// Prefix is --api_path, without a trailing slash, e.g. "/api".
	Prefix string
	// Conn reaches CableService; calls through it pass the server's
	// interceptors.
	Conn grpc.ClientConnInterface
	// Auth is the bearer check applied before the body is read.
	Auth Authorizer
	// MaxBodySize is the largest accepted request body in bytes.
	MaxBodySize int64
	// BodyTimeout bounds the time from the start of handling to the last
	// byte of the request body (a read deadline on the request; see
	// httpbody.Limit.Read). Zero means no bound.
	BodyTimeout time.Duration
	// CORS turns on CORS headers and preflight answers.
	CORS bool
	// CORSHosts restricts the allowed origins' hosts ("*.example.com" matches
	// subdomains); empty allows any origin.
	CORSHosts []string
	// ConsoleSession, when set, reads the admin console's session token
	// from a request ("" for none; admin.RequestSession): a request with
	// a valid one needs no bearer token, and the token travels to the
	// service as api.SessionMetadata so the interceptor checks it again.
	ConsoleSession func(*http.Request) string
}

// DefaultOptions are the gateway's settings without flags (--api_path,
// --api_max_body_size); Conn and Auth must be set by the caller.
func DefaultOptions() Options {
	return Options{Prefix: "/api", MaxBodySize: 1 << 20}
}

// Gateway is the REST API handler; mount it at Options.Prefix.
type Gateway struct {
	opts   Options
	mux    *runtime.ServeMux
	routes routes.Table
	// openAPI is the served description (servedDocument).
	openAPI []byte
}

// New builds the gateway and registers CableService's REST routes.
func New(ctx context.Context, opts Options) (*Gateway, error) {
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, jsonMarshaler{}),
		runtime.WithUnescapingMode(runtime.UnescapingModeAllExceptReserved),
		runtime.WithDisableHTTPMethodOverride(),
		runtime.WithErrorHandler(handleError),
		runtime.WithRoutingErrorHandler(handleRoutingError),
		runtime.WithForwardResponseOption(setStatus),
		// gRPC response metadata stays inside: no Grpc-Metadata-* headers.
		runtime.WithOutgoingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithOutgoingTrailerMatcher(func(string) (string, bool) { return "", false }),
		// The service reads only the bearer token, which the gateway always
		// forwards as "authorization"; no other header becomes metadata.
		runtime.WithIncomingHeaderMatcher(func(string) (string, bool) { return "", false }),
		// ...and the console's session, read from its cookie.
		runtime.WithMetadata(func(_ context.Context, r *http.Request) metadata.MD {
			if tok := consoleSession(opts, r); tok != "" {
				return metadata.Pairs(api.SessionMetadata, tok)
			}
			return nil
		}),
	)
	client := cablehubv1.NewCableServiceClient(opts.Conn)
	if err := cablehubv1.RegisterCableServiceHandlerClient(ctx, mux, client); err != nil {
		return nil, err
	}
	doc, err := servedDocument(opts.Prefix)
	if err != nil {
		return nil, err
	}
	return &Gateway{opts: opts, mux: mux, routes: routes.New(), openAPI: doc}, nil
}

// authorized reports whether r carries a bearer token or a console
// session that grants access.
func (g *Gateway) authorized(r *http.Request) bool {
	if g.opts.Auth.Allowed(r.Header.Get("Authorization")) {
		return true
	}
	tok := consoleSession(g.opts, r)
	return tok != "" && g.opts.Auth.AllowedSession(tok)
}

// consoleSession is r's console session token, "" for none.
func consoleSession(opts Options, r *http.Request) string {
	if opts.ConsoleSession == nil {
		return ""
	}
	return opts.ConsoleSession(r)
}

func (g *Gateway) body() httpbody.Limit {
	return httpbody.Limit{MaxSize: g.opts.MaxBodySize, Timeout: g.opts.BodyTimeout}
}

// ServeHTTP answers requests whose path starts with the prefix.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Set first, so that whatever reads the body (httpbody.Limit.Read, or
	// net/http discarding what an early answer left unread) is bounded.
	liftBodyDeadline := g.body().Deadline(w, r)
	rel, ok := strings.CutPrefix(r.URL.Path, g.opts.Prefix)
	var route routes.Route
	if ok {
		route, ok = g.routes.Lookup(rel)
	}
	if !ok {
		jsonerr.Write(w, http.StatusNotFound, codes.NotFound, "no such API endpoint: "+r.URL.Path)
		return
	}
	if g.opts.CORS {
		g.corsHeaders(w, r, route.Method)
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusOK)
			return
		}
	}
	if route.Operation == routes.GetOpenAPI {
		g.serveOpenAPI(w, r)
		return
	}
	if r.Method != route.Method {
		methodNotAllowed(w, r.Method, route.Method, g.opts.CORS)
		return
	}
	if route.Auth && !g.authorized(r) {
		w.Header().Set("WWW-Authenticate", "Bearer")
		jsonerr.Write(w, http.StatusUnauthorized, codes.Unauthenticated, api.TokenMessage)
		return
	}
	if !route.Fits(r.URL.EscapedPath()) {
		jsonerr.Write(w, http.StatusNotFound, codes.NotFound, g.misfit(route))
		return
	}
	if route.Operation == routes.Watch {
		g.watch(w, r)
		return
	}
	if route.Method == http.MethodPost {
		body, ok := g.body().Read(w, r)
		if ok {
			liftBodyDeadline()
		}
		if !ok || route.Operation == routes.Publish && !g.routeCommand(w, r, body) {
			return
		}
	}
	http.StripPrefix(g.opts.Prefix, g.mux).ServeHTTP(w, r)
}

// misfit is the message for a path Lookup gave a route that it does not
// fit: the shape to use, and how to send a "/" in a parameter.
func (g *Gateway) misfit(route routes.Route) string {
	msg := "no such API endpoint: use " + g.opts.Prefix + route.Template()
	for _, p := range route.Params() {
		msg += ", with a \"/\" in the " + p + " name sent as %2F"
	}
	return msg
}

// routeCommand lets the publish endpoint take AnyCable's remote commands,
// {"command":"disconnect","payload":{...}}, which SDKs send there: such a
// body is handed to the Disconnect RPC with the payload as its request. It
// returns false when it has answered the request itself (an unknown
// command).
func (g *Gateway) routeCommand(w http.ResponseWriter, r *http.Request, body []byte) bool {
	trimmed := publication.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' || !bytes.Contains(trimmed, []byte(`"command"`)) {
		return true
	}
	var cmd struct {
		Command *string         `json:"command"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(trimmed, &cmd); err != nil || cmd.Command == nil {
		return true
	}
	if *cmd.Command != "disconnect" {
		jsonerr.Write(w, http.StatusUnprocessableEntity, codes.InvalidArgument, fmt.Sprintf("unknown command %q: only \"disconnect\" is supported", *cmd.Command))
		return false
	}
	payload := cmd.Payload
	if len(payload) == 0 {
		payload = json.RawMessage("{}")
	}
	disconnect, _ := g.routes.Find(routes.Disconnect)
	r.URL.Path = g.opts.Prefix + disconnect.Path
	r.URL.RawPath = ""
	r.Body = io.NopCloser(bytes.NewReader(payload))
	r.ContentLength = int64(len(payload))
	return true
}

// corsHeaders adds the CORS response headers for a route answering method.
func (g *Gateway) corsHeaders(w http.ResponseWriter, r *http.Request, method string) {
	h := w.Header()
	if len(g.opts.CORSHosts) == 0 {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Add("Vary", "Origin")
		if origin := r.Header.Get("Origin"); origin != "" && origins.Match(origin, g.opts.CORSHosts) {
			h.Set("Access-Control-Allow-Origin", strings.ToLower(origin))
			h.Set("Access-Control-Allow-Credentials", "true")
		}
	}
	h.Set("Access-Control-Allow-Methods", method+", OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Origin, X-Requested-With, X-Request-ID, Content-Type, Accept, X-CSRF-Token, Authorization")
	h.Set("Access-Control-Max-Age", "600")
}

func handleError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, _ *http.Request, err error) {
	var herr *runtime.HTTPStatusError
	if errors.As(err, &herr) {
		// A malformed percent-escape in the path: no such resource.
		jsonerr.Write(w, http.StatusNotFound, codes.NotFound, herr.Error())
		return
	}
	jsonerr.WriteStatus(w, err)
}

// methodNotAllowed answers a method the route does not take: 405 with
// Allow naming the ones it takes, want (and OPTIONS, a preflight, with
// CORS on); the message names want's first.
func methodNotAllowed(w http.ResponseWriter, got, want string, cors bool) {
	allow := want
	if cors {
		allow += ", OPTIONS"
	}
	w.Header().Set("Allow", allow)
	jsonerr.Write(w, http.StatusMethodNotAllowed, codes.Unimplemented,
		fmt.Sprintf("method %s is not allowed here, use %s", got, strings.SplitN(want, ",", 2)[0]))
}

func handleRoutingError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	if httpStatus == http.StatusMethodNotAllowed {
		jsonerr.Write(w, http.StatusMethodNotAllowed, codes.Unimplemented, "method "+r.Method+" is not allowed here")
		return
	}
	jsonerr.Write(w, http.StatusNotFound, codes.NotFound, "no such API endpoint")
}

// setStatus gives publish and disconnect 201 Created, as AnyCable's publish
// endpoint answers both; other responses keep 200.
func setStatus(_ context.Context, w http.ResponseWriter, m proto.Message) error {
	switch m.(type) {
	case *cablehubv1.PublishResponse, *cablehubv1.DisconnectResponse:
		w.WriteHeader(http.StatusCreated)
	}
	return nil
}
