// Package runner wires a Cablehub process together from its configuration:
// broker, hub, node, the gRPC API with its auth interceptor, the REST
// gateway, and the listeners that serve them.
package runner

import (
	"context"
	"errors"
	"fmt"
	"github.com/cablehub/cablehub/server/cluster"
	"github.com/cablehub/cablehub/server/pubsub"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/cablehub/cablehub/gateway"
	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
	"github.com/cablehub/cablehub/server/admin"
	"github.com/cablehub/cablehub/server/api"
	"github.com/cablehub/cablehub/server/broker"
	"github.com/cablehub/cablehub/server/config"
	"github.com/cablehub/cablehub/server/ds"
	"github.com/cablehub/cablehub/server/hub"
	"github.com/cablehub/cablehub/server/identity"
	"github.com/cablehub/cablehub/server/metrics"
	"github.com/cablehub/cablehub/server/node"
	"github.com/cablehub/cablehub/server/pusher"
	"github.com/cablehub/cablehub/server/redact"
	"github.com/cablehub/cablehub/server/sse"
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
	ws       *ws.Handler
	// sse is the Server-Sent Events endpoint, nil without --sse.
	sse *sse.Handler
	// ds is the Durable Streams read API, nil without --ds.
	ds *ds.Handler
	// pusher is the Pusher WebSocket endpoint, nil without Pusher mode.
	pusher *pusher.Handler
	// webhooks are the Pusher webhooks, the node's observer; nil without
	// --pusher_webhook_url.
	webhooks *pusher.Webhooks
	stop     context.CancelFunc

	// certs is the TLS certificate every listener serves, nil without
	// --ssl_cert and --ssl_key.
	certs *certificates

	grpcServer *grpc.Server
	gwConn     *api.InProcess
	transport  *ws.Transport
	// svc is the API service: behind gRPC and REST, and the sink of the
	// broadcast adapters.
	svc *api.Service
	// cluster is the node's view of the other nodes (announcements and
	// queries over the pub/sub).
	cluster    *cluster.Cluster
	broadcasts *broadcasts

	limits  limits
	deploy  deployParts
	servers []*http.Server
	wg      sync.WaitGroup
	errs    chan error

	// Addresses actually bound, for logs and tests.
	MainAddr, APIAddr, GRPCAddr, MetricsAddr string
	// PusherAPIAddr is where the Pusher HTTP API is served, if it is.
	PusherAPIAddr string
	// BroadcastAddr is where the http broadcast adapter is served, if it
	// is.
	BroadcastAddr string
}

// New builds the process's parts; nothing listens until Start. Whatever
// the runner and its parts log goes through log with URL credentials
// masked (redact.Logger), and its errors quote none.
func New(cfg *config.Config, log *slog.Logger) (*Runner, error) {
	r, err := newRunner(cfg, redact.Logger(log))
	return r, redact.Error(err)
}

func newRunner(cfg *config.Config, log *slog.Logger) (*Runner, error) {
	m := metrics.NewWithTags(cfg.Metrics.Tags)
	d := &deps{nodeID: cfg.Server.NodeID, metrics: m, log: log}
	var err error
	var b describedBroker
	switch cfg.Cluster.Broker {
	case "memory":
		b = broker.NewMemory(cfg.Broker)
	case "redis":
		if err := d.newRedis(cfg); err != nil {
			return nil, err
		}
		// With Redis as the pub/sub too (one client, one Redis), the
		// broker stamps and publishes on the pub/sub's channels in one step.
		var channel *broker.RedisChannels
		if cfg.Cluster.PubSub == "redis" {
			names := d.redisNames(cfg)
			channel = &broker.RedisChannels{Name: names.Channel, Sharded: names.IsSharded()}
		}
		b = broker.NewRedis(d.redis, d.redisPrefix(), cfg.Broker, channel)
	case "nats":
		if b, err = d.newNATSBroker(cfg, log); err != nil {
			d.close()
			return nil, err
		}
	case "none":
		b = broker.None{}
	default:
		return nil, fmt.Errorf("unknown broker %q", cfg.Cluster.Broker)
	}
	if cfg.JWT.Enforce && cfg.JWT.Secret == "" {
		d.close()
		return nil, errors.New("--enforce_jwt needs a JWT secret: set --jwt_secret or --secret")
	}
	if d.rpc, err = newRPC(cfg, m.RPC, log); err != nil {
		d.close()
		return nil, err
	}
	streamsCfg := cfg.Streams
	if cfg.Pusher.Enabled() {
		streamsCfg.Reserved = pusher.Protected
	}
	router := streams.NewController(streamsCfg)
	nodeOpts := cfg.Node
	if d.rpc.client != nil {
		nodeOpts.App = d.rpc.client
	}
	nodeOpts.CatchUp = cfg.Cluster.Broker == "redis" || cfg.Cluster.Broker == "nats"
	nodeOpts.Reorder = cfg.Cluster.Broker == "redis" && cfg.Cluster.PubSub == "nats"
	// A presence reply takes at most half of a client's queue, so that
	// what else is queued for the client leaves it room instead of
	// cutting the client as too slow.
	if cfg.WS.MaxPending > 0 {
		nodeOpts.MaxPresenceReply = max(1, cfg.WS.MaxPending/2)
	}
	webhooks, err := newPusherWebhooks(cfg, m, log)
	if err != nil {
		d.close()
		return nil, err
	}
	switch {
	case webhooks != nil: // not a typed nil in the interface
		nodeOpts.Observer = webhooks
	case cfg.Pusher.Enabled():
		// No webhooks: the node still records which channels are occupied,
		// for the HTTP API's channel queries.
		nodeOpts.Observer = pusher.ChannelWatch{}
	}
	if nodeOpts.Observer != nil {
		nodeOpts.OccupancyID = occupancyID(cfg)
	}
	n := node.New(hub.New(hub.DefaultShards), b, router, m, log.With("context", "node"), nodeOpts)
	ps, err := d.newPubSub(cfg, n, log)
	if err != nil {
		d.close()
		return nil, err
	}
	n.SetPubSub(ps)
	m.CountDeliveries(n.Delivered)
	_, alone := ps.(*pubsub.Local)
	peers := cluster.New(ps, nodeStats{n, m}, cluster.Options{Version: Version, Alone: alone}, log.With("context", "cluster"))
	n.SetClusterHandler(peers.Handle)
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
	gate := node.NewGate(n, identity.NewAuthenticator(jwtVerifier, cfg.Server.Noauth))
	r := &Runner{
		transport: transport,
		deps:      d,
		pubsub:    ps,
		describe:  b.Describe(),
		cfg:       cfg,
		log:       log,
		node:      n,
		metrics:   m,
		ws:        ws.NewHandler(gate, transport),
		errs:      make(chan error, 4),
		limits:    defaultLimits(),
		svc: api.NewService(n, api.WithTimeout(cfg.API.PublishTimeout),
			api.WithGate(gate), api.WithCluster(peers)),
		cluster:  peers,
		webhooks: webhooks,
	}
	if cfg.SSE.Enabled {
		r.sse = sse.NewHandler(gate, transport, sse.Options{
			AllowedOrigins: cfg.WS.AllowedOrigins,
			JWTHeader:      "X-" + strings.ToUpper(cfg.JWT.Param),
			Header:         http.Header{"X-Cablehub-Version": {Version}},
			OnOpen:         m.SSEClientsNum.Inc,
			OnClose:        m.SSEClientsNum.Dec,
		}, log.With("context", "sse"))
	}
	if cfg.DS.Enabled {
		r.ds = newDS(cfg, n, gate, transport, log)
	}
	r.pusher = newPusherWS(cfg, gate, transport, m)
	if r.pusher != nil {
		d.pusher = r.pusherHealth
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
	return redact.Error(r.start(ctx))
}

func (r *Runner) start(ctx context.Context) error {
	cfg := r.cfg
	if cfg.TLS.Enabled() {
		certs, err := loadCertificates(cfg.TLS.CertPath, cfg.TLS.KeyPath, r.log)
		if err != nil {
			return err
		}
		r.certs = certs
	}
	b, err := newBroadcasts(cfg, r.deps, r.svc, r.limits, r.log)
	if err != nil {
		return err
	}
	r.broadcasts, r.deps.broadcasts = b, b
	r.logStarting()
	specs := planBroadcast(cfg, plan(cfg))
	auth := api.NewAuth(cfg.EffectiveAPISecret())
	h := handlers{health: r.deps.health, mounts: r.mounts(), metrics: r.metrics.Handler(), broadcast: b.handler(), pusherAPI: r.pusherAPI()}
	if served(specs, partGRPC) {
		r.buildGRPC(auth)
		h.grpc = r.grpcServer
	}
	if served(specs, partAdmin) {
		console, err := admin.New(admin.Options{
			Path: cfg.Admin.Path, APIPath: cfg.Gateway.Prefix, NodeID: r.cluster.ID(),
			Credentials: []string{cfg.Admin.Password, cfg.EffectiveAPISecret()},
			Config:      cfg.Loaded.Printed, Log: r.log.With("context", "admin"),
		})
		if err != nil {
			return err
		}
		auth.WithSessions(console.Sessions())
		h.admin = console
	}
	if served(specs, partAPI) {
		gwOpts := cfg.Gateway
		gwOpts.Conn, gwOpts.Auth, gwOpts.BodyTimeout = r.gwConn, auth, r.limits.apiBody
		if h.admin != nil {
			gwOpts.ConsoleSession = admin.RequestSession
		}
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
	if r.webhooks != nil {
		r.webhooks.Start()
	}
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
		if b.spec.serves(partPusherAPI) {
			r.PusherAPIAddr = b.addr
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
	r.gwConn = api.NewInProcess(&cablehubv1.CableService_ServiceDesc, svc, rec.UnaryInterceptor(), auth.UnaryInterceptor()).
		WithStreams(&cablehubv1.CableService_ServiceDesc, rec.StreamInterceptor(), auth.StreamInterceptor())
}

// Shutdown stops the broadcast adapters, stops accepting connections,
// tells every client to reconnect (server_restart, close 1001), lets
// in-flight API calls (and HTTP broadcasts) finish, sends the Pusher
// webhooks still queued (for at most webhookCloseTimeout), then closes
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
	// The node has stopped: what it reported last is sent now.
	r.closeWebhooks(ctx)
	r.transport.Close()
	r.deploy.close()
	r.deps.close()
	return errors.Join(errs...)
}

// newDS builds the Durable Streams read API. Its readers are admitted
// through the node's gate like any client, or, with --ds_skip_auth,
// through a gate of their own that accepts them unidentified.
func newDS(cfg *config.Config, n *node.Node, gate *node.Gate, t *ws.Transport, log *slog.Logger) *ds.Handler {
	if cfg.DS.SkipAuth {
		gate = node.NewGate(n, ds.Anyone{})
	}
	return ds.NewHandler(n, gate, t, ds.Options{
		Prefix:         cfg.DS.Path,
		PollInterval:   cfg.DS.PollInterval,
		SSETTL:         cfg.DS.SSETTL,
		Secret:         cfg.Streams.Secret,
		Public:         cfg.Streams.Public,
		Private:        !cfg.Server.Noauth && !cfg.DS.SkipAuth,
		AllowedOrigins: cfg.WS.AllowedOrigins,
		JWTHeader:      "X-" + strings.ToUpper(cfg.JWT.Param),
		Header:         http.Header{"X-Cablehub-Version": {Version}},
	}, log.With("context", "ds"))
}
