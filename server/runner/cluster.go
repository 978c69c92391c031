package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"sort"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/status"

	"github.com/cablehub/cablehub/server/broker"
	"github.com/cablehub/cablehub/server/config"
	"github.com/cablehub/cablehub/server/connwatch"
	"github.com/cablehub/cablehub/server/metrics"
	"github.com/cablehub/cablehub/server/node"
	"github.com/cablehub/cablehub/server/pubsub"
	"github.com/cablehub/cablehub/server/redact"
	"github.com/cablehub/cablehub/server/redisconn"
)

// describedBroker is a broker the runner can describe at startup.
type describedBroker interface {
	node.Broker
	Describe() string
}

// clusterPubSub is a pub/sub the runner can run, describe and health-check.
type clusterPubSub interface {
	node.PubSub
	PublishCluster(ctx context.Context, payload []byte) error
	Run(ctx context.Context)
	Describe() string
	Healthy(ctx context.Context) error
}

// deps holds the connections to external services and the checks that
// report them on /health.
type deps struct {
	redis  redis.UniversalClient
	nats   *nats.Conn
	enats  *server.Server
	checks map[string]func(context.Context) error
	// rpc is the application's RPC back end: reported on /health but not
	// one of its checks (see health), closed with the rest.
	rpc rpcSetup
	// broadcasts are the broadcast adapters, reported on /health (see
	// broadcasts.health); nil until the runner starts.
	broadcasts *broadcasts
	// pusher reports Pusher mode on /health; nil without it.
	pusher func() map[string]any

	// enatsDir is the embedded server's JetStream store, removed on close.
	enatsDir string

	// redisInfo describes the Redis connection for the startup log.
	redisInfo redisconn.Info
	// nodeID is --node_id, reported on /health.
	nodeID string
	// metrics count the connections' outages (and the broadcast
	// adapters' drops); log is the process's.
	metrics *metrics.Metrics
	log     *slog.Logger
	// redisWatch follows the Redis client's connection (redisconn.Watch),
	// which logs its outages: the monitor does not log the "redis" check
	// too.
	redisWatch *connwatch.Watch
}

// newRedis connects lazily: a Redis that is down at start is retried by
// go-redis, the node starts anyway. The client is a single server's, a
// Sentinel master's or a Redis Cluster's, as --redis_url and
// --redis_sentinels say (redisconn); contexts' deadlines bound its socket
// reads and writes, so --publish_timeout and the node's broker timeout
// hold against a Redis that accepts connections but does not answer.
func (d *deps) newRedis(cfg *config.Config) error {
	if d.redis != nil {
		return nil
	}
	r := cfg.Cluster.Redis
	client, info, err := redisconn.Connect(context.Background(), redisconn.Options{
		URL: cfg.Cluster.RedisURL, Sentinels: r.Sentinels, KeepAlive: r.KeepaliveInterval, DialTimeout: 2 * time.Second,
		TLSVerify: r.TLSVerify, CACertPath: r.TLSCACertPath, ClientCertPath: r.TLSClientCertPath, ClientKeyPath: r.TLSClientKeyPath,
	}, time.Second)
	if err != nil {
		return err
	}
	d.redis, d.redisInfo = client, info
	// One client serves the broker, the pub/sub and the broadcast
	// adapters: one watch logs and counts its outages, whoever meets them.
	d.redisWatch = connwatch.New("redis", d.counters())
	redisconn.Watch(client, d.redisWatch, d.logger().With("context", "redis"))
	d.check("redis", func(ctx context.Context) error { return redisPing(ctx, d.redis) })
	return nil
}

// counters are the outage counters, nil without metrics (in tests).
func (d *deps) counters() connwatch.Counters {
	if d.metrics == nil {
		return nil
	}
	return d.metrics
}

func (d *deps) logger() *slog.Logger {
	if d.log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.log
}

// watchNATS counts the NATS connection's outages as component "nats":
// pubsub.ConnectNATS set the handlers that log them, which this wraps.
func (d *deps) watchNATS(conn *nats.Conn) {
	w := connwatch.New("nats", d.counters())
	lost, restored := conn.Opts.DisconnectedErrCB, conn.Opts.ReconnectedCB
	conn.SetDisconnectErrHandler(func(c *nats.Conn, err error) {
		if err != nil {
			w.Lost()
		}
		if lost != nil {
			lost(c, err)
		}
	})
	conn.SetReconnectHandler(func(c *nats.Conn) {
		w.Restored()
		if restored != nil {
			restored(c)
		}
	})
}

// redisPing asks every master of a cluster, else the one server.
func redisPing(ctx context.Context, client redis.UniversalClient) error {
	if c, ok := client.(*redis.ClusterClient); ok {
		return c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error { return node.Ping(ctx).Err() })
	}
	return client.Ping(ctx).Err()
}

// redisPrefix is the prefix of the Redis broker's keys; on a Redis
// Cluster the broker tags each stream's keys itself (broker.NewRedis).
func (d *deps) redisPrefix() string { return "cablehub:" }

func (d *deps) check(name string, f func(context.Context) error) {
	if d.checks == nil {
		d.checks = map[string]func(context.Context) error{}
	}
	d.checks[name] = f
}

// newNATS starts the embedded NATS server when configured (with JetStream,
// in a temporary store, when the NATS broker needs it) and connects to
// NATS; both happen once, whoever asks first (broker or pub/sub).
func (d *deps) newNATS(cfg *config.Config, log *slog.Logger) (*nats.Conn, error) {
	if d.nats != nil {
		return d.nats, nil
	}
	log = log.With("context", "pubsub")
	if cfg.Cluster.EmbedNATS {
		o := cfg.Cluster.Embedded
		o.ServerName = "cablehub-" + cfg.Server.NodeID
		if cfg.Cluster.Broker == "nats" {
			dir, err := os.MkdirTemp("", "cablehub-jetstream-")
			if err != nil {
				return nil, fmt.Errorf("embedded NATS JetStream store: %w", err)
			}
			d.enatsDir, o.JetStreamDir = dir, dir
		}
		ns, err := pubsub.StartEmbedded(o)
		if err != nil {
			return nil, fmt.Errorf("embedded NATS (--enats_addr %s): %w", cfg.Cluster.Embedded.Addr, err)
		}
		d.enats = ns
		log.Info(fmt.Sprintf("Embedded NATS server started: %s (JetStream: %t)", cfg.Cluster.Embedded.Addr, o.JetStreamDir != ""))
	}
	conn, err := pubsub.ConnectNATS(cfg.Cluster.NATSServers, log)
	if err != nil {
		return nil, fmt.Errorf("invalid value %q for --nats_servers: %v", cfg.Cluster.NATSServers, err)
	}
	d.nats = conn
	d.watchNATS(conn)
	return conn, nil
}

// newPubSub builds the configured pub/sub delivering to n. With the NATS
// broker, JetStream republishes each stored publication on the NATS
// pub/sub's subjects, so the pub/sub delivers those too.
func (d *deps) newPubSub(cfg *config.Config, n *node.Node, log *slog.Logger) (clusterPubSub, error) {
	if cfg.Cluster.EmbedNATS {
		if _, err := d.newNATS(cfg, log); err != nil {
			return nil, err
		}
	}
	log = log.With("context", "pubsub")
	switch cfg.Cluster.PubSub {
	case "redis":
		if err := d.newRedis(cfg); err != nil {
			return nil, err
		}
		names := d.redisNames(cfg)
		if c, ok := d.redis.(*redis.Client); ok {
			names = names.WithClusterScope("db" + strconv.Itoa(c.Options().DB))
		}
		return pubsub.NewRedis(context.Background(), d.redis, names, n, log), nil
	case "nats":
		conn, err := d.newNATS(cfg, log)
		if err != nil {
			return nil, err
		}
		ps, err := pubsub.NewNATS(conn, n, log)
		if err != nil {
			return nil, err
		}
		d.check("nats", ps.Healthy)
		return ps, nil
	}
	return pubsub.NewLocal(n), nil
}

// redisNames keeps stream channels off the redis broadcast adapter's
// channel, which may share the Redis pub/sub (see pubsub.RedisNames), and
// names sharded channels on a Redis Cluster (unless --redis_sharded_pubsub
// is off), where the broker's keys of a stream share a slot of the
// stream's own (pubsub.RedisNames.Sharded).
func (d *deps) redisNames(cfg *config.Config) pubsub.RedisNames {
	names := pubsub.NewRedisNames(cfg.Broadcast.Options.RedisChannel)
	if redisconn.IsCluster(d.redis) && cfg.Cluster.Redis.ShardedPubSub {
		names = names.Sharded()
	}
	return names
}

// newNATSBroker builds the NATS JetStream broker (--broker nats).
func (d *deps) newNATSBroker(cfg *config.Config, log *slog.Logger) (*broker.NATS, error) {
	conn, err := d.newNATS(cfg, log)
	if err != nil {
		return nil, err
	}
	b, err := broker.NewNATS(conn, cfg.Broker, log.With("context", "broker"))
	if err != nil {
		return nil, err
	}
	d.check("jetstream", b.Healthy)
	return b, nil
}

// monitor logs each dependency going down (once per backoff step, up to
// 30 s apart) and coming back, until ctx is done. The "redis" check's
// outcome reaches the Redis client's watch instead, which logs each outage
// once (redisconn.Watch): the check's PING is then what notices an idle
// connection's outage.
func (d *deps) monitor(ctx context.Context, log *slog.Logger) {
	for name, check := range d.checks {
		log := log
		if name == "redis" && d.redisWatch != nil {
			log = slog.New(slog.DiscardHandler)
		}
		go func() {
			wait, down := time.Second, false
			for {
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				err := check(cctx)
				cancel()
				switch {
				case ctx.Err() != nil:
					return
				case err != nil:
					log.Warn(fmt.Sprintf("%s unavailable, next check in %s", name, wait), "error", err)
					down = true
				case down:
					log.Info(fmt.Sprintf("%s connection restored", name))
					down, wait = false, time.Second
				}
				next := 5 * time.Second
				if down {
					next = wait
					wait = min(wait*2, 30*time.Second)
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(next):
				}
			}
		}()
	}
}

// healthTimeout bounds each check and the RPC probe of one /health call.
const healthTimeout = time.Second

// health answers /health with JSON: 200 {"status":"ok", …} when every
// dependency (Redis, NATS, JetStream) answers and every broadcast adapter
// listed explicitly runs, else 503
// {"status":"unavailable","down":[…],"errors":{…}, …}. "broadcast" holds
// each adapter's state (broadcasts.health). Both carry "rpc":
// the RPC back end's implementation and host, whether it can be reached
// now (rpc.GRPC.Probe, rpc.HTTP.Probe; no call is made) and why not, or
// {"impl":"none"} with --norpc. An unreachable back end does not make
// /health fail: a server used standalone, with JWT or public connections
// and no back end running (RPC is on by default), is healthy, and
// restarting it would not bring the back end up.
func (d *deps) health(w http.ResponseWriter, r *http.Request) {
	rpcState := make(chan map[string]any, 1)
	go func() { rpcState <- d.rpcHealth(r.Context()) }()
	down := map[string]string{}
	for name, check := range d.checks {
		ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
		if err := check(ctx); err != nil {
			down[name] = err.Error()
		}
		cancel()
	}
	var adapters map[string]any
	if d.broadcasts != nil {
		var adaptersDown map[string]string
		adapters, adaptersDown = d.broadcasts.health()
		maps.Copy(down, adaptersDown)
	}
	body := map[string]any{"status": "ok", "node_id": d.nodeID}
	code := http.StatusOK
	if len(down) > 0 {
		names := make([]string, 0, len(down))
		for n := range down {
			names = append(names, n)
		}
		sort.Strings(names)
		body = map[string]any{"status": "unavailable", "down": names, "errors": down, "node_id": d.nodeID}
		code = http.StatusServiceUnavailable
	}
	body["rpc"] = <-rpcState
	if len(adapters) > 0 {
		body["broadcast"] = adapters
	}
	if d.pusher != nil {
		body["pusher"] = d.pusher()
	}
	data, _ := json.Marshal(redactJSON(body))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(data)
}

// redactJSON masks the credentials of URLs (redact.Credentials) in every
// string of a /health body, in place: the RPC host, the node id, errors
// quoting a URL. /health answers without authentication, so it is done for
// every field, not only those known to hold URLs.
func redactJSON(v any) any {
	switch x := v.(type) {
	case string:
		return redact.Credentials(x)
	case []string:
		for i, s := range x {
			x[i] = redact.Credentials(s)
		}
	case map[string]string:
		for k, s := range x {
			x[k] = redact.Credentials(s)
		}
	case map[string]any:
		for k, e := range x {
			x[k] = redactJSON(e)
		}
	}
	return v
}

// rpcHealth is the "rpc" object of /health.
func (d *deps) rpcHealth(ctx context.Context) map[string]any {
	if d.rpc.client == nil {
		return map[string]any{"impl": config.RPCImplNone}
	}
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	state := map[string]any{"impl": d.rpc.impl, "host": d.rpc.host, "reachable": true}
	if err := d.rpc.client.Probe(ctx); err != nil {
		state["reachable"] = false
		state["error"] = status.Convert(err).Message()
	}
	return state
}

// close closes every connection. Shutdown calls it once the node has
// drained, so the RPC client outlives the sessions' last Disconnect calls,
// which the node's shutdown makes.
func (d *deps) close() {
	d.rpc.close()
	if d.nats != nil {
		d.nats.Close()
	}
	if d.redis != nil {
		d.redis.Close()
	}
	if d.enats != nil {
		d.enats.Shutdown()
	}
	if d.enatsDir != "" {
		os.RemoveAll(d.enatsDir)
	}
}
