package runner

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/cablehub/cablehub/server/broadcast"
	"github.com/cablehub/cablehub/server/config"
)

// broadcasts are the process's broadcast adapters (--broadcast_adapter),
// fed into the API service, the same path as POST /api/publish.
//
// Whether an adapter that cannot run fails /health depends on how the
// list was given. Listed explicitly (flag or environment), the operator
// asked for it, so it being down is the process being unhealthy: /health
// answers 503 naming it. The default list (AnyCable's http,redis) is not
// something anyone asked for: Cablehub without flags must run on a
// machine without Redis, so there the redis adapter's outage is reported
// in /health's JSON and logged (a WARN per reconnect attempt) but /health
// stays 200, and the http adapter's default port 8090 being taken is a
// WARN instead of a startup failure.
type broadcasts struct {
	adapters []broadcast.Adapter
	// http is the http adapter, nil when not listed.
	http     *broadcast.HTTP
	explicit bool

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// newBroadcasts builds the adapters cfg lists, feeding sink; the runner's
// Redis and NATS connections are made or shared through d.
func newBroadcasts(cfg *config.Config, d *deps, sink broadcast.Sink, l limits, log *slog.Logger) (*broadcasts, error) {
	b := &broadcasts{explicit: cfg.Broadcast.Explicit}
	o := cfg.Broadcast.Options
	o.HTTP.Key, _ = cfg.BroadcastKey()
	o.HTTP.MaxBodySize, o.HTTP.BodyTimeout = cfg.Gateway.MaxBodySize, l.apiBody
	// A broadcast too large for the API is too large whichever way it
	// comes in.
	o.MaxPayloadSize = cfg.Gateway.MaxBodySize
	if d.metrics != nil {
		o.Metrics = d.metrics
	}
	o.Clustered = cfg.Cluster.PubSub == "redis" || cfg.Cluster.PubSub == "nats"
	o.NodeID = cfg.Server.NodeID
	for _, name := range cfg.Broadcast.Adapters {
		var err error
		switch name {
		case broadcast.NameRedis, broadcast.NameRedisX:
			err = b.redis(cfg, d, &o)
		case broadcast.NameNATS:
			o.NATS, err = d.newNATS(cfg, log)
		}
		if err != nil {
			return nil, err
		}
		a, err := broadcast.New(name, o, sink, log)
		if err != nil {
			return nil, fmt.Errorf("--broadcast_adapter %s: %w", name, err)
		}
		if h, ok := a.(*broadcast.HTTP); ok {
			b.http = h
		}
		b.adapters = append(b.adapters, a)
	}
	return b, nil
}

// redis sets o.Redis to the process's Redis client (made now when the
// broker and pub/sub have not made it). The adapters report their own
// connection's state (Err), so a client made for them alone gets no
// "redis" health check of its own: with the default list its outage must
// not fail /health.
func (b *broadcasts) redis(cfg *config.Config, d *deps, o *broadcast.Options) error {
	if d.redis == nil {
		if err := d.newRedis(cfg); err != nil {
			return err
		}
		delete(d.checks, "redis")
	}
	o.Redis = d.redis
	return nil
}

// handler is the http adapter's handler, nil without one.
func (b *broadcasts) handler() http.Handler {
	if b.http == nil {
		return nil
	}
	return b.http
}

// start runs every adapter until shutdown.
func (b *broadcasts) start() {
	ctx, stop := context.WithCancel(context.Background())
	b.stop = stop
	for _, a := range b.adapters {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			a.Run(ctx)
		}()
	}
}

// shutdown stops the adapters and waits for them (a broadcast being
// handed to the broker is finished) until ctx ends. The runner calls it
// first, while the broker and the API service still work.
func (b *broadcasts) shutdown(ctx context.Context) {
	if b.stop == nil {
		return
	}
	b.stop()
	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// health is /health's "broadcast" object, one entry per adapter:
// {"status":"ok"} or {"status":"unavailable","error":"…"}, with
// "required" (the list was explicit) and "role" when the adapter has one
// (the redis adapter: listening, standby, connecting). down lists the
// required adapters that are down, as "broadcast:<name>", with why.
func (b *broadcasts) health() (state map[string]any, down map[string]string) {
	state, down = map[string]any{}, map[string]string{}
	for _, a := range b.adapters {
		s := map[string]any{"status": "ok", "required": b.explicit}
		if err := a.Err(); err != nil {
			s["status"], s["error"] = "unavailable", err.Error()
			if b.explicit {
				down["broadcast:"+a.Name()] = err.Error()
			}
		}
		if role := a.Role(); role != "" {
			s["role"] = role
		}
		state[a.Name()] = s
	}
	return state, down
}

// logStarting logs the adapters' lines that do not depend on a listener.
func (b *broadcasts) logStarting(cfg *config.Config, log *slog.Logger) {
	if _, derived := cfg.BroadcastKey(); derived && b.http != nil {
		log.Info("auto-generated authorization secret from the application secret", "context", "broadcast", "provider", broadcast.NameHTTP)
	}
	for _, a := range b.adapters {
		if line := a.Describe(); line != "" {
			log.Info(line, "context", "broadcast", "provider", a.Name())
		}
	}
}

// broadcastWarnings names the http adapter accepting broadcasts without
// a key. It is AnyCable's default (its gem posts to localhost:8090
// without one), so it stays, but not silently.
func broadcastWarnings(cfg *config.Config) []string {
	if !cfg.HasBroadcastAdapter(broadcast.NameHTTP) {
		return nil
	}
	if key, _ := cfg.BroadcastKey(); key != "" {
		return nil
	}
	why := "no --broadcast_key or --secret"
	if cfg.Broadcast.Key == "none" {
		why = "--broadcast_key none"
	}
	port, _ := cfg.HTTPBroadcastPort()
	return []string{fmt.Sprintf("the http broadcast adapter on port %d accepts broadcasts without a token (%s): anyone who can reach it can publish; set --secret or --broadcast_key, or --broadcast_adapter without http", port, why)}
}

// planBroadcast adds the http adapter to the listeners: on the main one
// when its port is the main port (config.HTTPBroadcastPort), else on a
// listener of its own, which with the default adapter list is optional.
func planBroadcast(cfg *config.Config, specs []listenerSpec) []listenerSpec {
	if !cfg.HasBroadcastAdapter(broadcast.NameHTTP) {
		return specs
	}
	port, main := cfg.HTTPBroadcastPort()
	if main {
		specs[0].parts = append(specs[0].parts, partBroadcast)
		return specs
	}
	return append(specs, listenerSpec{flag: "--http_broadcast_port", host: cfg.Server.Host, port: port,
		parts: []part{partBroadcast}, optional: !cfg.Broadcast.Explicit})
}

// logServing logs where the http adapter is served, or why it is not.
func (b *broadcasts) logServing(listeners []bound, skipped []skippedListener, scheme string, log *slog.Logger) {
	if b.http == nil {
		return
	}
	log = log.With("context", "broadcast", "provider", broadcast.NameHTTP)
	for _, l := range listeners {
		if l.spec.serves(partBroadcast) {
			log.Info(b.http.DescribeAt(scheme + "://" + l.addr))
		}
	}
	for _, s := range skipped {
		if s.spec.serves(partBroadcast) {
			b.http.SetErr(s.err)
			log.Warn(fmt.Sprintf("broadcast requests are not accepted: %v; set --http_broadcast_port to a free port, or --broadcast_adapter without http", s.err))
		}
	}
}
