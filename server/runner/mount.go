package runner

import (
	"net/http"
	"strings"
)

// mount is a client transport served on the main listener: which request
// paths are its, the handler that serves them through net/http and,
// optionally, the hook that serves them off the raw connection before
// net/http (wsFront). Adding a transport is adding its mount to
// Runner.mounts.
type mount struct {
	// name says what the transport is, in the listener's log line and in
	// the answer to a WebSocket client on a wrong path.
	name     string
	patterns []pathPattern
	handler  http.Handler
	// raw, when set, is tried first for the transport's requests that the
	// listener's front reads itself (see wsFront); it declines the ones
	// it does not take, which then go to handler through net/http.
	raw rawUpgrader
	// upgrades marks a WebSocket transport: a WebSocket client on a path
	// no mount serves is told where these are.
	upgrades bool
	// readsBody marks a transport that reads request bodies (bounded in
	// time by routes.boundBody).
	readsBody bool
}

// matches reports whether path is one of the mount's.
func (m *mount) matches(path string) bool {
	for _, p := range m.patterns {
		if p.match(path) {
			return true
		}
	}
	return false
}

// pathPattern is a request path, exact, whose segments may be parameters
// written ":name" ("/app/:key"): a parameter matches one non-empty
// segment. A pattern ending in "/*" is a prefix: "/ds/*" matches every
// path that starts with "/ds/" ("/ds/" itself included, so its handler
// can refuse an empty rest; "/ds" is not matched), for a transport whose
// path names a resource (a Durable Stream). No other wildcard.
type pathPattern struct {
	raw string
	// segments is raw split on "/", with ":" for a parameter; nil when raw
	// has no parameter and matches itself only.
	segments []string
	// prefix is set for a "/*" pattern: the path must start with it
	// (raw without its "*").
	prefix string
}

func parsePattern(p string) pathPattern {
	pp := pathPattern{raw: p}
	if strings.HasSuffix(p, "/*") {
		pp.prefix = strings.TrimSuffix(p, "*")
		return pp
	}
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		if len(seg) > 1 && seg[0] == ':' {
			segs[i] = ":"
			pp.segments = segs
		}
	}
	return pp
}

func (p pathPattern) match(path string) bool {
	if p.prefix != "" {
		return strings.HasPrefix(path, p.prefix)
	}
	if p.segments == nil {
		return path == p.raw
	}
	for i, want := range p.segments {
		seg, rest, more := strings.Cut(path, "/")
		if want == ":" && seg == "" || want != ":" && seg != want {
			return false
		}
		if last := i == len(p.segments)-1; last != !more {
			return false
		}
		path = rest
	}
	return true
}

// patterns parses paths.
func patterns(paths ...string) []pathPattern {
	out := make([]pathPattern, len(paths))
	for i, p := range paths {
		out[i] = parsePattern(p)
	}
	return out
}

// mounts lists the client transports the configuration turns on, in the
// order their paths are tried.
func (r *Runner) mounts() []mount {
	m := []mount{
		{name: "WebSocket", patterns: patterns(r.cfg.Server.Paths...), handler: r.ws, raw: r.ws, upgrades: true},
	}
	if r.sse != nil {
		m = append(m, mount{name: "SSE", patterns: patterns(r.cfg.SSE.Path), handler: r.sse, raw: r.sse, readsBody: true})
	}
	if r.ds != nil {
		m = append(m, mount{name: "Durable Streams", patterns: patterns(r.cfg.DS.Path + "/*"), handler: r.ds})
	}
	if r.pusher != nil {
		m = append(m, mount{name: "Pusher", patterns: patterns("/app/:key"), handler: r.pusher, raw: r.pusher, upgrades: true})
	}
	return m
}
