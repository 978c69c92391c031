package config

// The help groups, in the order --help lists them.
const (
	groupServer    = "Server"
	groupWebSocket = "WebSocket"
	// groupTransports are the client transports beside WebSocket.
	groupTransports = "Other client transports"
	groupStreams    = "Streams and JWT"
	groupRPC        = "RPC back end"
	groupAPI        = "API (REST and gRPC)"
	groupAdmin      = "Admin console"
	groupBroker     = "Broker"
	groupLogging    = "Logging and metrics"
	groupLimits     = "Limits per connection"
	groupRedis      = "Redis"
)

// bind registers every setting on the field it sets, in the order --help
// lists them. Each p.add line is the setting's one definition: its flag
// name (and so its ANYCABLE_* variable, plus any extra variables given),
// its default (whatever the field holds before parsing), its help text,
// and, chained, its key in anycable.toml (.file: AnyCable's section and key
// where AnyCable has the setting, else Cablehub's own, documented in
// docs/configuration.md) and whether --print-config masks it whole
// (.secret; the credentials of URLs are masked in every setting's value,
// see shown). TestEverySettingHasAFileKey fails for a flag without .file
// (or .noFile, for a flag that is another setting's shorthand).
func (c *Config) bind(p *parser) {
	c.bindServer(p)
	c.bindWebSocket(p)
	c.bindStreams(p)
	c.bindRPC(p)
	c.bindLimits(p)
	c.bindAPI(p)
	c.bindAdmin(p)
	c.bindBroadcast(p)
	c.bindBroker(p)
	c.bindRedis(p)
	c.bindLogging(p)
}

func (c *Config) bindServer(p *parser) {
	s := &c.Server
	p.add(groupServer, "host", stringValue{&s.Host}, "host to listen on").file("server.host")
	p.add(groupServer, "port", intValue{&s.Port, 0, 65535}, "port to listen on (0 picks a free one)", "PORT").file("server.port")
	p.add(groupServer, "path", listValue{&s.Paths}, "WebSocket endpoint paths, comma-separated").file("ws.paths")
	p.add(groupServer, "health-path", stringValue{&s.HealthPath}, "health check path").file("server.health_path")
	p.add(groupServer, "secret", stringValue{&s.Secret}, "application secret: base of the API, streams, JWT and HTTP RPC secrets (\"none\" clears it)").file("secret").secret()
	p.add(groupServer, "public", boolValue{&s.Public}, "public mode: no connection authentication, public streams, open API unless a secret is set").file("public")
	p.add(groupServer, "noauth", boolValue{&s.Noauth}, "accept connections without authentication").file("noauth")
	p.add(groupServer, "shutdown_timeout", durationValue{&s.ShutdownTimeout}, "graceful shutdown limit, seconds").file("app.shutdown_timeout")
	p.add(groupServer, "allowed_origins", csvValue{listValue{&c.WS.AllowedOrigins}}, "accepted WebSocket Origin hosts, and the origins SSE answers allow (CORS), comma-separated, *.example.com allowed (default: any)").file("server.allowed_origins")
	p.add(groupServer, "max-conn", intValue{&c.Node.MaxConns, 0, 1 << 24}, "most client connections (WebSocket and SSE) at once; more are refused with a reconnect disconnect and close 1013, SSE with 503 (0 = unlimited)").file("server.max_conn")
	p.add(groupServer, "shutdown_delay", durationValue{&s.ShutdownDelay}, "on SIGTERM or SIGINT, keep serving this long before shutting down, seconds (lets a load balancer stop routing first)").file("app.shutdown_delay")
	p.add(groupServer, "memory_trim", boolValue{&s.MemoryTrim}, "when the server goes quiet after a burst of allocation (connections arriving), collect and give the heap's free memory back to the system, rather than holding up to twice the live heap (false: leave it to Go's collector)").file("server.memory_trim")
	p.add(groupServer, "node_id", stringValue{&s.NodeID}, "this node's id in the startup line and /health (default: a random 6-character id)").file("node_id").drawnDefault()
	p.add(groupServer, "ssl_cert", stringValue{&c.TLS.CertPath}, "TLS certificate file (PEM, the chain after the leaf): with --ssl_key, every HTTP listener serves HTTPS and wss://, and gRPC over TLS; reloaded on SIGHUP or when the files change").file("server.ssl.cert_path")
	p.add(groupServer, "ssl_key", stringValue{&c.TLS.KeyPath}, "TLS private key file (PEM) of --ssl_cert").file("server.ssl.key_path")
	p.add(groupServer, "presets", presetsValue{&s.Presets}, "configuration presets, comma-separated: fly, heroku, broker, none (default: fly on Fly.io, heroku on Heroku, detected from their environment variables)").file("presets")
}

func (c *Config) bindWebSocket(p *parser) {
	p.add(groupTransports, "sse", boolValue{&c.SSE.Enabled}, "serve Server-Sent Events at --sse_path on the main port (EventSource clients, Hotwire)").file("sse.enabled")
	p.add(groupTransports, "sse_path", stringValue{&c.SSE.Path}, "Server-Sent Events endpoint path").file("sse.path")
	p.add(groupTransports, "ds", boolValue{&c.DS.Enabled}, "serve the Durable Streams read API at --ds_path/* on the main port (needs a broker with history)").file("ds.enabled")
	p.add(groupTransports, "ds_path", stringValue{&c.DS.Path}, "Durable Streams path prefix: the rest of the URL path is the stream name").file("ds.path")
	p.add(groupTransports, "ds_skip_auth", boolValue{&c.DS.SkipAuth}, "serve Durable Streams without connection authentication (streams still need a signed name or --public_streams)").file("ds.skip_auth")
	p.add(groupTransports, "ds_poll_interval", durationValue{&c.DS.PollInterval}, "how long a Durable Streams long-poll waits for data, seconds").file("ds.poll_interval")
	p.add(groupTransports, "ds_sse_ttl", durationValue{&c.DS.SSETTL}, "how long a Durable Streams SSE answer lasts before the client reconnects, seconds (0 = 60)").file("ds.sse_ttl")
	p.add(groupTransports, "pusher_app_id", stringValue{&c.Pusher.AppID}, "Pusher app id: with --pusher_app_key, serves Pusher clients at /app/<key> and the Pusher HTTP API at /apps/<id>/*").file("pusher.app_id")
	p.add(groupTransports, "pusher_app_key", stringValue{&c.Pusher.AppKey}, "Pusher app key (the key clients connect with)").file("pusher.app_key")
	p.add(groupTransports, "pusher_secret", stringValue{&c.Pusher.Secret}, "Pusher app secret: signs channel authorizations, sign-ins and HTTP API requests (default: --secret)").file("pusher.secret").secret()
	p.add(groupTransports, "pusher_api_port", intValue{&c.Pusher.APIPort, 0, 65535}, "serve the Pusher HTTP API on this port instead of the main one (0 = main port)").file("pusher.api_port")
	p.add(groupTransports, "pusher_webhook_url", listValue{&c.Pusher.WebhookURLs}, "Pusher webhook URLs, comma-separated (http:// or https://): channel_occupied, channel_vacated, member_added, member_removed and client_event are POSTed there in batches, signed with the app key and secret").file("pusher.webhook_urls")
	p.add(groupWebSocket, "max_message_size", sizeValue[int64]{&c.WS.MaxMessageSize, 1}, "largest client frame, bytes (larger ones close with 1009)").file("ws.max_message_size")
	p.add(groupWebSocket, "ping_interval", durationValue{&c.Node.PingInterval}, "time between pings, seconds (0 disables)").file("app.ping_interval")
	p.add(groupWebSocket, "ping_timestamp_precision", enumValue{&c.Node.PingPrecision, []string{"s", "ms", "ns"}}, "ping timestamp unit: s, ms, ns").file("app.ping_timestamp_precision")
	p.add(groupWebSocket, "pong_timeout", durationValue{&c.Node.PongTimeout}, "disconnect extended-protocol clients silent this long after a ping, seconds (0 disables)").file("app.pong_timeout")
	p.add(groupWebSocket, "ws_max_pending_size", sizeValue[int]{&c.WS.MaxPending, 0}, "most bytes queued for one client before it is cut as too slow (0 = unlimited)").file("ws.max_pending_size")
	p.add(groupWebSocket, "ws_write_timeout", durationValue{&c.WS.WriteTimeout}, "limit for one socket write, seconds").file("ws.write_timeout")
	p.add(groupWebSocket, "enable_ws_compression", boolValue{&c.WS.Compression}, "accept permessage-deflate (RFC 7692) from clients that offer it: each broadcast is compressed once for all its subscribers; clients that do not offer it get plain frames").file("ws.enable_compression")
	p.add(groupWebSocket, "ws_compression_min_size", sizeValue[int]{&c.WS.CompressionMinSize, 1}, "smallest server message sent compressed, bytes (smaller ones go plain: deflate saves little on them)").file("ws.compression_min_size")
	p.add(groupWebSocket, "ws_io_uring", boolValue{&c.WS.IOURing}, "send broadcasts that do not coalesce through io_uring, many clients per system call, where the kernel allows it (false: write(2) only)").file("ws.io_uring")
}

func (c *Config) bindStreams(p *parser) {
	s := &c.Streams
	p.add(groupStreams, "public_streams", boolValue{&s.Public}, "allow subscribing to unsigned streams").file("streams.public")
	p.add(groupStreams, "streams_secret", stringValue{&s.Secret}, "secret of signed stream names (default: --secret)").file("streams.secret").secret()
	p.add(groupStreams, "streams_whisper", boolValue{&s.Whisper}, "allow whispers on signed streams").file("streams.whisper")
	p.add(groupStreams, "streams_presence", boolValue{&s.Presence}, "allow presence on $pubsub streams").file("streams.presence")
	p.add(groupStreams, "turbo_streams", boolValue{&s.Turbo}, "enable Turbo::StreamsChannel").file("streams.turbo")
	p.add(groupStreams, "benchmark_channel", boolValue{&s.Benchmark}, "enable BenchmarkChannel (echo and broadcast actions on stream \"all\") for websocket-bench").file("streams.benchmark_channel")
	p.add(groupStreams, "turbo_streams_secret", stringValue{&s.TurboSecret}, "secret of Turbo signed stream names (default: the streams secret)").file("streams.turbo_secret").secret()
	p.add(groupStreams, "jwt_secret", stringValue{&c.JWT.Secret}, "secret of JWT identification tokens (default: --secret)").file("jwt.secret").secret()
	p.add(groupStreams, "jwt_param", stringValue{&c.JWT.Param}, "query parameter carrying the JWT (header X-<param>)").file("jwt.param")
	p.add(groupStreams, "enforce_jwt", boolValue{&c.JWT.Enforce}, "refuse connections without a JWT").file("jwt.force")
}

// bindRPC binds AnyCable's RPC flags (several hidden in AnyCable's own
// --help, listed here like every other). Timeouts are milliseconds, as in
// AnyCable.
func (c *Config) bindRPC(p *parser) {
	r, a := &c.RPC, &c.Node.AppOptions
	p.add(groupRPC, "rpc_host", stringValue{&r.Host}, "RPC back end: host:port, dns:///host:port or grpc-list://h1:p1,h2:p2 for gRPC; an http:// or https:// URL for HTTP RPC").file("rpc.host")
	p.add(groupRPC, "norpc", boolValue{&r.Disabled}, "no RPC back end: only JWT, --noauth or --public connections and the built-in channels work").noFile()
	p.add(groupRPC, "rpc_impl", enumValue{&r.Impl, []string{"", RPCImplGRPC, RPCImplHTTP, RPCImplNone}}, "RPC implementation: grpc, http, none (= --norpc) (default: http for an http(s):// --rpc_host, else grpc)").file("rpc.implementation")
	p.add(groupRPC, "rpc_concurrency", intValue{&r.Concurrency, 0, 1 << 20}, "most RPC calls at the back end at once; more wait (0 = the default, with a warning)").file("rpc.concurrency")
	p.add(groupRPC, "rpc_request_timeout", msDurationValue{&r.RequestTimeout}, "limit for one RPC attempt, milliseconds (0 = none for gRPC; HTTP RPC: --http_rpc_timeout, else this, else 3000)").file("rpc.request_timeout")
	p.add(groupRPC, "rpc_command_timeout", msDurationValue{&r.CommandTimeout}, "limit for one RPC call with its retries, milliseconds").file("rpc.command_timeout")
	p.add(groupRPC, "headers", lowerListValue{listValue{&a.Headers}}, "request headers passed to the back end, comma-separated, lower-cased").file("rpc.proxy_headers")
	p.add(groupRPC, "proxy-cookies", listValue{&a.Cookies}, "cookies passed to the back end in the cookie header, comma-separated (default: all)").file("rpc.proxy_cookies")
	p.add(groupRPC, "http_rpc_secret", stringValue{&r.HTTPSecret}, "HTTP RPC bearer token (default: derived from --secret; \"none\" sends no Authorization header)").file("rpc.secret").secret()
	p.add(groupRPC, "http_rpc_timeout", msDurationValue{&r.HTTPTimeout}, "limit for one HTTP RPC request, milliseconds (0 = --rpc_request_timeout, else 3000)").file("rpc.http_request_timeout")
	p.add(groupRPC, "rpc_enable_tls", boolValue{&r.EnableTLS}, "connect to the gRPC back end over TLS").file("rpc.enable_tls")
	p.add(groupRPC, "rpc_tls_verify", boolValue{&r.TLSVerify}, "verify the back end's TLS certificate (gRPC with TLS, https:// HTTP RPC)").file("rpc.tls_verify")
	p.add(groupRPC, "rpc_tls_root_ca", stringValue{&r.TLSRootCA}, "CA of the back end's TLS certificate: a PEM file path or the PEM text; implies --rpc_enable_tls (default: the system's CAs)").file("rpc.tls_root_ca_path")
	p.add(groupRPC, "rpc_max_call_recv_size", sizeValue[int]{&r.MaxRecvSize, 0}, "largest RPC reply, bytes, gRPC or HTTP; larger ones fail the call (0 = 4 MiB, gRPC's default)").file("rpc.max_recv_size")
	p.add(groupRPC, "rpc_max_call_send_size", sizeValue[int]{&r.MaxSendSize, 0}, "largest gRPC request, bytes (0 = unlimited)").file("rpc.max_send_size")
	p.add(groupRPC, "disconnect_mode", disconnectModeValue{&a.DisconnectMode}, "which ended sessions get a Disconnect call: auto (those the back end connected or subscribed), always, never").file("app.disconnect_mode")
	p.add(groupRPC, "disconnect_rate", intValue{&a.DisconnectRate, 1, 1 << 20}, "most Disconnect calls per second").file("disconnector.rate")
	p.add(groupRPC, "disconnect_backlog_size", intValue{&a.DisconnectBacklog, 1, 1 << 24}, "most Disconnect calls waiting for their turn").file("disconnector.backlog")
}

func (c *Config) bindLimits(p *parser) {
	n := &c.Node
	p.add(groupLimits, "max_subscriptions_per_connection", intValue{&n.MaxSubscriptions, 1, 1 << 20}, "most subscriptions one connection may hold; more are rejected").file("app.max_subscriptions_per_connection")
	p.add(groupLimits, "max_presence_per_connection", intValue{&n.MaxPresence, 1, 1 << 20}, "most streams one connection may be present on at once; more joins are refused").file("app.max_presence_per_connection")
	p.add(groupLimits, "max_presence_info_size", intValue{&n.MaxPresenceInfo, 1, 1 << 20}, "largest presence info a join may carry, bytes; larger joins are refused").file("app.max_presence_info_size")
	p.add(groupLimits, "presence_id_from_identifiers", boolValue{&n.PresenceFromIdentifiers}, "use the connection identifiers (JWT ext claim) as the presence id instead of the id the client sends; connections without identifiers cannot join").file("app.presence_id_from_identifiers")
}

func (c *Config) bindAPI(p *parser) {
	g := &c.Gateway
	p.add(groupAPI, "api_port", intValue{&c.API.Port, 0, 65535}, "dedicated REST API port (0 = the main port)").file("api.port")
	p.add(groupAPI, "api_path", stringValue{&g.Prefix}, "base path of the REST API").file("api.path")
	p.add(groupAPI, "api_secret", stringValue{&c.API.Secret}, "API bearer token (default: derived from --secret)").file("api.secret").secret()
	p.add(groupAPI, "api_cors_headers", boolValue{&g.CORS}, "add CORS headers to API responses and answer preflight requests").file("api.cors_headers")
	p.add(groupAPI, "api_cors_hosts", csvValue{listValue{&g.CORSHosts}}, "allowed CORS origin hosts, comma-separated, *.example.com allowed (default: any)").file("api.cors_hosts")
	p.add(groupAPI, "api_max_body_size", sizeValue[int64]{&g.MaxBodySize, 1}, "largest accepted API request body and broadcast payload (every adapter), bytes").file("api.max_body_size")
	// 2 s (api.DefaultTimeout): a healthy Redis or NATS answers in
	// milliseconds even under load, so this only cuts calls to a dependency
	// that is down or stuck, and a caller (often a web request) learns it in
	// time to retry or give up instead of piling up behind it.
	p.add(groupAPI, "publish_timeout", durationValue{&c.API.PublishTimeout}, "limit for one publish, presence or disconnect call's work against the broker and pub/sub, seconds or e.g. 1500ms (then 501 / UNAVAILABLE)").file("api.publish_timeout")
	p.add(groupAPI, "grpc_port", intValue{&c.API.GRPCPort, 0, 65535}, "dedicated gRPC API port (0 = gRPC on the API's own listener)").file("api.grpc_port")
}

func (c *Config) bindAdmin(p *parser) {
	a := &c.Admin
	p.add(groupAdmin, "admin", boolValue{&a.Enabled}, "serve the admin console (a web page) at --admin_path, on the REST API's listener; needs --admin_password or an API secret to sign in with").file("admin.enabled")
	p.add(groupAdmin, "admin_path", stringValue{&a.Path}, "path of the admin console").file("admin.path")
	p.add(groupAdmin, "admin_password", stringValue{&a.Password}, "password of the admin console (the API token signs in too)").file("admin.password").secret()
}

func (c *Config) bindBroker(p *parser) {
	cl, b := &c.Cluster, &c.Broker
	// "none" keeps no presence or history, like AnyCable's legacy broker.
	p.add(groupBroker, "broker", enumValue{&cl.Broker, []string{"memory", "redis", "nats", "none"}}, "broker for history, presence and sessions: memory, redis, nats (JetStream, no presence), none").file("broker.adapter")
	p.add(groupBroker, "pubsub", enumValue{&cl.PubSub, []string{"", "none", "redis", "nats"}}, "pub/sub between nodes: redis, nats (default: none, or redis with --broker=redis or the redisx broadcast adapter, nats with --broker=nats)").file("pubsub_adapter")
	p.add(groupBroker, "redis_url", stringValue{&cl.RedisURL}, "Redis URL", "REDIS_URL").file("redis.url")
	p.add(groupBroker, "nats_servers", stringValue{&cl.NATSServers}, "NATS server URLs, comma-separated").file("nats.servers")
	p.add(groupBroker, "embed_nats", boolValue{&cl.EmbedNATS}, "run a NATS server inside this process (and use it unless --nats_servers says otherwise)").file("embedded_nats.enabled")
	p.add(groupBroker, "enats_addr", stringValue{&cl.Embedded.Addr}, "embedded NATS client address").file("embedded_nats.service_addr")
	p.add(groupBroker, "enats_cluster", stringValue{&cl.Embedded.ClusterAddr}, "embedded NATS cluster address, e.g. nats://127.0.0.1:6222 (default: no cluster)").file("embedded_nats.cluster_addr")
	p.add(groupBroker, "enats_cluster_name", stringValue{&cl.Embedded.ClusterName}, "embedded NATS cluster name").file("embedded_nats.cluster_name")
	p.add(groupBroker, "enats_cluster_routes", listValue{&cl.Embedded.Routes}, "other embedded NATS servers' cluster URLs, comma-separated").file("embedded_nats.routes")
	p.add(groupBroker, "presence_ttl", durationValue{&b.PresenceTTL}, "how long presence outlives a client's last connection, seconds").file("broker.presence_ttl")
	p.add(groupBroker, "presence_max_members", intValue{&b.PresenceMaxMembers, 1, 1 << 24}, "most presence ids one stream may have, across the cluster; joins of more are refused").file("broker.presence_max_members")
	p.add(groupBroker, "history_limit", intValue{&b.HistoryLimit, 1, 1 << 20}, "publications kept per stream for history").file("broker.history_limit")
	p.add(groupBroker, "history_ttl", durationValue{&b.HistoryTTL}, "how long publications stay in history, seconds").file("broker.history_ttl")
	p.add(groupBroker, "sessions_ttl", durationValue{&b.SessionsTTL}, "how long a disconnected extended-protocol session can be restored, seconds (0 disables)").file("broker.sessions_ttl")
	p.add(groupBroker, "idempotency_window", durationValue{&c.Node.IdempotencyWindow}, "how long a publication's idempotency key makes a retry with the same stream and key a no-op, seconds (0 disables; cluster-wide with --broker=redis)").file("broker.idempotency_window")
}

// bindRedis binds AnyCable's Redis connection flags (--redis_url is a
// Broker flag): Sentinel, TLS and the tuning flags, for the broker and the
// pub/sub alike.
func (c *Config) bindRedis(p *parser) {
	r := &c.Cluster.Redis
	p.add(groupRedis, "redis_sentinels", stringValue{&r.Sentinels}, "Redis Sentinel addresses, comma-separated host:port (a password as redis://:pass@host:port); --redis_url's host is then the master's name").file("redis.sentinels")
	p.add(groupRedis, "redis_sentinel_discovery_interval", durationValue{&r.SentinelDiscoveryInterval}, "seconds; accepted for AnyCable compatibility and unused: Cablehub follows Sentinel's failover notifications instead of polling").file("redis.sentinel_discovery_interval")
	p.add(groupRedis, "redis_keepalive_interval", durationValue{&r.KeepaliveInterval}, "TCP keepalive period of Redis connections, seconds").file("redis.keepalive_ping_interval")
	p.add(groupRedis, "redis_tls_verify", boolValue{&r.TLSVerify}, "verify the Redis server's certificate with rediss:// URLs (off by default, as in AnyCable: a WARN says so)").file("redis.tls_verify")
	p.add(groupRedis, "redis_tls_ca_cert_path", stringValue{&r.TLSCACertPath}, "CA certificate file (PEM) to verify the Redis server with; implies --redis_tls_verify").file("redis.tls_ca_cert_path")
	p.add(groupRedis, "redis_tls_client_cert_path", stringValue{&r.TLSClientCertPath}, "client certificate file (PEM) for mutual TLS with Redis (with --redis_tls_client_key_path)").file("redis.tls_client_cert_path")
	p.add(groupRedis, "redis_tls_client_key_path", stringValue{&r.TLSClientKeyPath}, "client private key file (PEM) for mutual TLS with Redis").file("redis.tls_client_key_path")
	p.add(groupRedis, "redis_sharded_pubsub", boolValue{&r.ShardedPubSub}, "on a Redis Cluster, carry streams on sharded channels (SSUBSCRIBE/SPUBLISH: a publication crosses only its stream's shard); false: classic channels on every node, as AnyCable, for clusters mixing AnyCable and Cablehub nodes").file("redis.sharded_pubsub")
	p.add(groupRedis, "redis_disable_cache", boolValue{&r.DisableCache}, "accepted for AnyCable compatibility and unused: Cablehub keeps no client-side Redis cache").file("redis.disable_cache")
}

func (c *Config) bindLogging(p *parser) {
	p.add(groupLogging, "log_level", enumValue{&c.Log.Level, []string{"debug", "info", "warn", "error"}}, "log level: debug, info, warn, error").file("logging.level")
	p.add(groupLogging, "log_format", enumValue{&c.Log.Format, []string{"text", "json"}}, "log format: text, json").file("logging.format")
	p.add(groupLogging, "debug", boolValue{&c.Log.Debug}, "debug mode: log level debug, and the startup log says so").file("logging.debug")
	p.add(groupLogging, "metrics_http", stringValue{&c.Metrics.Path}, "serve Prometheus metrics at this path, e.g. /metrics (default: off)").file("metrics.http_path", "metrics.http")
	p.add(groupLogging, "metrics_host", stringValue{&c.Metrics.Host}, "metrics host (default: --host)").file("metrics.host")
	p.add(groupLogging, "metrics_port", intValue{&c.Metrics.Port, 0, 65535}, "metrics port (default: the main port)").file("metrics.port")
	p.add(groupLogging, "pprof", boolValue{&c.Server.Pprof}, "serve Go profiles at /debug/pprof/ on the main port (for profiling; keep off in production)").file("server.pprof")
	m := &c.Metrics
	p.add(groupLogging, "metrics_tags", tagsValue{&m.Tags}, "tags added to every metric, comma-separated key:value pairs (Prometheus labels, StatsD tags)").file("metrics.tags")
	p.add(groupLogging, "metrics_rotate_interval", durationValue{&m.RotateInterval}, "how often metrics go to StatsD and the log, seconds").file("metrics.rotate_interval")
	p.add(groupLogging, "metrics_log", boolValue{&m.Log}, "log the metrics every --metrics_rotate_interval (counters as the interval's increase)").file("metrics.log")
	p.add(groupLogging, "metrics_log_filter", listValue{&m.LogFilter}, "only these metrics in the log, comma-separated names such as clients_num (default: all)").file("metrics.log_filter")
	p.add(groupLogging, "statsd_host", stringValue{&m.Statsd.Host}, "send metrics to this StatsD server, host:port over UDP (default: off)").file("metrics.statsd.host")
	p.add(groupLogging, "statsd_prefix", stringValue{&m.Statsd.Prefix}, "prefix of StatsD metric names").file("metrics.statsd.prefix")
	p.add(groupLogging, "statsd_tags_format", enumValue{&m.Statsd.TagsFormat, []string{"datadog", "influxdb", "graphite"}}, "how StatsD packets carry --metrics_tags: datadog, influxdb, graphite").file("metrics.statsd.tags_format")
	p.add(groupLogging, "stats_refresh_interval", durationValue{&m.StatsRefreshInterval}, "seconds; accepted for AnyCable compatibility and unused: Cablehub's gauges are always current").file("app.stats_refresh_interval")
}
