// Package runner wires a Cablehub process together from its configuration:
// broker, hub, node, the gRPC API with its auth interceptor, the REST
// gateway, and the listeners that serve them.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/cablehub/cablehub/gateway"
	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
	"github.com/cablehub/cablehub/server/api"
	"github.com/cablehub/cablehub/server/broker"
	"github.com/cablehub/cablehub/server/config"
	"github.com/cablehub/cablehub/server/hub"
	"github.com/cablehub/cablehub/server/identity"
	"github.com/cablehub/cablehub/server/metrics"
	"github.com/cablehub/cablehub/server/node"
	"github.com/cablehub/cablehub/server/pubsub"
	"github.com/cablehub/cablehub/server/streams"
	"github.com/cablehub/cablehub/server/ws"
)

// Version is the server version: in the startup line, the upgrade
// response's X-Cablehub-Version header and --version. Release builds set it
// with -ldflags "-X github.com/cablehub/cablehub/server/runner.Version=..." (see the Makefile);
// nothing else writes it.
var Version = "0.1.0"

// maxCachedSession bounds one session's restore state in the broker: room
// for the subscriptions a connection may hold with ordinary identifiers,
// not for what the largest frames could make of them.
const maxCachedSession = 256 << 10

// Runner is one running Cablehub process.
type Runner struct {
	deps     *deps
	pubsub   clusterPubSub
	describe string // the broker's startup line
	cfg      *config.Config
	log      *slog.Logger
	node     *node.Node
	metrics  *metrics.Metrics
	ws       http.Handler
	stop     context.CancelFunc

	grpcServer *grpc.Server
	gwConn     *api.InProcess
	transport  *ws.Transport

	limits  limits
	servers []*http.Server
	wg      sync.WaitGroup
	errs    chan error

	// Addresses actually bound, for logs and tests.
	MainAddr, APIAddr, GRPCAddr, MetricsAddr string
}

// New builds the process's parts; nothing listens until Start.
func New(cfg *config.Config, log *slog.Logger) (*Runner, error) {
	d := &deps{}
	var b describedBroker
	var jetstream *broker.NATS // also b, with --broker nats
	switch cfg.Broker {
	case "memory":
		b = broker.NewMemory(broker.MemoryOptions{
			HistoryLimit: cfg.HistoryLimit,
			HistoryTTL:   cfg.HistoryTTL,
			SessionsTTL:  cfg.SessionsTTL,
			PresenceTTL:  cfg.PresenceTTL,
		})
	case "redis":
		if err := d.newRedis(cfg); err != nil {
			return nil, err
		}
		// With Redis as the pub/sub too (one client, one Redis), the
		// broker stamps and publishes on the pub/sub's channels in one step.
		var channel func(string) string
		if cfg.PubSub == "redis" {
			channel = pubsub.RedisChannel
		}
		b = broker.NewRedis(d.redis, "cablehub:", broker.MemoryOptions{
			HistoryLimit: cfg.HistoryLimit,
			HistoryTTL:   cfg.HistoryTTL,
			SessionsTTL:  cfg.SessionsTTL,
			PresenceTTL:  cfg.PresenceTTL,
		}, channel)
	case "nats":
		var err error
		if jetstream, err = d.newNATSBroker(cfg, log); err != nil {
			d.close()
			return nil, err
		}
		b = jetstream
	case "none":
		b = broker.None{}
	default:
		return nil, fmt.Errorf("unknown broker %q", cfg.Broker)
	}
	if cfg.EnforceJWT && cfg.JWTSecret == "" {
		return nil, errors.New("--enforce_jwt needs a JWT secret: set --jwt_secret or --secret")
	}
	m := metrics.New()
	router := streams.NewController(streams.Config{
		Secret:      cfg.StreamsSecret,
		Public:      cfg.PublicStreams,
		Whisper:     cfg.StreamsWhisper,
		Presence:    cfg.StreamsPresence,
		Turbo:       cfg.TurboStreams,
		TurboSecret: cfg.TurboStreamsSecret,
		Benchmark:   cfg.BenchmarkChannel,
	})
	n := node.New(hub.New(hub.DefaultShards), b, router, m, log.With("context", "node"), node.Options{
		PingInterval:  cfg.PingInterval,
		PingPrecision: cfg.PingPrecision,
		PongTimeout:   cfg.PongTimeout,
		SessionsTTL:   cfg.SessionsTTL,

		MaxSubscriptions:        cfg.MaxSubscriptionsPerConnection,
		MaxPresence:             cfg.MaxPresencePerConnection,
		MaxPresenceInfo:         cfg.MaxPresenceInfoSize,
		PresenceFromIdentifiers: cfg.PresenceIDFromIdentifiers,
		MaxCachedSession:        maxCachedSession,
		CatchUp:                 cfg.Broker == "redis" || cfg.Broker == "nats",
		Reorder:                 cfg.Broker == "redis" && cfg.PubSub == "nats",
		IdempotencyWindow:       cfg.IdempotencyWindow,
	})
	ps, err := d.newPubSub(cfg, n, jetstream, log)
	if err != nil {
		d.close()
		return nil, err
	}
	n.SetPubSub(ps)
	if jetstream != nil {
		jetstream.Attach(n.HandlePublication)
	}
	var jwtVerifier *identity.JWT
	if cfg.JWTSecret != "" {
		jwtVerifier = identity.NewJWT(cfg.JWTSecret, cfg.JWTParam, cfg.EnforceJWT)
	}
	transport := ws.NewTransport(ws.Options{
		AllowedOrigins: cfg.AllowedOrigins,
		MaxMessageSize: cfg.MaxMessageSize,
		MaxPending:     int(cfg.WSMaxPendingSize),
		WriteTimeout:   cfg.WSWriteTimeout,
		Header:         http.Header{"X-Cablehub-Version": {Version}},
		OnSent: func(frames, bytes int) {
			m.ServerMsgTotal.Add(float64(frames))
			m.DataSentTotal.Add(float64(bytes))
		},
	})
	r := &Runner{
		transport: transport,
		deps:      d,
		pubsub:    ps,
		describe:  b.Describe(),
		cfg:       cfg,
		log:       log,
		node:      n,
		metrics:   m,
		ws:        node.NewHandler(n, transport, identity.NewAuthenticator(jwtVerifier, cfg.Noauth)),
		errs:      make(chan error, 4),
		limits:    defaultLimits(),
	}
	return r, nil
}

// Node returns the process's node.
func (r *Runner) Node() *node.Node { return r.node }

// Errors reports a listener that stopped serving unexpectedly.
func (r *Runner) Errors() <-chan error { return r.errs }

// grpcServed reports whether the gRPC API runs at all: on the API's listener
// whenever the REST API does, or on a dedicated --grpc_port.
func (r *Runner) grpcServed() bool {
	return r.cfg.APIEnabled() || r.cfg.GRPCPort != 0
}

// Start binds every listener, logs where each part is served, and serves in
// the background. It fails when a port cannot be bound.
func (r *Runner) Start(ctx context.Context) error {
	cfg := r.cfg
	r.log.Info(fmt.Sprintf("Starting Cablehub %s (pid: %d, gomaxprocs: %d)", Version, os.Getpid(), runtime.GOMAXPROCS(0)))
	if cfg.Public {
		r.log.Warn("Server is running in the public mode")
	}
	if cfg.JWTSecret != "" {
		r.log.Info(fmt.Sprintf("JWT authentication is enabled (param: %s, enforced: %t)", cfg.JWTParam, cfg.EnforceJWT))
	}
	if cfg.Noauth {
		r.log.Info("connection authentication is disabled")
	}
	for _, w := range startupWarnings(cfg) {
		r.log.Warn(w)
	}
	r.log.Info(r.describe)
	r.log.Info(r.pubsub.Describe())

	auth := api.NewAuth(cfg.EffectiveAPISecret())
	var gw http.Handler
	if r.grpcServed() {
		if err := r.startGRPC(auth); err != nil {
			return err
		}
	}
	if cfg.APIEnabled() {
		g, err := gateway.New(ctx, gateway.Options{
			Prefix:      cfg.APIPath,
			Conn:        r.gwConn,
			Auth:        auth,
			MaxBodySize: cfg.APIMaxBodySize,
			BodyTimeout: r.limits.apiBody,
			CORS:        cfg.APICORSHeaders,
			CORSHosts:   cfg.APICORSHosts,
		})
		if err != nil {
			return fmt.Errorf("building the REST gateway: %w", err)
		}
		gw = g
	}
	grpcShared := r.grpcServed() && cfg.GRPCPort == 0

	mainLn, err := r.listen("--port", cfg.Port)
	if err != nil {
		return err
	}
	r.MainAddr = r.hostPort(mainLn)
	var apiLn net.Listener
	if gw != nil && cfg.APIPort != 0 {
		if apiLn, err = r.listen("--api_port", cfg.APIPort); err != nil {
			mainLn.Close()
			return err
		}
		r.APIAddr = r.hostPort(apiLn)
	} else if gw != nil {
		r.APIAddr = r.MainAddr
	}
	var grpcLn net.Listener
	if cfg.GRPCPort != 0 {
		if grpcLn, err = r.listen("--grpc_port", cfg.GRPCPort); err != nil {
			mainLn.Close()
			if apiLn != nil {
				apiLn.Close()
			}
			return err
		}
		r.GRPCAddr = r.hostPort(grpcLn)
	} else if grpcShared {
		r.GRPCAddr = r.APIAddr
	}

	var metricsLn net.Listener
	if cfg.MetricsHTTP != "" && cfg.MetricsPort != 0 && cfg.MetricsPort != cfg.Port {
		host := cfg.MetricsHost
		if host == "" {
			host = cfg.Host
		}
		addr := net.JoinHostPort(host, strconv.Itoa(cfg.MetricsPort))
		if metricsLn, err = net.Listen("tcp", addr); err != nil {
			mainLn.Close()
			return fmt.Errorf("cannot listen on %s (--metrics_port): %w", addr, err)
		}
		r.MetricsAddr = net.JoinHostPort(host, strconv.Itoa(metricsLn.Addr().(*net.TCPAddr).Port))
	} else if cfg.MetricsHTTP != "" {
		r.MetricsAddr = r.MainAddr
	}

	// The main listener: health and WebSocket endpoints, plus the API,
	// shared gRPC and metrics unless they have a port of their own.
	mainRoutes := &routes{healthPath: cfg.HealthPath, health: r.deps.health, wsPaths: cfg.Paths, ws: r.ws, pprof: cfg.Pprof}
	if cfg.MetricsHTTP != "" && metricsLn == nil {
		mainRoutes.metricsPath, mainRoutes.metrics = cfg.MetricsHTTP, r.metrics.Handler()
	}
	apiRoutes := &routes{}
	target := mainRoutes
	if apiLn != nil {
		target = apiRoutes
	}
	if gw != nil {
		target.apiPath, target.api = cfg.APIPath, instrument(gw, cfg.APIPath, r.metrics)
	}
	if grpcShared {
		target.grpc = r.grpcServer
	}
	if grpcShared {
		// gRPC clients get the gRPC server's own transport on the shared
		// port; net/http keeps serving everything else (and gRPC over h2c
		// where connections cannot be told apart before reading).
		shared := &mainLn
		if apiLn != nil {
			shared = &apiLn
		}
		var grpcSplit net.Listener
		*shared, grpcSplit = newSplitListener(*shared, 10*time.Second)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := r.grpcServer.Serve(grpcSplit); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				r.errs <- fmt.Errorf("gRPC on the shared listener: %w", err)
			}
		}()
	}
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
	r.serveHTTP(mainLn, mainRoutes)
	if apiLn != nil {
		r.serveHTTP(apiLn, apiRoutes)
	}
	if metricsLn != nil {
		r.serveHTTP(metricsLn, &routes{metricsPath: cfg.MetricsHTTP, metrics: r.metrics.Handler()})
	}
	if grpcLn != nil {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := r.grpcServer.Serve(grpcLn); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				r.errs <- fmt.Errorf("gRPC listener: %w", err)
			}
		}()
	}

	if gw != nil {
		mode := "authorization required"
		if !auth.Required() {
			mode = "no authorization"
			r.log.Warn("API server is running without authentication")
		}
		if cfg.APICORSHeaders {
			mode += ", CORS enabled"
		}
		r.log.Info(fmt.Sprintf("Handle API requests at http://%s%s (%s)", r.APIAddr, cfg.APIPath, mode), "context", "api")
	}
	if r.GRPCAddr != "" {
		mode := "authorization required"
		if !auth.Required() {
			mode = "no authorization"
		}
		kind := "h2c, shared with the REST API"
		if grpcLn != nil {
			kind = "dedicated listener"
		}
		r.log.Info(fmt.Sprintf("Handle gRPC API requests at %s (%s, %s)", r.GRPCAddr, mode, kind), "context", "grpc")
	}
	for _, p := range cfg.Paths {
		r.log.Info(fmt.Sprintf("Handle WebSocket connections at http://%s%s (clients connect to ws://%s%s)", r.MainAddr, p, r.MainAddr, p))
	}
	if r.MetricsAddr != "" {
		r.log.Info(fmt.Sprintf("Serve metrics at http://%s%s", r.MetricsAddr, cfg.MetricsHTTP))
	}
	// Logged last: tools waiting for startup may take it as "ready".
	r.log.Info(fmt.Sprintf("Handle health requests at http://%s%s", r.MainAddr, cfg.HealthPath))
	return nil
}

// startGRPC builds the gRPC server and the in-process connection the REST
// gateway uses to reach it, so REST calls pass the same interceptors.
// Panics are recovered inside the metrics interceptor, so they are counted
// as INTERNAL, and outside auth and the handlers, which they guard.
func (r *Runner) startGRPC(auth *api.Auth) error {
	rec := api.NewRecovery(r.log.With("context", "grpc"))
	opts := append(r.limits.grpcOptions(),
		grpc.ChainUnaryInterceptor(r.grpcMetrics, rec.UnaryInterceptor(), auth.UnaryInterceptor()),
		grpc.ChainStreamInterceptor(rec.StreamInterceptor(), auth.StreamInterceptor()),
		grpc.MaxRecvMsgSize(int(r.cfg.APIMaxBodySize)),
	)
	r.grpcServer = grpc.NewServer(opts...)
	svc := api.NewService(r.node, api.WithTimeout(r.cfg.PublishTimeout))
	cablehubv1.RegisterCableServiceServer(r.grpcServer, svc)
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(cablehubv1.CableService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(r.grpcServer, hs)
	reflection.Register(r.grpcServer)

	// REST calls are counted by their REST route (instrument), so only
	// recovery and the bearer check sit in their chain.
	r.gwConn = api.NewInProcess(&cablehubv1.CableService_ServiceDesc, svc, rec.UnaryInterceptor(), auth.UnaryInterceptor())
	return nil
}

func (r *Runner) listen(flagName string, port int) (net.Listener, error) {
	addr := net.JoinHostPort(r.cfg.Host, strconv.Itoa(port))
	// No TCP keep-alive probes: they cost four setsockopt calls per
	// accepted connection, WebSocket connections carry pings every few
	// seconds (a dead peer fails their writes), and idle HTTP connections
	// are closed by the server's IdleTimeout.
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s (%s): %w", addr, flagName, err)
	}
	return ln, nil
}

// hostPort is the configured host with the port actually bound, as logged.
func (r *Runner) hostPort(ln net.Listener) string {
	port := ln.Addr().(*net.TCPAddr).Port
	return net.JoinHostPort(r.cfg.Host, strconv.Itoa(port))
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

// Shutdown stops accepting connections, tells every client to reconnect
// (server_restart, close 1001), lets in-flight API calls finish, then
// closes everything; ctx bounds the whole sequence.
func (r *Runner) Shutdown(ctx context.Context) error {
	// Stop accepting and drain API requests, while clients are told to go.
	errc := make(chan error, len(r.servers))
	for _, srv := range r.servers {
		go func() {
			err := srv.Shutdown(ctx)
			if err != nil {
				srv.Close()
			}
			errc <- err
		}()
	}
	r.node.Shutdown(ctx)
	var errs []error
	for range r.servers {
		if err := <-errc; err != nil {
			errs = append(errs, err)
		}
	}
	if r.grpcServer != nil {
		done := make(chan struct{})
		go func() {
			r.grpcServer.GracefulStop()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			r.grpcServer.Stop()
			<-done
		}
	}
	if r.stop != nil {
		r.stop()
	}
	r.wg.Wait()
	r.transport.Close()
	r.deps.close()
	return errors.Join(errs...)
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
