// Package routes is the table of Cablehub's REST API: for each route its
// method, its path under --api_path, its operation, whether it needs the
// API token, and the label its requests are counted under. The gateway's
// checks, the request metrics (runner) and the OpenAPI generator
// (cmd/protoc-gen-cablehub-openapi) all read this table, so what a route
// is, is written once.
//
// The routes that transcode to an RPC are also written in
// proto/cablehub/v1/http.yaml, from which grpc-gateway generates the mux
// they reach: the generator refuses to run when the two disagree, and so
// does this package's test.
//
// The package imports nothing generated, because the generator that writes
// gen/ reads it.
package routes

import (
	"net/http"
	"strings"
)

// Operation names: the OpenAPI operationIds, which for a route that
// transcodes to an RPC is the RPC's name.
const (
	Publish     = "Publish"
	GetPresence = "GetPresence"
	Disconnect  = "Disconnect"
	GetHistory  = "GetHistory"
	// GetPresenceStats and the rest are the v2 RPCs.
	GetPresenceStats = "GetPresenceStats"
	ListStreams      = "ListStreams"
	GetInfo          = "GetInfo"
	Watch            = "Watch"
	GetOpenAPI       = "GetOpenAPI"
)

// OtherLabel is the metrics route label of API requests whose path has no
// route, and of the routes that are not counted on their own.
const OtherLabel = "other"

// Route is one REST route.
type Route struct {
	// Method is the HTTP method the route answers; any other is refused
	// with 405 (OPTIONS is a CORS preflight when CORS is on).
	Method string
	// Path is relative to --api_path and spelled as in http.yaml: literal
	// segments, and {name} for a parameter, one non-empty segment.
	Path string
	// Operation is one of the operation names above.
	Operation string
	// RPC is the full name of the CableService method the route
	// transcodes to, the selector in http.yaml; "" for a route the
	// gateway answers itself.
	RPC string
	// Label is the value of the route label on cablehub_api_requests_total
	// and cablehub_api_request_duration_seconds. Dashboards select on
	// these values: they never change.
	Label string
	// Auth says whether a request needs the API token.
	Auth bool
}

// Table is the REST API's routes; a caller may hold one for the life of
// the process, it never changes.
type Table []Route

// New returns the table, in the order the routes are documented.
func New() Table {
	return Table{
		{Method: http.MethodPost, Path: "/publish", Operation: Publish,
			RPC: "cablehub.v1.CableService.Publish", Label: "publish", Auth: true},
		{Method: http.MethodGet, Path: "/presence/{stream}/users", Operation: GetPresence,
			RPC: "cablehub.v1.CableService.GetPresence", Label: "presence", Auth: true},
		{Method: http.MethodPost, Path: "/disconnect", Operation: Disconnect,
			RPC: "cablehub.v1.CableService.Disconnect", Label: "disconnect", Auth: true},
		{Method: http.MethodGet, Path: "/history/{stream}", Operation: GetHistory,
			RPC: "cablehub.v1.CableService.GetHistory", Label: "history", Auth: true},
		{Method: http.MethodGet, Path: "/presence/{stream}/stats", Operation: GetPresenceStats,
			RPC: "cablehub.v1.CableService.GetPresenceStats", Label: "presence_stats", Auth: true},
		{Method: http.MethodGet, Path: "/streams", Operation: ListStreams,
			RPC: "cablehub.v1.CableService.ListStreams", Label: "streams", Auth: true},
		{Method: http.MethodGet, Path: "/info", Operation: GetInfo,
			RPC: "cablehub.v1.CableService.GetInfo", Label: "info", Auth: true},
		{Method: http.MethodGet, Path: "/watch/{stream}", Operation: Watch,
			RPC: "cablehub.v1.CableService.Watch", Label: "watch", Auth: true},
		// The description tells nothing about streams, so tools may read
		// it before they have a token. Its requests have been counted
		// under "other" since it was added.
		{Method: http.MethodGet, Path: "/openapi.json", Operation: GetOpenAPI, Label: OtherLabel},
	}
}

// Lookup returns the route a request path under the prefix belongs to. A
// route without parameters takes exactly its path; one with parameters
// takes every path that starts with its literal part ("/presence/"), so
// that a misshapen path still gets the route's method and token checks
// before Fits refuses it: a caller without a token learns nothing about
// which paths exist. Of routes sharing a literal part
// ("/presence/{stream}/users" and "/presence/{stream}/stats") the one
// whose last literal segment ends the path wins, else the first.
func (t Table) Lookup(rel string) (Route, bool) {
	var found Route
	ok := false
	for _, r := range t {
		lit, params := r.literal()
		switch {
		case !params && rel == r.Path:
			return r, true
		case params && strings.HasPrefix(rel, lit):
			if !ok {
				found, ok = r, true
			}
			if tail := r.Path[strings.LastIndexByte(r.Path, '/'):]; !isParam(tail[1:]) && strings.HasSuffix(rel, tail) {
				return r, true
			}
		}
	}
	return found, ok
}

// Find returns the route of an operation.
func (t Table) Find(operation string) (Route, bool) {
	for _, r := range t {
		if r.Operation == operation {
			return r, true
		}
	}
	return Route{}, false
}

// literal returns the route's path up to its first parameter, and whether
// it has any.
func (r Route) literal() (string, bool) {
	i := strings.IndexByte(r.Path, '{')
	if i < 0 {
		return r.Path, false
	}
	return r.Path[:i], true
}

// Fits reports whether a request Lookup gave this route has exactly the
// route's shape, each parameter one non-empty segment. escaped is the
// request's whole escaped path (url.URL.EscapedPath, prefix included), so
// that "chat%2F1" is one segment (stream "chat/1"); the route's part of it
// starts at the first occurrence of its literal part.
func (r Route) Fits(escaped string) bool {
	lit, params := r.literal()
	if !params {
		return true // Lookup compared the whole path
	}
	i := strings.Index(escaped, lit)
	if i < 0 {
		return false
	}
	got, want := escaped[i+1:], r.Path[1:]
	for {
		g, gotRest, gotMore := strings.Cut(got, "/")
		w, wantRest, wantMore := strings.Cut(want, "/")
		if isParam(w) && g == "" || !isParam(w) && g != w {
			return false
		}
		if !wantMore || !gotMore {
			return wantMore == gotMore // as many segments as the route
		}
		got, want = gotRest, wantRest
	}
}

// Template is the path with each parameter written <name>, for messages:
// "/presence/<stream>/users".
func (r Route) Template() string {
	return strings.NewReplacer("{", "<", "}", ">").Replace(r.Path)
}

// Params returns the names of the route's parameters, in path order.
func (r Route) Params() []string {
	var names []string
	for _, seg := range strings.Split(r.Path, "/") {
		if isParam(seg) {
			names = append(names, seg[1:len(seg)-1])
		}
	}
	return names
}

func isParam(segment string) bool {
	return strings.HasPrefix(segment, "{") && strings.HasSuffix(segment, "}")
}
