// Package runner wires a Cablehub process together from its configuration:
// broker, hub, node, the gRPC API with its auth interceptor, the REST
// gateway, and the listeners that serve them.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

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

// Runner is one running Cablehub process.
type Runner struct {
	deps     *deps
	pubsub   clusterPubSub
	describe string // the broker's startup line
	cfg      *config.Config
	log      *slog.Logger
	node     *node.Node
	metrics  *metrics.Metrics
	ws       *node.Handler
	stop     context.CancelFunc

	grpcServer *grpc.Server
	gwConn     *api.InProcess
	transport  *ws.Transport
	// svc is the API service: behind gRPC and REST, and the sink of the
	// broadcast adapters.
	svc        *api.Service
	broadcasts *broadcasts

	limits  limits
	deploy  deployParts
	servers []*http.Server
	wg      sync.WaitGroup
	errs    chan error

	// Addresses actually bound, for logs and tests.
	MainAddr, APIAddr, GRPCAddr, MetricsAddr string
	// BroadcastAddr is where the http broadcast adapter is served, if it
	// is.
	BroadcastAddr string
}

// New builds the process's parts; nothing listens until Start.
func New(cfg *config.Config, log *slog.Logger) (*Runner, error) {
	d := &deps{nodeID: cfg.Server.NodeID}
	var err error
	var b describedBroker
	var jetstream *broker.NATS // also b, with --broker nats
	switch cfg.Cluster.Broker {
	case "memory":
		b = broker.NewMemory(cfg.Broker)
	case "redis":
		if err := d.newRedis(cfg); err != nil {
			return nil, err
		}
		// With Redis as the pub/sub too (one client, one Redis), the
		// broker stamps and publishes on the pub/sub's channels in one step.
		var channel func(string) string
		if cfg.Cluster.PubSub == "redis" {
			channel = pubsub.RedisChannel
		}
		b = broker.NewRedis(d.redis, d.redisPrefix(), cfg.Broker, channel)
	case "nats":
		if jetstream, err = d.newNATSBroker(cfg, log); err != nil {
			d.close()
			return nil, err
		}
		b = jetstream
	case "none":
		b = broker.None{}
	default:
		return nil, fmt.Errorf("unknown broker %q", cfg.Cluster.Broker)
	}
	if cfg.JWT.Enforce && cfg.JWT.Secret == "" {
		d.close()
		return nil, errors.New("--enforce_jwt needs a JWT secret: set --jwt_secret or --secret")
	}
	m := metrics.NewWithTags(cfg.Metrics.Tags)
	if d.rpc, err = newRPC(cfg, m.RPC, log); err != nil {
		d.close()
		return nil, err
	}
	router := streams.NewController(cfg.Streams)
	nodeOpts := cfg.Node
	if d.rpc.client != nil {
		nodeOpts.App = d.rpc.client
	}
	nodeOpts.CatchUp = cfg.Cluster.Broker == "redis" || cfg.Cluster.Broker == "nats"
	nodeOpts.Reorder = cfg.Cluster.Broker == "redis" && cfg.Cluster.PubSub == "nats"
	n := node.New(hub.New(hub.DefaultShards), b, router, m, log.With("context", "node"), nodeOpts)
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
	if cfg.JWT.Secret != "" {
		jwtVerifier = identity.NewJWT(cfg.JWT)
	}
	wsOpts := cfg.WS
	wsOpts.Header = http.Header{"X-Cablehub-Version": {Version}}
	wsOpts.OnSent = func(frames, bytes int) {
		m.ServerMsgTotal.Add(float64(frames))
		m.DataSentTotal.Add(float64(bytes))
	}
	transport := ws.NewTransport(wsOpts)
	r := &Runner{
		transport: transport,
		deps:      d,
		pubsub:    ps,
		describe:  b.Describe(),
		cfg:       cfg,
		log:       log,
		node:      n,
		metrics:   m,
		ws:        node.NewHandler(n, transport, identity.NewAuthenticator(jwtVerifier, cfg.Server.Noauth)),
		errs:      make(chan error, 4),
		limits:    defaultLimits(),
		svc:       api.NewService(n, api.WithTimeout(cfg.API.PublishTimeout)),
	}
	if r.deploy, err = newDeployParts(cfg, r); err != nil {
		d.close()
		return nil, err
	}
	return r, nil
}

// Node returns the process's node.
func (r *Runner) Node() *node.Node { return r.node }

// Errors reports a listener that stopped serving unexpectedly.
func (r *Runner) Errors() <-chan error { return r.errs }

// Start binds every listener, logs where each part is served, and serves in
// the background. It fails when the REST gateway cannot be built or a port
// cannot be bound; then no listener is left open.
func (r *Runner) Start(ctx context.Context) error {
	cfg := r.cfg
	b, err := newBroadcasts(cfg, r.deps, r.svc, r.limits, r.log)
	if err != nil {
		return err
	}
	r.broadcasts, r.deps.broadcasts = b, b
	r.logStarting()
	specs := planBroadcast(cfg, plan(cfg))
	auth := api.NewAuth(cfg.EffectiveAPISecret())
	h := handlers{health: r.deps.health, ws: r.ws, metrics: r.metrics.Handler(), broadcast: b.handler()}
	if served(specs, partGRPC) {
		r.buildGRPC(auth)
		h.grpc = r.grpcServer
	}
	if served(specs, partAPI) {
		gwOpts := cfg.Gateway
		gwOpts.Conn, gwOpts.Auth, gwOpts.BodyTimeout = r.gwConn, auth, r.limits.apiBody
		gw, err := gateway.New(ctx, gwOpts)
		if err != nil {
			return fmt.Errorf("building the REST gateway: %w", err)
		}
		h.api = instrument(gw, cfg.Gateway.Prefix, r.metrics)
	}
	listeners, skipped, err := bind(specs)
	if err != nil {
		return err
	}
	r.setAddrs(listeners)
	r.serve(listeners, h)
	b.start()
	r.logServing(listeners, skipped, auth)
	return nil
}

// setAddrs records where each part is served: the main listener's address,
// and the address of the listener serving the API, gRPC and metrics ("" for
// a part not served).
func (r *Runner) setAddrs(listeners []bound) {
	r.MainAddr = listeners[0].addr
	for _, b := range listeners {
		if b.spec.serves(partAPI) {
			r.APIAddr = b.addr
		}
		if b.spec.serves(partGRPC) {
			r.GRPCAddr = b.addr
		}
		if b.spec.serves(partMetrics) {
			r.MetricsAddr = b.addr
		}
		if b.spec.serves(partBroadcast) {
			r.BroadcastAddr = b.addr
		}
	}
}

// buildGRPC builds the gRPC server and the in-process connection the REST
// gateway uses to reach it, so REST calls pass the same interceptors.
// Panics are recovered inside the metrics interceptor, so they are counted
// as INTERNAL, and outside auth and the handlers, which they guard.
func (r *Runner) buildGRPC(auth *api.Auth) {
	rec := api.NewRecovery(r.log.With("context", "grpc"))
	opts := append(r.limits.grpcOptions(),
		grpc.ChainUnaryInterceptor(r.grpcMetrics, rec.UnaryInterceptor(), auth.UnaryInterceptor()),
		grpc.ChainStreamInterceptor(rec.StreamInterceptor(), auth.StreamInterceptor()),
		grpc.MaxRecvMsgSize(int(r.cfg.Gateway.MaxBodySize)),
	)
	r.grpcServer = grpc.NewServer(opts...)
	svc := r.svc
	cablehubv1.RegisterCableServiceServer(r.grpcServer, svc)
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(cablehubv1.CableService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(r.grpcServer, hs)
	reflection.Register(r.grpcServer)

	// REST calls are counted by their REST route (instrument), so only
	// recovery and the bearer check sit in their chain.
	r.gwConn = api.NewInProcess(&cablehubv1.CableService_ServiceDesc, svc, rec.UnaryInterceptor(), auth.UnaryInterceptor())
}

// Shutdown stops the broadcast adapters, stops accepting connections,
// tells every client to reconnect (server_restart, close 1001), lets
// in-flight API calls (and HTTP broadcasts) finish, then closes
// everything; ctx bounds the whole sequence.
func (r *Runner) Shutdown(ctx context.Context) error {
	r.waitShutdownDelay(ctx)
	// The broadcast adapters stop first, while the broker and pub/sub
	// still take what they are handing over.
	if r.broadcasts != nil {
		r.broadcasts.shutdown(ctx)
	}
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
	r.deploy.close()
	r.deps.close()
	return errors.Join(errs...)
}
