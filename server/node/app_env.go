package node

import (
	"net"
	"net/http"
	"strings"

	anycablepb "github.com/cablehub/cablehub/gen/anycable"
)

// requestEnv is what an App call's Env needs from the upgrade request,
// captured once per connection: the URL and the proxied header values.
// It is kept compact (no map) because every connection of a node with an
// App holds one, most of them never calling it.
type requestEnv struct {
	url string
	// headers are name, value pairs, names lower-case, REMOTE_ADDR last.
	headers []string
}

// captureEnv takes the Env of an upgrade request, as AnyCable builds it:
// the URL as http(s)://Host/RequestURI (never ws://), the first value of
// each header of o.Headers that is present and not empty (the cookie
// header filtered by o.Cookies), and REMOTE_ADDR, the peer's IP.
func captureEnv(r *http.Request, o *AppOptions) *requestEnv {
	scheme := "http://"
	if r.TLS != nil {
		scheme = "https://"
	}
	e := &requestEnv{url: scheme + r.Host + r.URL.RequestURI()}
	for _, name := range o.Headers {
		v := r.Header.Get(name)
		if name == "cookie" && len(o.Cookies) > 0 {
			v = filterCookies(v, o.Cookies)
		}
		if v != "" {
			// A copy: v may be a slice of the whole request head.
			e.headers = append(e.headers, name, strings.Clone(v))
		}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		e.headers = append(e.headers, "REMOTE_ADDR", host)
	}
	return e
}

// filterCookies keeps the cookies of header named in keep, as
// "a=1; b=2". Names are compared without the spaces around them and a
// value may hold "=" (base64 padding): AnyCable compares names with their
// leading space and drops such values, so it passes only the first
// cookie of a header (docs/rails.md, "Different from AnyCable on
// purpose"); the fix changes no cookie an app can receive from it.
func filterCookies(header string, keep []string) string {
	var b strings.Builder
	for piece := range strings.SplitSeq(header, ";") {
		name, _, ok := strings.Cut(piece, "=")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		for _, k := range keep {
			if k == name {
				if b.Len() > 0 {
					b.WriteString("; ")
				}
				b.WriteString(strings.TrimSpace(piece))
				break
			}
		}
	}
	return b.String()
}

// proto returns the Env of a call with the connection state cstate and
// the channel state istate (either may be nil).
func (e *requestEnv) proto(cstate, istate map[string]string) *anycablepb.Env {
	env := &anycablepb.Env{
		Url:     e.url,
		Headers: make(map[string]string, len(e.headers)/2),
		Cstate:  copyState(cstate),
		Istate:  copyState(istate),
	}
	for i := 0; i+1 < len(e.headers); i += 2 {
		env.Headers[e.headers[i]] = e.headers[i+1]
	}
	return env
}

// copyState copies a state map for a call, nil when empty: the call may
// still be encoding it when the session changes its own.
func copyState(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// mergeState applies a state update as AnyCable does: an empty value
// deletes its key, any other sets it, keys not mentioned are kept. It
// returns the map, allocated when m was nil and something is set.
func mergeState(m, update map[string]string) map[string]string {
	for k, v := range update {
		if v == "" {
			delete(m, k)
			continue
		}
		if m == nil {
			m = map[string]string{}
		}
		m[k] = v
	}
	return m
}
