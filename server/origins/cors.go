package origins

import (
	"net/http"
	"strings"
)

// CORS is the cross-origin policy of the HTTP client transports (Server-
// Sent Events, Durable Streams): who may read their answers from a page of
// another origin. It is AnyCable's, with what breaks browsers fixed:
// credentialed requests need the origin echoed (never "*"), so a request
// with an Origin gets it back (and Vary: Origin); preflights must list
// every method and header the endpoint takes.
type CORS struct {
	// Hosts are the allowed origins (--allowed_origins); none allows
	// every origin.
	Hosts []string
	// Methods and Headers are what a preflight is told the endpoint
	// takes ("GET, POST, OPTIONS"; header names, comma-separated).
	Methods, Headers string
}

// DefaultHeaders are the request headers every client transport takes;
// the JWT header and Last-Event-ID come on top where they apply.
const DefaultHeaders = "Origin, X-Requested-With, X-Request-ID, Content-Type, Accept, X-CSRF-Token, Authorization"

// Apply writes the CORS headers of an answer to r. An origin outside Hosts
// gets no Access-Control-Allow-Origin (the browser then hides the answer);
// the request is still served, as AnyCable serves it.
func (c *CORS) Apply(h http.Header, r *http.Request) {
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Set("Access-Control-Allow-Headers", c.Headers)
	h.Set("Access-Control-Allow-Methods", c.Methods)
	h.Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	switch {
	case origin == "" && len(c.Hosts) == 0:
		h.Set("Access-Control-Allow-Origin", "*")
	case origin == "":
	case len(c.Hosts) == 0 || Match(origin, c.Hosts):
		h.Set("Access-Control-Allow-Origin", strings.ToLower(origin))
	}
}
