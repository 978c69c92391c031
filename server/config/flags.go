package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// The help groups, in the order --help lists them.
const (
	groupServer    = "Server"
	groupWebSocket = "WebSocket"
	groupStreams   = "Streams and JWT"
	groupRPC       = "RPC back end"
	groupAPI       = "API (REST and gRPC)"
	groupBroker    = "Broker"
	groupLogging   = "Logging and metrics"
	groupLimits    = "Limits per connection"
	groupRedis     = "Redis"
	groupLater     = "Not supported yet"
)

// bind registers every flag on the field it sets, in the order --help
// lists them. A flag's default is whatever the field holds before parsing.
func (c *Config) bind(p *parser) {
	c.bindServer(p)
	c.bindWebSocket(p)
	c.bindStreams(p)
	c.bindRPC(p)
	c.bindLimits(p)
	c.bindAPI(p)
	c.bindBroker(p)
	c.bindRedis(p)
	c.bindLogging(p)
	c.bindLater(p)
}

func (c *Config) bindServer(p *parser) {
	s := &c.Server
	p.add(groupServer, "host", stringValue{&s.Host}, "host to listen on")
	p.add(groupServer, "port", intValue{&s.Port, 0, 65535}, "port to listen on (0 picks a free one)", "PORT")
	p.add(groupServer, "path", listValue{&s.Paths}, "WebSocket endpoint paths, comma-separated")
	p.add(groupServer, "health-path", stringValue{&s.HealthPath}, "health check path")
	p.add(groupServer, "secret", stringValue{&s.Secret}, "application secret: base of the API, streams, JWT and HTTP RPC secrets (\"none\" clears it)")
	p.add(groupServer, "public", boolValue{&s.Public}, "public mode: no connection authentication, public streams, open API unless a secret is set")
	p.add(groupServer, "noauth", boolValue{&s.Noauth}, "accept connections without authentication")
	p.add(groupServer, "shutdown_timeout", durationValue{&s.ShutdownTimeout}, "graceful shutdown limit, seconds")
	p.add(groupServer, "allowed_origins", listValue{&c.WS.AllowedOrigins}, "accepted WebSocket Origin hosts, comma-separated, *.example.com allowed (default: any)")
	p.add(groupServer, "max-conn", intValue{&c.Node.MaxConns, 0, 1 << 24}, "most WebSocket connections at once; more are refused with a reconnect disconnect and close 1013 (0 = unlimited)")
	p.add(groupServer, "shutdown_delay", durationValue{&s.ShutdownDelay}, "on SIGTERM or SIGINT, keep serving this long before shutting down, seconds (lets a load balancer stop routing first)")
	p.add(groupServer, "node_id", stringValue{&s.NodeID}, "this node's id in the startup line and /health (default: a random 6-character id)")
	p.add(groupServer, "presets", presetsValue{&s.Presets}, "configuration presets, comma-separated: fly, heroku, broker, none (default: fly on Fly.io, heroku on Heroku, detected from their environment variables)")
}

func (c *Config) bindWebSocket(p *parser) {
	p.add(groupWebSocket, "max_message_size", sizeValue[int64]{&c.WS.MaxMessageSize, 1}, "largest client frame, bytes (larger ones close with 1009)")
	p.add(groupWebSocket, "ping_interval", durationValue{&c.Node.PingInterval}, "time between pings, seconds (0 disables)")
	p.add(groupWebSocket, "ping_timestamp_precision", enumValue{&c.Node.PingPrecision, []string{"s", "ms", "ns"}}, "ping timestamp unit: s, ms, ns")
	p.add(groupWebSocket, "pong_timeout", durationValue{&c.Node.PongTimeout}, "disconnect extended-protocol clients silent this long after a ping, seconds (0 disables)")
	p.add(groupWebSocket, "ws_max_pending_size", sizeValue[int]{&c.WS.MaxPending, 0}, "most bytes queued for one client before it is cut as too slow (0 = unlimited)")
	p.add(groupWebSocket, "ws_write_timeout", durationValue{&c.WS.WriteTimeout}, "limit for one socket write, seconds")
}

func (c *Config) bindStreams(p *parser) {
	s := &c.Streams
	p.add(groupStreams, "public_streams", boolValue{&s.Public}, "allow subscribing to unsigned streams")
	p.add(groupStreams, "streams_secret", stringValue{&s.Secret}, "secret of signed stream names (default: --secret)")
	p.add(groupStreams, "streams_whisper", boolValue{&s.Whisper}, "allow whispers on signed streams")
	p.add(groupStreams, "streams_presence", boolValue{&s.Presence}, "allow presence on $pubsub streams")
	p.add(groupStreams, "turbo_streams", boolValue{&s.Turbo}, "enable Turbo::StreamsChannel")
	p.add(groupStreams, "benchmark_channel", boolValue{&s.Benchmark}, "enable BenchmarkChannel (echo and broadcast actions on stream \"all\") for websocket-bench")
	p.add(groupStreams, "turbo_streams_secret", stringValue{&s.TurboSecret}, "secret of Turbo signed stream names (default: the streams secret)")
	p.add(groupStreams, "jwt_secret", stringValue{&c.JWT.Secret}, "secret of JWT identification tokens (default: --secret)")
	p.add(groupStreams, "jwt_param", stringValue{&c.JWT.Param}, "query parameter carrying the JWT (header X-<param>)")
	p.add(groupStreams, "enforce_jwt", boolValue{&c.JWT.Enforce}, "refuse connections without a JWT")
}

// bindRPC binds AnyCable's RPC flags (several hidden in AnyCable's own
// --help, listed here like every other). Timeouts are milliseconds, as in
// AnyCable.
func (c *Config) bindRPC(p *parser) {
	r, a := &c.RPC, &c.Node.AppOptions
	p.add(groupRPC, "rpc_host", stringValue{&r.Host}, "RPC back end: host:port, dns:///host:port or grpc-list://h1:p1,h2:p2 for gRPC; an http:// or https:// URL for HTTP RPC")
	p.add(groupRPC, "norpc", boolValue{&r.Disabled}, "no RPC back end: only JWT, --noauth or --public connections and the built-in channels work")
	p.add(groupRPC, "rpc_impl", enumValue{&r.Impl, []string{"", RPCImplGRPC, RPCImplHTTP, RPCImplNone}}, "RPC implementation: grpc, http, none (= --norpc) (default: http for an http(s):// --rpc_host, else grpc)")
	p.add(groupRPC, "rpc_concurrency", intValue{&r.Concurrency, 0, 1 << 20}, "most RPC calls at the back end at once; more wait (0 = the default, with a warning)")
	p.add(groupRPC, "rpc_request_timeout", msDurationValue{&r.RequestTimeout}, "limit for one RPC attempt, milliseconds (0 = none for gRPC; HTTP RPC: --http_rpc_timeout, else this, else 3000)")
	p.add(groupRPC, "rpc_command_timeout", msDurationValue{&r.CommandTimeout}, "limit for one RPC call with its retries, milliseconds")
	p.add(groupRPC, "headers", lowerListValue{listValue{&a.Headers}}, "request headers passed to the back end, comma-separated, lower-cased")
	p.add(groupRPC, "proxy-cookies", listValue{&a.Cookies}, "cookies passed to the back end in the cookie header, comma-separated (default: all)")
	p.add(groupRPC, "http_rpc_secret", stringValue{&r.HTTPSecret}, "HTTP RPC bearer token (default: derived from --secret; \"none\" sends no Authorization header)")
	p.add(groupRPC, "http_rpc_timeout", msDurationValue{&r.HTTPTimeout}, "limit for one HTTP RPC request, milliseconds (0 = --rpc_request_timeout, else 3000)")
	p.add(groupRPC, "rpc_enable_tls", boolValue{&r.EnableTLS}, "connect to the gRPC back end over TLS")
	p.add(groupRPC, "rpc_tls_verify", boolValue{&r.TLSVerify}, "verify the back end's TLS certificate (gRPC with TLS, https:// HTTP RPC)")
	p.add(groupRPC, "rpc_tls_root_ca", stringValue{&r.TLSRootCA}, "CA of the back end's TLS certificate: a PEM file path or the PEM text; implies --rpc_enable_tls (default: the system's CAs)")
	p.add(groupRPC, "rpc_max_call_recv_size", sizeValue[int]{&r.MaxRecvSize, 0}, "largest gRPC reply, bytes (0 = gRPC's 4 MiB)")
	p.add(groupRPC, "rpc_max_call_send_size", sizeValue[int]{&r.MaxSendSize, 0}, "largest gRPC request, bytes (0 = unlimited)")
	p.add(groupRPC, "disconnect_mode", disconnectModeValue{&a.DisconnectMode}, "which ended sessions get a Disconnect call: auto (those the back end connected or subscribed), always, never")
	p.add(groupRPC, "disconnect_rate", intValue{&a.DisconnectRate, 1, 1 << 20}, "most Disconnect calls per second")
	p.add(groupRPC, "disconnect_backlog_size", intValue{&a.DisconnectBacklog, 1, 1 << 24}, "most Disconnect calls waiting for their turn")
}

func (c *Config) bindLimits(p *parser) {
	n := &c.Node
	p.add(groupLimits, "max_subscriptions_per_connection", intValue{&n.MaxSubscriptions, 1, 1 << 20}, "most subscriptions one connection may hold; more are rejected")
	p.add(groupLimits, "max_presence_per_connection", intValue{&n.MaxPresence, 1, 1 << 20}, "most streams one connection may be present on at once; more joins are refused")
	p.add(groupLimits, "max_presence_info_size", intValue{&n.MaxPresenceInfo, 1, 1 << 20}, "largest presence info a join may carry, bytes; larger joins are refused")
	p.add(groupLimits, "presence_id_from_identifiers", boolValue{&n.PresenceFromIdentifiers}, "use the connection identifiers (JWT ext claim) as the presence id instead of the id the client sends; connections without identifiers cannot join")
}

func (c *Config) bindAPI(p *parser) {
	g := &c.Gateway
	p.add(groupAPI, "api_port", intValue{&c.API.Port, 0, 65535}, "dedicated REST API port (0 = the main port)")
	p.add(groupAPI, "api_path", stringValue{&g.Prefix}, "base path of the REST API")
	p.add(groupAPI, "api_secret", stringValue{&c.API.Secret}, "API bearer token (default: derived from --secret)")
	p.add(groupAPI, "api_cors_headers", boolValue{&g.CORS}, "add CORS headers to API responses and answer preflight requests")
	p.add(groupAPI, "api_cors_hosts", listValue{&g.CORSHosts}, "allowed CORS origin hosts, comma-separated, *.example.com allowed (default: any)")
	p.add(groupAPI, "api_max_body_size", sizeValue[int64]{&g.MaxBodySize, 1}, "largest accepted API request body, bytes")
	// 2 s (api.DefaultTimeout): a healthy Redis or NATS answers in
	// milliseconds even under load, so this only cuts calls to a dependency
	// that is down or stuck, and a caller (often a web request) learns it in
	// time to retry or give up instead of piling up behind it.
	p.add(groupAPI, "publish_timeout", durationValue{&c.API.PublishTimeout}, "limit for one publish, presence or disconnect call's work against the broker and pub/sub, seconds or e.g. 1500ms (then 501 / UNAVAILABLE)")
	p.add(groupAPI, "grpc_port", intValue{&c.API.GRPCPort, 0, 65535}, "dedicated gRPC API port (0 = gRPC on the API's own listener)")
}

func (c *Config) bindBroker(p *parser) {
	cl, b := &c.Cluster, &c.Broker
	// "none" keeps no presence or history, like AnyCable's legacy broker.
	p.add(groupBroker, "broker", enumValue{&cl.Broker, []string{"memory", "redis", "nats", "none"}}, "broker for history, presence and sessions: memory, redis, nats (JetStream, no presence), none")
	p.add(groupBroker, "pubsub", enumValue{&cl.PubSub, []string{"", "none", "redis", "nats"}}, "pub/sub between nodes: redis, nats (default: none, or redis with --broker=redis, nats with --broker=nats)")
	p.add(groupBroker, "redis_url", stringValue{&cl.RedisURL}, "Redis URL", "REDIS_URL")
	p.add(groupBroker, "nats_servers", stringValue{&cl.NATSServers}, "NATS server URLs, comma-separated")
	p.add(groupBroker, "embed_nats", boolValue{&cl.EmbedNATS}, "run a NATS server inside this process (and use it unless --nats_servers says otherwise)")
	p.add(groupBroker, "enats_addr", stringValue{&cl.Embedded.Addr}, "embedded NATS client address")
	p.add(groupBroker, "enats_cluster", stringValue{&cl.Embedded.ClusterAddr}, "embedded NATS cluster address, e.g. nats://127.0.0.1:6222 (default: no cluster)")
	p.add(groupBroker, "enats_cluster_name", stringValue{&cl.Embedded.ClusterName}, "embedded NATS cluster name")
	p.add(groupBroker, "enats_cluster_routes", listValue{&cl.Embedded.Routes}, "other embedded NATS servers' cluster URLs, comma-separated")
	p.add(groupBroker, "presence_ttl", durationValue{&b.PresenceTTL}, "how long presence outlives a client's last connection, seconds")
	p.add(groupBroker, "history_limit", intValue{&b.HistoryLimit, 1, 1 << 20}, "publications kept per stream for history")
	p.add(groupBroker, "history_ttl", durationValue{&b.HistoryTTL}, "how long publications stay in history, seconds")
	p.add(groupBroker, "sessions_ttl", durationValue{&b.SessionsTTL}, "how long a disconnected extended-protocol session can be restored, seconds (0 disables)")
	p.add(groupBroker, "idempotency_window", durationValue{&c.Node.IdempotencyWindow}, "how long a publication's idempotency key makes a retry with the same stream and key a no-op, seconds (0 disables; cluster-wide with --broker=redis)")
}

// bindRedis binds AnyCable's Redis connection flags (--redis_url is a
// Broker flag): Sentinel, TLS and the tuning flags, for the broker and the
// pub/sub alike.
func (c *Config) bindRedis(p *parser) {
	r := &c.Cluster.Redis
	p.add(groupRedis, "redis_sentinels", stringValue{&r.Sentinels}, "Redis Sentinel addresses, comma-separated host:port (a password as redis://:pass@host:port); --redis_url's host is then the master's name")
	p.add(groupRedis, "redis_sentinel_discovery_interval", durationValue{&r.SentinelDiscoveryInterval}, "seconds; accepted for AnyCable compatibility and unused: Cablehub follows Sentinel's failover notifications instead of polling")
	p.add(groupRedis, "redis_keepalive_interval", durationValue{&r.KeepaliveInterval}, "TCP keepalive period of Redis connections, seconds")
	p.add(groupRedis, "redis_tls_verify", boolValue{&r.TLSVerify}, "verify the Redis server's certificate with rediss:// URLs (off by default, as in AnyCable: a WARN says so)")
	p.add(groupRedis, "redis_tls_ca_cert_path", stringValue{&r.TLSCACertPath}, "CA certificate file (PEM) to verify the Redis server with; implies --redis_tls_verify")
	p.add(groupRedis, "redis_tls_client_cert_path", stringValue{&r.TLSClientCertPath}, "client certificate file (PEM) for mutual TLS with Redis (with --redis_tls_client_key_path)")
	p.add(groupRedis, "redis_tls_client_key_path", stringValue{&r.TLSClientKeyPath}, "client private key file (PEM) for mutual TLS with Redis")
	p.add(groupRedis, "redis_disable_cache", boolValue{&r.DisableCache}, "accepted for AnyCable compatibility and unused: Cablehub keeps no client-side Redis cache")
}

func (c *Config) bindLogging(p *parser) {
	p.add(groupLogging, "log_level", enumValue{&c.Log.Level, []string{"debug", "info", "warn", "error"}}, "log level: debug, info, warn, error")
	p.add(groupLogging, "log_format", enumValue{&c.Log.Format, []string{"text", "json"}}, "log format: text, json")
	p.add(groupLogging, "debug", boolValue{&c.Log.Debug}, "debug mode: log level debug, and the startup log says so")
	p.add(groupLogging, "metrics_http", stringValue{&c.Metrics.Path}, "serve Prometheus metrics at this path, e.g. /metrics (default: off)")
	p.add(groupLogging, "metrics_host", stringValue{&c.Metrics.Host}, "metrics host (default: --host)")
	p.add(groupLogging, "metrics_port", intValue{&c.Metrics.Port, 0, 65535}, "metrics port (default: the main port)")
	p.add(groupLogging, "pprof", boolValue{&c.Server.Pprof}, "serve Go profiles at /debug/pprof/ on the main port (for profiling; keep off in production)")
	m := &c.Metrics
	p.add(groupLogging, "metrics_tags", tagsValue{&m.Tags}, "tags added to every metric, comma-separated key:value pairs (Prometheus labels, StatsD tags)")
	p.add(groupLogging, "metrics_rotate_interval", durationValue{&m.RotateInterval}, "how often metrics go to StatsD and the log, seconds")
	p.add(groupLogging, "metrics_log", boolValue{&m.Log}, "log the metrics every --metrics_rotate_interval (counters as the interval's increase)")
	p.add(groupLogging, "metrics_log_filter", listValue{&m.LogFilter}, "only these metrics in the log, comma-separated names such as clients_num (default: all)")
	p.add(groupLogging, "statsd_host", stringValue{&m.Statsd.Host}, "send metrics to this StatsD server, host:port over UDP (default: off)")
	p.add(groupLogging, "statsd_prefix", stringValue{&m.Statsd.Prefix}, "prefix of StatsD metric names")
	p.add(groupLogging, "statsd_tags_format", enumValue{&m.Statsd.TagsFormat, []string{"datadog", "influxdb", "graphite"}}, "how StatsD packets carry --metrics_tags: datadog, influxdb, graphite")
	p.add(groupLogging, "stats_refresh_interval", durationValue{&m.StatsRefreshInterval}, "seconds; accepted for AnyCable compatibility and unused: Cablehub's gauges are always current")
}

// bindLater binds AnyCable flags for features Cablehub does not have yet:
// they are accepted so a deployment's configuration parses, and the
// startup log says by name what is not served (see runner's warnings);
// TLS is refused instead, because serving plain HTTP where TLS was asked
// for would be worse than not starting.
func (c *Config) bindLater(p *parser) {
	l := &c.Later
	p.add(groupLater, "sse", boolValue{&l.SSE}, "Server-Sent Events endpoint: not supported yet (a WARN says so; clients must use WebSocket)")
	p.add(groupLater, "sse_path", stringValue{&l.SSEPath}, "Server-Sent Events path: not supported yet")
	p.add(groupLater, "enable_ws_compression", boolValue{&l.WSCompression}, "WebSocket per-message compression: not supported yet (a WARN says so; frames go uncompressed)")
	p.add(groupLater, "ssl_cert", stringValue{&l.SSLCert}, "TLS certificate: not supported yet, setting it is a startup error (terminate TLS in a proxy or load balancer)")
	p.add(groupLater, "ssl_key", stringValue{&l.SSLKey}, "TLS private key: not supported yet, setting it is a startup error")
}

// option is one flag with its environment variables and help group.
type option struct {
	name  string
	group string
	usage string
	env   []string
	value flag.Value
}

type parser struct {
	fs      *flag.FlagSet
	options []option
}

func newParser() *parser {
	p := &parser{fs: flag.NewFlagSet("cablehub", flag.ContinueOnError)}
	p.fs.SetOutput(io.Discard)
	p.fs.Usage = func() {}
	return p
}

func (p *parser) add(group, name string, value flag.Value, usage string, extraEnv ...string) {
	env := append([]string{EnvName(name)}, extraEnv...)
	p.options = append(p.options, option{name: name, group: group, usage: usage, env: env, value: value})
	p.fs.Var(value, name, usage)
}

// EnvName is the environment variable AnyCable reads for a flag:
// ANYCABLE_ and the name upper-cased, with '-' turned into '_'.
func EnvName(flagName string) string {
	return "ANYCABLE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (p *parser) parse(args []string, getenv func(string) string, out io.Writer) error {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			p.usage(out)
			return ErrHelp
		}
	}
	if err := p.fs.Parse(args); err != nil {
		return p.explain(err)
	}
	if p.fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags take the form --name=value)", p.fs.Arg(0))
	}
	set := map[string]bool{}
	p.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, o := range p.options {
		if set[o.name] {
			continue
		}
		for _, env := range o.env {
			v := getenv(env)
			if v == "" {
				continue
			}
			if err := o.value.Set(v); err != nil {
				return fmt.Errorf("invalid value %q in %s for --%s: %v", v, env, o.name, err)
			}
			break
		}
	}
	return nil
}

// explain turns the flag package's errors into one line naming the flag the
// way users type it.
func (p *parser) explain(err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		return fmt.Errorf("unknown flag --%s (see --help)", strings.TrimLeft(name, "-"))
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
		return fmt.Errorf("flag --%s needs a value", strings.TrimLeft(name, "-"))
	}
	// "invalid value "x" for flag -port: reason"
	if rest, ok := strings.CutPrefix(msg, "invalid value "); ok {
		if i := strings.Index(rest, " for flag -"); i >= 0 {
			value, tail := rest[:i], rest[i+len(" for flag -"):]
			name, reason, _ := strings.Cut(tail, ": ")
			return fmt.Errorf("invalid value %s for --%s: %s", value, name, reason)
		}
	}
	if rest, ok := strings.CutPrefix(msg, "invalid boolean value "); ok {
		if i := strings.Index(rest, " for -"); i >= 0 {
			value, tail := rest[:i], rest[i+len(" for -"):]
			name, _, _ := strings.Cut(tail, ": ")
			return fmt.Errorf("invalid value %s for --%s: must be true or false", value, name)
		}
	}
	return errors.New(msg)
}

// usage writes the flags grouped, each with its environment variables.
func (p *parser) usage(out io.Writer) {
	fmt.Fprintln(out, "Usage: cablehub [flags]")
	fmt.Fprintln(out, "\nEvery flag can also be set with the environment variable shown; a flag on the command line wins.")
	var groups []string
	byGroup := map[string][]option{}
	for _, o := range p.options {
		if _, ok := byGroup[o.group]; !ok {
			groups = append(groups, o.group)
		}
		byGroup[o.group] = append(byGroup[o.group], o)
	}
	for _, g := range groups {
		fmt.Fprintf(out, "\n%s:\n", g)
		for _, o := range byGroup[g] {
			def := o.value.String()
			if def == "" {
				def = `""`
			}
			fmt.Fprintf(out, "  --%s (%s, default %s)\n      %s\n", o.name, strings.Join(o.env, ", "), def, o.usage)
		}
	}
}
