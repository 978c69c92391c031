// Package admin serves the admin console: a single page (web/, embedded
// in the binary) that operators open in a browser to see the cluster and
// act on it, and the few endpoints the page needs besides the API: sign
// in, sign out, and the node's configuration.
//
// The console has no API of its own. The page calls the REST API with a
// session cookie, which the gateway accepts in place of a bearer token
// (gateway.Options.ConsoleSession) and the service's interceptor checks
// again (api.Auth.WithSessions), so what the console can do is exactly
// what an API token can, through the same code. The cookie counts only on
// requests that carry the header X-Cablehub-Console: 1, which a page of
// another origin cannot send without a CORS preflight the server never
// grants; with the cookie's SameSite=Strict this keeps other sites from
// acting with an operator's session.
package admin

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
)

//go:embed web
var web embed.FS

// Options configure the console.
type Options struct {
	// Path is --admin_path, without a trailing slash: the page is served
	// at Path+"/", its endpoints under Path.
	Path string
	// APIPath is --api_path, which the page calls.
	APIPath string
	// NodeID is the id of the node serving the page (GetInfo's).
	NodeID string
	// Credentials are the values that sign in: --admin_password and the
	// API token; empty ones are skipped, and New fails without any.
	Credentials []string
	// Config is the configuration the Configuration page shows, secrets
	// masked (config.Loaded.Printed).
	Config string
	// TTL is a session's lifetime, DefaultTTL when 0.
	TTL time.Duration
	// Now is the clock, time.Now when nil.
	Now func() time.Time
	// Log receives sign-ins, refusals and sign-outs (never a password or
	// a token).
	Log *slog.Logger
}

// Console is the console's HTTP handler. Mount it at Options.Path and
// every path under it.
type Console struct {
	opts        Options
	credentials [][]byte
	sessions    *Sessions
	limiter     *limiter
	files       map[string]asset
}

// asset is one embedded file with what its answer needs.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// ErrNoCredentials is New's error when nothing could sign in.
var ErrNoCredentials = errors.New("admin console: no credential to sign in with (--admin_password or an API secret)")

// New builds the console.
func New(opts Options) (*Console, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	c := &Console{opts: opts, limiter: newLimiter(opts.Now), files: map[string]asset{}}
	var keyed []string
	for _, cred := range opts.Credentials {
		if cred != "" {
			c.credentials = append(c.credentials, []byte(cred))
			keyed = append(keyed, cred)
		}
	}
	if len(c.credentials) == 0 {
		return nil, ErrNoCredentials
	}
	c.sessions = NewSessions(keyed, opts.TTL, opts.Now)
	err := fs.WalkDir(web, "web", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := web.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ct := mime.TypeByExtension(path.Ext(name))
		if ct == "" {
			ct = "application/octet-stream"
		}
		c.files[strings.TrimPrefix(name, "web/")] = asset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Sessions is the console's session verifier, for api.Auth.WithSessions.
func (c *Console) Sessions() *Sessions { return c.sessions }

// contentSecurityPolicy lets the page load only itself: no inline script
// or style, no other origin, no framing.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// ServeHTTP serves the page, its files and endpoints.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	rel, ok := strings.CutPrefix(r.URL.Path, c.opts.Path)
	switch {
	case !ok:
		http.NotFound(w, r)
	case rel == "":
		http.Redirect(w, r, c.opts.Path+"/", http.StatusPermanentRedirect)
	case rel == "/session":
		c.serveSession(w, r)
	case rel == "/config":
		c.serveConfig(w, r)
	case rel == "/":
		c.serveFile(w, r, "index.html")
	default:
		c.serveFile(w, r, strings.TrimPrefix(rel, "/"))
	}
}

// serveFile answers with an embedded file, revalidated by its ETag.
func (c *Console) serveFile(w http.ResponseWriter, r *http.Request, name string) {
	f, ok := c.files[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, codes.Unimplemented, "method "+r.Method+" is not allowed here, use GET")
		return
	}
	h := w.Header()
	h.Set("ETag", f.etag)
	if match := r.Header.Get("If-None-Match"); match != "" && match == f.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", f.contentType)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(f.body)
	}
}

// serveConfig answers GET {path}/config: the node's configuration,
// secrets masked.
func (c *Console) serveConfig(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		writeError(w, http.StatusMethodNotAllowed, codes.Unimplemented, "method "+r.Method+" is not allowed here, use GET")
		return
	}
	if _, ok := c.session(r); !ok {
		writeError(w, http.StatusUnauthorized, codes.Unauthenticated, signInMessage)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"node_id": c.opts.NodeID, "toml": c.opts.Config})
}
