package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
)

// handlers are the parts a listener may serve, built before any listener
// is bound; api and grpc are nil when no listener serves them.
type handlers struct {
	health  http.HandlerFunc
	ws      wsHandler
	api     http.Handler
	grpc    *grpc.Server
	metrics http.Handler
	// broadcast is the http broadcast adapter, nil without one.
	broadcast http.Handler
}

// wsHandler serves WebSocket upgrades through net/http and, on the raw
// connection, through the listener's front (wsFront); *node.Handler is one.
type wsHandler interface {
	http.Handler
	rawUpgrader
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
	r.deps.monitor(nodeCtx, r.log)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.deploy.run(nodeCtx, r.metrics, r.cfg.Metrics.RotateInterval)
	}()

	for _, b := range listeners {
		if b.spec.grpcOnly {
			r.serveGRPC(b.ln, "gRPC listener")
			continue
		}
		ln := b.ln
		var ws *wsFront
		if b.spec.serves(partWS) && !r.limits.upgradeViaNetHTTP {
			ws = newWSFront(r.cfg.Server.Paths, h.ws)
			ws.onRaw = r.limits.onRawUpgrade
		}
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

// routes is what spec's listener serves over HTTP.
func (r *Runner) routes(spec listenerSpec, h handlers) *routes {
	cfg := r.cfg
	rt := &routes{}
	for _, p := range spec.parts {
		switch p {
		case partHealth:
			rt.healthPath, rt.health = cfg.Server.HealthPath, h.health
		case partWS:
			rt.wsPaths, rt.ws = cfg.Server.Paths, h.ws
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
	srv := &http.Server{
		Handler:           h,
		Protocols:         &protocols,
		ReadHeaderTimeout: 10 * time.Second,
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
	healthPath  string
	health      http.HandlerFunc
	wsPaths     []string
	ws          http.Handler
	apiPath     string
	api         http.Handler
	metricsPath string
	metrics     http.Handler
	grpc        *grpc.Server
	pprof       bool
	// broadcastPath is served by the http broadcast adapter, exactly.
	broadcastPath string
	broadcast     http.Handler
}

func (rt *routes) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if rt.grpc != nil && req.ProtoMajor == 2 && strings.HasPrefix(req.Header.Get("Content-Type"), "application/grpc") {
		rt.grpc.ServeHTTP(w, req)
		return
	}
	path := req.URL.Path
	switch {
	case rt.healthPath != "" && path == rt.healthPath:
		rt.health(w, req)
	case rt.ws != nil && slices.Contains(rt.wsPaths, path):
		rt.ws.ServeHTTP(w, req)
	case rt.broadcast != nil && path == rt.broadcastPath:
		rt.broadcast.ServeHTTP(w, req)
	case rt.api != nil && (path == rt.apiPath || strings.HasPrefix(path, rt.apiPath+"/")):
		rt.api.ServeHTTP(w, req)
	case rt.metrics != nil && path == rt.metricsPath:
		rt.metrics.ServeHTTP(w, req)
	case rt.pprof && strings.HasPrefix(path, "/debug/pprof/"):
		servePprof(w, req)
	case rt.ws != nil && strings.EqualFold(req.Header.Get("Upgrade"), "websocket"):
		// A WebSocket client on the wrong path: say where the endpoints are.
		http.Error(w, fmt.Sprintf("404 no WebSocket endpoint at %s: connect to %s", path, strings.Join(rt.wsPaths, ", ")), http.StatusNotFound)
	default:
		http.NotFound(w, req)
	}
}
