package runner

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/cablehub/cablehub/server/memtrim"
)

// handlers are the parts a listener may serve, built before any listener
// is bound; api and grpc are nil when no listener serves them.
type handlers struct {
	health http.HandlerFunc
	// mounts are the client transports, served on the main listener.
	mounts  []mount
	api     http.Handler
	grpc    *grpc.Server
	metrics http.Handler
	// broadcast is the http broadcast adapter, nil without one.
	broadcast http.Handler
	// pusherAPI is the Pusher HTTP API, a mount of its own listener or of
	// the main one.
	pusherAPI mount
	// admin is the admin console, nil when it is not served.
	admin http.Handler
}

// serve starts the node, the pub/sub and the dependency monitor, then
// serves every bound listener in the background. Listeners that stop
// unexpectedly report on Errors; Shutdown stops them all.
func (r *Runner) serve(listeners []bound, h handlers) {
	nodeCtx, stop := context.WithCancel(context.Background())
	r.stop = stop
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.node.Run(nodeCtx)
	}()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.pubsub.Run(nodeCtx)
	}()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.cluster.Run(nodeCtx)
	}()
	r.deps.monitor(nodeCtx, r.log)
	if r.cfg.Server.MemoryTrim {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			memtrim.New(memtrim.Options{}).Run(nodeCtx)
		}()
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.deploy.run(nodeCtx, r.metrics, r.cfg.Metrics.RotateInterval)
	}()

	var tlsConfig *tls.Config
	if r.certs != nil {
		tlsConfig = r.certs.serverConfig()
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.certs.watch(nodeCtx)
		}()
	}
	for _, b := range listeners {
		var ws *wsFront
		if b.spec.serves(partWS) && !r.limits.upgradeViaNetHTTP {
			ws = newWSFront(h.mounts)
			ws.onRaw = r.limits.onRawUpgrade
		}
		switch {
		case tlsConfig != nil && b.spec.grpcOnly:
			r.serveGRPC(tls.NewListener(b.ln, tlsConfig), "gRPC listener")
			continue
		case tlsConfig != nil:
			// Every listener serves TLS, as in AnyCable. gRPC clients,
			// which offer only h2 (see chooseHTTP1), reach the gRPC server
			// through net/http (routes.ServeHTTP).
			r.serveHTTP(newTLSFront(b.ln, tlsConfig, ws, 10*time.Second), r.routes(b.spec, h))
			continue
		case b.spec.grpcOnly:
			r.serveGRPC(b.ln, "gRPC listener")
			continue
		}
		ln := b.ln
		if grpcShared := b.spec.serves(partGRPC); grpcShared || ws != nil {
			// gRPC clients get the gRPC server's own transport on the
			// shared port, WebSocket upgrades are answered before net/http;
			// net/http keeps serving everything else (and gRPC over h2c
			// where connections cannot be told apart before reading).
			var grpcLn net.Listener
			ln, grpcLn = newSplitListener(ln, 10*time.Second, grpcShared, ws)
			if grpcShared {
				r.serveGRPC(grpcLn, "gRPC on the shared listener")
			}
		}
		r.serveHTTP(ln, r.routes(b.spec, h))
	}
}

// scheme is the listeners' URL scheme, for the startup lines.
func (r *Runner) scheme() string {
	if r.certs != nil {
		return "https"
	}
	return "http"
}

// wsScheme is the scheme WebSocket clients connect with.
func (r *Runner) wsScheme() string {
	if r.certs != nil {
		return "wss"
	}
	return "ws"
}

// routes is what spec's listener serves over HTTP.
func (r *Runner) routes(spec listenerSpec, h handlers) *routes {
	cfg := r.cfg
	rt := &routes{bodyTimeout: r.limits.apiBody}
	for _, p := range spec.parts {
		switch p {
		case partHealth:
			rt.healthPath, rt.health = cfg.Server.HealthPath, h.health
		case partWS:
			rt.mounts = append(rt.mounts, h.mounts...)
		case partPusherAPI:
			rt.mounts = append(rt.mounts, h.pusherAPI)
		case partAPI:
			rt.apiPath, rt.api = cfg.Gateway.Prefix, h.api
		case partGRPC:
			rt.grpc = h.grpc
		case partMetrics:
			rt.metricsPath, rt.metrics = cfg.Metrics.Path, h.metrics
		case partPprof:
			rt.pprof = true
		case partBroadcast:
			rt.broadcastPath, rt.broadcast = cfg.Broadcast.Options.HTTP.Path, h.broadcast
		case partAdmin:
			rt.adminPath, rt.admin = cfg.Admin.Path, h.admin
		}
	}
	return rt
}

func (r *Runner) serveGRPC(ln net.Listener, what string) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if err := r.grpcServer.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			r.errs <- fmt.Errorf("%s: %w", what, err)
		}
	}()
}

func (r *Runner) serveHTTP(ln net.Listener, h http.Handler) {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	protocols.SetHTTP2(r.certs != nil)
	srv := &http.Server{
		Handler:           h,
		Protocols:         &protocols,
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext:       withTLSState,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(r.log.Handler(), slog.LevelDebug),
	}
	r.servers = append(r.servers, srv)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.errs <- fmt.Errorf("HTTP listener %s: %w", ln.Addr(), err)
		}
	}()
}

// routes dispatches one listener's requests. It is hand-written rather than
// an http.ServeMux because ServeMux cleans paths and redirects, which would
// turn "/api/presence//users" into a 301 instead of the contract's 404.
type routes struct {
	healthPath string
	health     http.HandlerFunc
	// mounts are the client transports this listener serves.
	mounts      []mount
	apiPath     string
	api         http.Handler
	metricsPath string
	metrics     http.Handler
	grpc        *grpc.Server
	pprof       bool
	// broadcastPath is served by the http broadcast adapter, exactly.
	broadcastPath string
	broadcast     http.Handler
	// adminPath and every path under it are the admin console's.
	adminPath string
	admin     http.Handler
	// bodyTimeout bounds receiving any HTTP/1 request's body (boundBody).
	bodyTimeout time.Duration
}

func (rt *routes) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.TLS == nil {
		req.TLS = tlsStateOf(req.Context())
	}
	if rt.grpc != nil && req.ProtoMajor == 2 && strings.HasPrefix(req.Header.Get("Content-Type"), "application/grpc") {
		rt.grpc.ServeHTTP(w, req)
		return
	}
	h, readsBody := rt.route(req)
	rt.boundBody(w, req, readsBody)
	h.ServeHTTP(w, req)
}

// route picks the handler of req's path, and says whether it reads request
// bodies: only the REST API, the http broadcast adapter and the admin
// console (its sign-in) do.
func (rt *routes) route(req *http.Request) (h http.Handler, readsBody bool) {
	path := req.URL.Path
	switch {
	case rt.healthPath != "" && path == rt.healthPath:
		return rt.health, false
	case rt.mount(path) != nil:
		m := rt.mount(path)
		return m.handler, m.readsBody
	case rt.broadcast != nil && path == rt.broadcastPath:
		return rt.broadcast, true
	case rt.api != nil && (path == rt.apiPath || strings.HasPrefix(path, rt.apiPath+"/")):
		return rt.api, true
	case rt.admin != nil && (path == rt.adminPath || strings.HasPrefix(path, rt.adminPath+"/")):
		return rt.admin, true
	case rt.metrics != nil && path == rt.metricsPath:
		return rt.metrics, false
	case rt.pprof && strings.HasPrefix(path, "/debug/pprof/"):
		return http.HandlerFunc(servePprof), false
	case strings.EqualFold(req.Header.Get("Upgrade"), "websocket") && len(rt.upgradePaths()) > 0:
		// A WebSocket client on the wrong path: say where the endpoints are.
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, fmt.Sprintf("404 no WebSocket endpoint at %s: connect to %s", path, strings.Join(rt.upgradePaths(), ", ")), http.StatusNotFound)
		}), false
	}
	return http.HandlerFunc(http.NotFound), false
}

// mount returns the transport serving path, nil for none.
func (rt *routes) mount(path string) *mount {
	for i := range rt.mounts {
		if rt.mounts[i].matches(path) {
			return &rt.mounts[i]
		}
	}
	return nil
}

// upgradePaths lists the paths of the WebSocket transports, as written.
func (rt *routes) upgradePaths() []string {
	var out []string
	for _, m := range rt.mounts {
		if m.upgrades {
			for _, p := range m.patterns {
				out = append(out, p.raw)
			}
		}
	}
	return out
}

// boundBody bounds how long an HTTP/1 request that announces a body
// (Content-Length or chunked) may take to deliver it: bodyTimeout from now,
// as a read deadline on the connection. Whatever reads the body is bounded
// by it: the handler, and net/http itself, which reads what a handler left
// unread (up to 256 KiB) before the connection's next request, or before it
// closes the connection. Without it, a client announcing a body it never
// sends holds the connection and its goroutine for as long as it likes.
//
// The REST API and the broadcast adapter set the same bound themselves
// and lift it once the body is in (httpbody.Limit.Deadline), so a call that
// outlasts it is not cut. Every other handler ignores bodies: it answers
// at once, with Connection: close, and net/http reads what it can of the
// unread body within the bound before closing (so the client is not reset
// before it reads the answer). HTTP/2 requests need none of this: an
// unread stream ends with its handler; gRPC streams are long on purpose.
// A WebSocket upgrade clears the deadline when it takes the connection.
func (rt *routes) boundBody(w http.ResponseWriter, req *http.Request, readsBody bool) {
	if req.ProtoMajor != 1 || req.ContentLength == 0 || rt.bodyTimeout <= 0 {
		return
	}
	if err := http.NewResponseController(w).SetReadDeadline(time.Now().Add(rt.bodyTimeout)); err != nil {
		return
	}
	if !readsBody {
		w.Header().Set("Connection", "close")
	}
}
