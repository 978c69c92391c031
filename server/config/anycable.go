package config

// anycableSetting is one of AnyCable-Go 1.6's settings (from its --help,
// hidden flags included, and its configuration file's keys) that Cablehub
// has no setting for. The notices use the list to tell a setting Cablehub
// does not know at all (a typo, say) from one it knows and deliberately
// does not support, and to say why.
type anycableSetting struct {
	// flag is AnyCable's flag; its variable is EnvName(flag). Empty for a
	// setting AnyCable reads only from the file.
	flag string
	// key is its key in anycable.toml; empty for a flag-only setting.
	key string
	// defaults are the values that ask for nothing AnyCable would not do
	// without the setting (its defaults, as a flag takes them): a file
	// written by AnyCable's --print-config holds many of those, so they
	// are noted once, not warned about one by one.
	defaults []string
	// why says what Cablehub does instead.
	why string
}

// Reasons shared by several settings.
const (
	notYet        = "not implemented yet"
	noCableReady  = "CableReady streams are not implemented (Turbo streams are: --turbo_streams)"
	noBuffers     = "its WebSocket buffer sizes are fixed"
	noLogMetrics  = "metrics are not logged; scrape them from --metrics_http"
	noGateways    = "its embedded NATS server clusters (--enats_cluster, --enats_cluster_routes) but has no gateways"
	deprecatedJWT = "a deprecated AnyCable name; use --jwt_secret, --jwt_param, --enforce_jwt"
	deprecatedKey = "a deprecated AnyCable name; use --turbo_streams_secret"
	retryForever  = "it reconnects with backoff for as long as it takes, reporting the outage in /health"
)

// anycableSettings lists AnyCable's settings Cablehub does not have. When
// Cablehub gains one, its flag's definition in flags.go takes over and the
// entry must go (TestAnyCableListHasNoCablehubSetting).
func anycableSettings() []anycableSetting {
	return []anycableSetting{
		// Top level and [server].
		// AnyCable's default adapters, http and redis, do ask for something:
		// a listener and a subscription.
		// [app]
		{"shutdown_pool_size", "app.shutdown_disconnect_gopool_size", []string{"16"}, "it sizes its shutdown work itself"},
		{"hub_gopool_size", "app.broadcast_gopool_size", []string{"16"}, "its broadcast fan-out has no worker pool to size"},
		{"enable_native_pings", "app.enable_native_ping", []string{"false"}, "it sends Action Cable pings only"},
		// [logging]
		// [ws]
		{"read_buffer_size", "ws.read_buffer_size", []string{"1024"}, noBuffers},
		{"write_buffer_size", "ws.write_buffer_size", []string{"1024"}, noBuffers},
		// [streams] and deprecated JWT and signed streams names.
		{"cable_ready", "streams.cable_ready", []string{"false"}, noCableReady},
		{"cable_ready_secret", "streams.cable_ready_secret", []string{""}, noCableReady},
		{"cable_ready_key", "", []string{""}, noCableReady},
		{"cable_ready_cleartext", "", []string{"false"}, noCableReady},
		{"", "streams.pubsub_channel", []string{"$pubsub"}, "the signed and public streams channel is always $pubsub"},
		{"turbo_rails_key", "", []string{""}, deprecatedKey},
		{"turbo_rails_cleartext", "", []string{"false"}, "a deprecated AnyCable name; use --public_streams"},
		{"jwt_id_key", "", []string{""}, deprecatedJWT},
		{"jwt_id_param", "", []string{"", "jid"}, deprecatedJWT},
		{"jwt_id_enforce", "", []string{"false"}, deprecatedJWT},
		// [api]
		{"", "api.host", []string{"", "localhost"}, "a dedicated --api_port listens on --host"},
		// [redis], [nats]
		{"", "redis.max_reconnect_attempts", []string{"5"}, retryForever},
		{"nats_dont_randomize_servers", "nats.dont_randomize_servers", []string{"false"}, "the NATS client picks among --nats_servers at random"},
		{"", "nats.max_reconnect_attempts", []string{"5"}, retryForever},
		// Broadcast adapters.
		{"http_broadcast_secret", "http_broadcast.secret", []string{""}, notYet},
		{"http_broadcast_cors", "http_broadcast.cors_headers", []string{"false"}, notYet},
		{"", "http_broadcast.cors_hosts", []string{""}, notYet},
		{"", "redis_pubsub.channel", []string{"__anycable_internal__"}, "the channel between nodes is always __anycable_internal__"},
		{"", "nats_pubsub.channel", []string{"__anycable_internal__"}, "the subject between nodes is always __anycable_internal__"},
		// [metrics]
		{"metrics_log_interval", "", []string{"0", "-1"}, noLogMetrics},
		{"metrics_log_formatter", "", []string{""}, noLogMetrics},
		{"statsd_max_packet_size", "metrics.statsd.max_packet_size", []string{"1400"}, notYet},
		// [disconnector] and deprecated disconnect names.
		{"disconnect_timeout", "", []string{"0"}, "a deprecated AnyCable name; --shutdown_timeout bounds shutdown"},
		{"disable_disconnect", "", []string{"false"}, "a deprecated AnyCable name; use --disconnect_mode never"},
		// [embedded_nats]
		{"enats_gateway", "embedded_nats.gateway_addr", []string{""}, noGateways},
		{"enats_gateways", "embedded_nats.gateways", []string{""}, noGateways},
		{"enats_gateway_advertise", "embedded_nats.gateway_advertise", []string{""}, noGateways},
		{"enats_server_name", "embedded_nats.name", []string{""}, "its embedded NATS server names itself"},
		{"enats_store_dir", "embedded_nats.jetstream_store_dir", []string{""}, "the embedded JetStream store lives in a temporary directory of its own"},
		{"enats_debug", "embedded_nats.debug", []string{"false"}, "the embedded NATS server's own logs are not exposed"},
		{"enats_trace", "embedded_nats.trace", []string{"false"}, "the embedded NATS server's own logs are not exposed"},
		{"enats_max_payload", "embedded_nats.max_payload", []string{"0", "1048576"}, "the embedded NATS server keeps NATS's default payload limit"},
		{"", "embedded_nats.jetstream", []string{"false"}, "the embedded NATS server runs JetStream when --broker nats needs it"},
		{"", "embedded_nats.jetstream_ready_timeout", []string{"0", "30"}, "the embedded NATS server runs JetStream when --broker nats needs it"},
	}
}

// anycableEnvNotes are ANYCABLE_* variables AnyCable reads without a
// flag; Cablehub already behaves as each asks, or it only tunes AnyCable's
// own internals. They are noted at startup, not warned about.
func anycableEnvNotes() map[string]string {
	return map[string]string{
		"ANYCABLE_DISABLE_TELEMETRY": "Cablehub sends no telemetry",
		"ANYCABLE_TELEMETRY_URL":     "Cablehub sends no telemetry",
		"ANYCABLE_TELEMETRY_DEBUG":   "Cablehub sends no telemetry",
		"ANYCABLE_MEMORY_METRICS":    "Cablehub has no detailed memory metrics",
		"ANYCABLE_FLY_RPC_APP_NAME":  "Cablehub has no Fly preset: set --rpc_host",
		// AnyCable has no variables for its configuration file switches
		// either; a deployment setting these expects them to do nothing.
		"ANYCABLE_CONFIG_PATH":        "the configuration file is chosen with --config-path only, as in AnyCable",
		"ANYCABLE_IGNORE_CONFIG_PATH": "use --ignore-config-path, as in AnyCable",
		"ANYCABLE_PRINT_CONFIG":       "use --print-config, as in AnyCable",
	}
}

// gemSettings are the settings of the anycable and anycable-rails gems,
// the application's side of AnyCable, that the server does not read. A
// Heroku-style deployment shares one environment between the application
// and the server, so the server sees their ANYCABLE_* variables too.
func gemSettings() []string {
	return []string{
		"http_broadcast_url", "websocket_url", "jwt_ttl", "log_file", "log_grpc",
		"http_health_port", "http_health_path", "version_check_enabled", "sid_header_enabled",
		"postgres_url", "postgres_broadcasts_table", "postgres_contract_table", "postgres_validate_contract",
		"rpc_tls_cert", "rpc_tls_key", "rpc_pool_size", "rpc_max_waiting_requests", "rpc_poll_period",
		"rpc_pool_keep_alive", "rpc_server_args", "rpc_max_connection_age", "nats_options",
		"access_logs_disabled", "persistent_session_enabled", "embedded", "http_rpc", "http_rpc_mount_path",
		"batch_broadcasts", "socket_id_header", "disable_rpc_pool_size_warning", "use_warden_manager",
		"fly_ws_app_name",
	}
}
