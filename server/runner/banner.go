package runner

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/cablehub/cablehub/server/api"
)

// The startup lines are an interface: the end-to-end and JavaScript
// suites, and tools waiting for a server, parse them (TestStartupBanner
// pins them).

// logStarting logs what is about to start and the configuration's
// warnings, before any listener is bound.
func (r *Runner) logStarting() {
	cfg := r.cfg
	r.log.Info(fmt.Sprintf("Starting Cablehub %s (pid: %d, gomaxprocs: %d)", Version, os.Getpid(), runtime.GOMAXPROCS(0)), "nodeid", cfg.Server.NodeID)
	if cfg.Loaded.File != "" {
		r.log.Info("Using configuration from file: " + cfg.Loaded.File)
	}
	for _, n := range cfg.Loaded.Notices {
		r.log.Log(context.Background(), n.Level, n.Msg)
	}
	r.logDeployment()
	if cfg.Server.Public {
		r.log.Warn("Server is running in the public mode")
	}
	if cfg.JWT.Secret != "" {
		r.log.Info(fmt.Sprintf("JWT authentication is enabled (param: %s, enforced: %t)", cfg.JWT.Param, cfg.JWT.Enforce))
	}
	if cfg.Server.Noauth {
		r.log.Info("connection authentication is disabled")
	}
	for _, w := range append(startupWarnings(cfg), r.deployWarnings()...) {
		r.log.Warn(w)
	}
	r.log.Info(r.describe)
	if note := r.clusterBrokerNote(); note != "" {
		r.log.Info(note)
	}
	r.log.Info(r.pubsub.Describe())
	r.broadcasts.logStarting(cfg, r.log)
	for _, line := range r.deploy.describe {
		r.log.Info(line)
	}
	if r.deps.rpc.derivedKey {
		r.log.Info("auto-generated authorization secret from the application secret", "context", "rpc")
	}
	r.log.Info(r.deps.rpc.describe(cfg), "context", "rpc")
}

// logServing logs where each part is served, once every listener is bound.
// The health line comes last: tools waiting for startup may take it as
// "ready".
func (r *Runner) logServing(listeners []bound, skipped []skippedListener, auth *api.Auth) {
	cfg := r.cfg
	r.broadcasts.logServing(listeners, skipped, r.scheme(), r.log)
	mode := "authorization required"
	if !auth.Required() {
		mode = "no authorization"
	}
	if r.APIAddr != "" {
		apiMode := mode
		if !auth.Required() {
			r.log.Warn("API server is running without authentication")
		}
		if cfg.Gateway.CORS {
			apiMode += ", CORS enabled"
		}
		r.log.Info(fmt.Sprintf("Handle API requests at %s://%s%s (%s)", r.scheme(), r.APIAddr, cfg.Gateway.Prefix, apiMode), "context", "api")
	}
	if cfg.AdminServed() && r.APIAddr != "" {
		r.log.Info(fmt.Sprintf("Serve the admin console at %s://%s%s/", r.scheme(), r.APIAddr, cfg.Admin.Path), "context", "admin")
	}
	for _, b := range listeners {
		if !b.spec.serves(partGRPC) {
			continue
		}
		kind := "h2c, shared with the REST API"
		switch {
		case b.spec.grpcOnly && r.certs != nil:
			kind = "TLS, dedicated listener"
		case b.spec.grpcOnly:
			kind = "dedicated listener"
		case r.certs != nil:
			kind = "TLS, shared with the REST API"
		}
		r.log.Info(fmt.Sprintf("Handle gRPC API requests at %s (%s, %s)", r.GRPCAddr, mode, kind), "context", "grpc")
	}
	for _, p := range cfg.Server.Paths {
		r.log.Info(fmt.Sprintf("Handle WebSocket connections at %s://%s%s (clients connect to %s://%s%s)", r.scheme(), r.MainAddr, p, r.wsScheme(), r.MainAddr, p))
	}
	if r.MetricsAddr != "" {
		r.log.Info(fmt.Sprintf("Serve metrics at %s://%s%s", r.scheme(), r.MetricsAddr, cfg.Metrics.Path))
	}
	r.log.Info(fmt.Sprintf("Handle health requests at %s://%s%s", r.scheme(), r.MainAddr, cfg.Server.HealthPath))
	if cfg.SSE.Enabled {
		// After the health line, as AnyCable logs it.
		r.log.Info(fmt.Sprintf("Handle SSE requests at %s://%s%s", r.scheme(), r.MainAddr, cfg.SSE.Path))
	}
	if cfg.DS.Enabled {
		r.log.Info(fmt.Sprintf("Handle Durable Streams requests at %s://%s%s/*", r.scheme(), r.MainAddr, cfg.DS.Path))
	}
	r.logPusher()
}

// logDeployment logs, right after the first line, what the deployment
// flags changed: debug mode, the presets applied, the Redis topology.
func (r *Runner) logDeployment() {
	cfg := r.cfg
	if cfg.Log.Debug {
		r.log.Debug("Debug mode is on (--debug)")
	}
	if len(cfg.Server.Presets) > 0 {
		r.log.Info("Loaded presets: "+strings.Join(cfg.Server.Presets, ","), "context", "config")
	}
	if r.deps.redis != nil {
		r.log.Info("Connecting to "+r.deps.redisInfo.Describe(), "context", "redis")
	}
}
