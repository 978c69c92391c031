package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeFile writes text to a file in a test directory and returns its path.
func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadWith runs Load with a file (none for ""), environment and flags.
func loadWith(t *testing.T, file string, env []string, args ...string) (*Config, error) {
	t.Helper()
	if file != "" {
		args = append([]string{"--config-path", file}, args...)
	}
	return Load(Input{Args: args, Environ: env})
}

func mustLoad(t *testing.T, file string, env []string, args ...string) *Config {
	t.Helper()
	c, err := loadWith(t, file, env, args...)
	if err != nil {
		t.Fatalf("load %s %v %v: %v", file, env, args, err)
	}
	return c
}

// TestPrecedence asserts defaults < file < environment < flags, level by
// level, for settings of each kind of value.
func TestPrecedence(t *testing.T) {
	file := writeFile(t, "anycable.toml", `
[server]
port = 7001
allowed_origins = "file.example"
[rpc]
host = "file-host:1"
proxy_headers = ["cookie", "x-from-file"]
[broker]
presence_ttl = 11
[streams]
public = true
`)
	settings := []struct {
		get                   func(*Config) any
		def, inFile, env, flg any
		envVar, flag          string
	}{
		{func(c *Config) any { return c.Server.Port }, 8080, 7001, 7002, 7003, "ANYCABLE_PORT=7002", "--port=7003"},
		{func(c *Config) any { return c.RPC.Host }, "localhost:50051", "file-host:1", "env-host:2", "flag-host:3", "ANYCABLE_RPC_HOST=env-host:2", "--rpc_host=flag-host:3"},
		{func(c *Config) any { return c.Node.AppOptions.Headers }, []string{"cookie"}, []string{"cookie", "x-from-file"}, []string{"x-env"}, []string{"x-flag"}, "ANYCABLE_HEADERS=X-Env", "--headers=x-flag"},
		{func(c *Config) any { return c.Broker.PresenceTTL }, 15 * time.Second, 11 * time.Second, 12 * time.Second, 13 * time.Second, "ANYCABLE_PRESENCE_TTL=12", "--presence_ttl=13"},
		{func(c *Config) any { return c.WS.AllowedOrigins }, []string(nil), []string{"file.example"}, []string{"env.example"}, []string{"flag.example"}, "ANYCABLE_ALLOWED_ORIGINS=env.example", "--allowed_origins=flag.example"},
		{func(c *Config) any { return c.Streams.Public }, false, true, false, true, "ANYCABLE_PUBLIC_STREAMS=false", "--public_streams=true"},
	}
	var env, flags []string
	for _, s := range settings {
		env, flags = append(env, s.envVar), append(flags, s.flag)
	}
	levels := []struct {
		name string
		c    *Config
		want func(i int) any
	}{
		{"defaults", mustLoad(t, "", nil), func(i int) any { return settings[i].def }},
		{"file over defaults", mustLoad(t, file, nil), func(i int) any { return settings[i].inFile }},
		{"environment over file", mustLoad(t, file, env), func(i int) any { return settings[i].env }},
		{"flags over environment and file", mustLoad(t, file, env, flags...), func(i int) any { return settings[i].flg }},
	}
	for _, l := range levels {
		for i, s := range settings {
			if got := s.get(l.c); !reflect.DeepEqual(got, l.want(i)) {
				t.Errorf("%s: %s: got %v, want %v", l.name, strings.Split(s.flag, "=")[0], got, l.want(i))
			}
		}
	}
}

// fileCases sets every setting that has a file key to a value other than
// its default, under AnyCable's key where AnyCable has the setting, with
// the flag that says the same.
var fileCases = []struct{ key, value, flag string }{
	{"secret", `"s3cr3t"`, "--secret=s3cr3t"},
	{"public", `true`, "--public"},
	{"noauth", `true`, "--noauth"},
	{"pubsub_adapter", `"redis"`, "--pubsub=redis"},
	{"broadcast_adapters", `["http", "redisx", "nats"]`, "--broadcast_adapter=http,redisx,nats"},
	{"server.max_conn", `500`, "--max-conn=500"},
	{"app.shutdown_delay", `3`, "--shutdown_delay=3"},
	{"node_id", `"n1"`, "--node_id=n1"},
	{"presets", `"none"`, "--presets=none"},
	{"redis.sentinels", `"s1:26379,s2:26379"`, "--redis_sentinels=s1:26379,s2:26379"},
	{"redis.sentinel_discovery_interval", `10`, "--redis_sentinel_discovery_interval=10"},
	{"redis.keepalive_ping_interval", `20`, "--redis_keepalive_interval=20"},
	{"redis.tls_verify", `true`, "--redis_tls_verify"},
	{"redis.tls_ca_cert_path", `"/etc/redis-ca.pem"`, "--redis_tls_ca_cert_path=/etc/redis-ca.pem"},
	{"redis.tls_client_cert_path", `"/etc/rc.pem"`, "--redis_tls_client_cert_path=/etc/rc.pem"},
	{"redis.tls_client_key_path", `"/etc/rk.pem"`, "--redis_tls_client_key_path=/etc/rk.pem"},
	{"redis.disable_cache", `true`, "--redis_disable_cache"},
	{"redis.sharded_pubsub", `false`, "--redis_sharded_pubsub=false"},
	{"logging.debug", `true`, "--debug"},
	{"metrics.tags", `{ env = "prod", region = "eu" }`, "--metrics_tags=env:prod,region:eu"},
	{"metrics.rotate_interval", `30`, "--metrics_rotate_interval=30"},
	{"metrics.log", `true`, "--metrics_log"},
	{"metrics.log_filter", `["clients_num"]`, "--metrics_log_filter=clients_num"},
	{"metrics.statsd.host", `"127.0.0.1:8125"`, "--statsd_host=127.0.0.1:8125"},
	{"metrics.statsd.prefix", `"app."`, "--statsd_prefix=app."},
	{"metrics.statsd.tags_format", `"influxdb"`, "--statsd_tags_format=influxdb"},
	{"app.stats_refresh_interval", `7`, "--stats_refresh_interval=7"},
	{"sse.enabled", `true`, "--sse"},
	{"sse.path", `"/sse"`, "--sse_path=/sse"},
	{"pusher.app_id", `"app-1"`, "--pusher_app_id=app-1"},
	{"pusher.app_key", `"key-1"`, "--pusher_app_key=key-1"},
	{"pusher.secret", `"psecret"`, "--pusher_secret=psecret"},
	{"pusher.api_port", `8090`, "--pusher_api_port=8090"},
	{"pusher.webhook_urls", `["https://a.example/hook", "http://b.example:8000/p"]`, "--pusher_webhook_url=https://a.example/hook,http://b.example:8000/p"},
	{"ds.enabled", `true`, "--ds"},
	{"ds.path", `"/streams"`, "--ds_path=/streams"},
	{"ds.skip_auth", `true`, "--ds_skip_auth"},
	{"ds.poll_interval", `3`, "--ds_poll_interval=3"},
	{"ds.sse_ttl", `6`, "--ds_sse_ttl=6"},
	{"ws.enable_compression", `true`, "--enable_ws_compression"},
	{"ws.compression_min_size", `512`, "--ws_compression_min_size=512"},
	{"server.ssl.cert_path", `"/etc/tls.crt"`, "--ssl_cert=/etc/tls.crt"},
	{"server.ssl.key_path", `"/etc/tls.key"`, "--ssl_key=/etc/tls.key"},
	{"broadcast_key", `"bk"`, "--broadcast_key=bk"},
	{"http_broadcast.port", `9104`, "--http_broadcast_port=9104"},
	{"http_broadcast.path", `"/pub/broadcast"`, "--http_broadcast_path=/pub/broadcast"},
	{"redis_pubsub_broadcast.channel", `"bcast"`, "--redis_channel=bcast"},
	{"redis_stream_broadcast.stream", `"bstream"`, "--redisx_stream=bstream"},
	{"redis_stream_broadcast.group", `"bgroup"`, "--redisx_group=bgroup"},
	{"redis_stream_broadcast.stream_read_block_milliseconds", `1500`, "--redisx_read_block_milliseconds=1500"},
	{"nats_broadcast.channel", `"nbcast"`, "--nats_channel=nbcast"},
	{"server.host", `"0.0.0.0"`, "--host=0.0.0.0"},
	{"server.port", `9100`, "--port=9100"},
	{"server.health_path", `"/up"`, "--health-path=/up"},
	{"server.allowed_origins", `"a.example,*.b.example"`, "--allowed_origins=a.example,*.b.example"},
	{"server.pprof", `true`, "--pprof"},
	{"logging.level", `"debug"`, "--log_level=debug"},
	{"logging.format", `"json"`, "--log_format=json"},
	{"rpc.host", `"http://app:3000/_anycable"`, "--rpc_host=http://app:3000/_anycable"},
	{"rpc.implementation", `"http"`, "--rpc_impl=http"},
	{"rpc.concurrency", `10`, "--rpc_concurrency=10"},
	{"rpc.request_timeout", `1500`, "--rpc_request_timeout=1500"},
	{"rpc.command_timeout", `4000`, "--rpc_command_timeout=4000"},
	{"rpc.proxy_headers", `["Cookie", "X-Api-Key"]`, "--headers=cookie,x-api-key"},
	{"rpc.proxy_cookies", `["_session"]`, "--proxy-cookies=_session"},
	{"rpc.secret", `"rs"`, "--http_rpc_secret=rs"},
	{"rpc.http_request_timeout", `2500`, "--http_rpc_timeout=2500"},
	{"rpc.enable_tls", `true`, "--rpc_enable_tls"},
	{"rpc.tls_verify", `false`, "--rpc_tls_verify=false"},
	{"rpc.tls_root_ca_path", `"/etc/ca.pem"`, "--rpc_tls_root_ca=/etc/ca.pem"},
	{"rpc.max_recv_size", `1000000`, "--rpc_max_call_recv_size=1000000"},
	{"rpc.max_send_size", `2000000`, "--rpc_max_call_send_size=2000000"},
	{"broker.adapter", `"redis"`, "--broker=redis"},
	{"broker.presence_ttl", `20`, "--presence_ttl=20"},
	{"broker.presence_max_members", `300`, "--presence_max_members=300"},
	{"broker.history_limit", `50`, "--history_limit=50"},
	{"broker.history_ttl", `60`, "--history_ttl=60"},
	{"broker.sessions_ttl", `90`, "--sessions_ttl=90"},
	{"broker.idempotency_window", `"1500ms"`, "--idempotency_window=1500ms"},
	{"jwt.secret", `"js"`, "--jwt_secret=js"},
	{"jwt.param", `"tok"`, "--jwt_param=tok"},
	{"jwt.force", `true`, "--enforce_jwt"},
	{"streams.public", `true`, "--public_streams"},
	{"streams.secret", `"ss"`, "--streams_secret=ss"},
	{"streams.whisper", `true`, "--streams_whisper"},
	{"streams.presence", `false`, "--streams_presence=false"},
	{"streams.turbo", `true`, "--turbo_streams"},
	{"streams.benchmark_channel", `true`, "--benchmark_channel"},
	{"streams.turbo_secret", `"ts"`, "--turbo_streams_secret=ts"},
	{"ws.paths", `["/cable", "/ws"]`, "--path=/cable,/ws"},
	{"ws.max_message_size", `1000`, "--max_message_size=1000"},
	{"ws.write_timeout", `3`, "--ws_write_timeout=3"},
	{"ws.max_pending_size", `2048`, "--ws_max_pending_size=2048"},
	{"ws.io_uring", `false`, "--ws_io_uring=false"},
	{"server.memory_trim", `false`, "--memory_trim=false"},
	{"api.port", `9101`, "--api_port=9101"},
	{"api.path", `"/pub"`, "--api_path=/pub"},
	{"api.secret", `"as"`, "--api_secret=as"},
	{"api.cors_headers", `true`, "--api_cors_headers"},
	{"api.cors_hosts", `"c.example"`, "--api_cors_hosts=c.example"},
	{"api.max_body_size", `4096`, "--api_max_body_size=4096"},
	{"api.publish_timeout", `5`, "--publish_timeout=5"},
	{"api.grpc_port", `9102`, "--grpc_port=9102"},
	{"admin.enabled", `true`, "--admin"},
	{"admin.path", `"/ops"`, "--admin_path=/ops"},
	{"admin.password", `"pw"`, "--admin_password=pw"},
	{"redis.url", `"redis://r:6379/3"`, "--redis_url=redis://r:6379/3"},
	{"nats.servers", `"nats://n:4222"`, "--nats_servers=nats://n:4222"},
	{"metrics.http_path", `"/metrics"`, "--metrics_http=/metrics"},
	{"metrics.host", `"127.0.0.2"`, "--metrics_host=127.0.0.2"},
	{"metrics.port", `9103`, "--metrics_port=9103"},
	{"app.ping_interval", `4`, "--ping_interval=4"},
	{"app.ping_timestamp_precision", `"ms"`, "--ping_timestamp_precision=ms"},
	{"app.pong_timeout", `7`, "--pong_timeout=7"},
	{"app.disconnect_mode", `"always"`, "--disconnect_mode=always"},
	{"app.shutdown_timeout", `12`, "--shutdown_timeout=12"},
	{"app.max_subscriptions_per_connection", `5`, "--max_subscriptions_per_connection=5"},
	{"app.max_presence_per_connection", `6`, "--max_presence_per_connection=6"},
	{"app.max_presence_info_size", `700`, "--max_presence_info_size=700"},
	{"app.presence_id_from_identifiers", `true`, "--presence_id_from_identifiers"},
	{"disconnector.rate", `50`, "--disconnect_rate=50"},
	{"disconnector.backlog", `100`, "--disconnect_backlog_size=100"},
	{"embedded_nats.enabled", `true`, "--embed_nats"},
	{"embedded_nats.service_addr", `"nats://127.0.0.1:4333"`, "--enats_addr=nats://127.0.0.1:4333"},
	{"embedded_nats.cluster_addr", `"nats://127.0.0.1:6333"`, "--enats_cluster=nats://127.0.0.1:6333"},
	{"embedded_nats.cluster_name", `"c1"`, "--enats_cluster_name=c1"},
	{"embedded_nats.routes", `["nats://h:6222"]`, "--enats_cluster_routes=nats://h:6222"},
}

// tomlFile writes dotted keys and values as a file with one table per
// section, as AnyCable's documentation lays it out.
func tomlFile(pairs [][2]string) string {
	var top strings.Builder
	sections := map[string]*strings.Builder{}
	var order []string
	for _, kv := range pairs {
		section, key, ok := strings.Cut(kv[0], ".")
		if !ok {
			top.WriteString(kv[0] + " = " + kv[1] + "\n")
			continue
		}
		if sections[section] == nil {
			sections[section] = &strings.Builder{}
			order = append(order, section)
		}
		sections[section].WriteString(key + " = " + kv[1] + "\n")
	}
	for _, s := range order {
		top.WriteString("\n[" + s + "]\n" + sections[s].String())
	}
	return top.String()
}

// pairedKeys are keys that cannot be set alone, with the partner set
// beside them when they are read on their own.
var pairedKeys = map[string][][2]string{
	"redis.tls_client_cert_path": {{"redis.tls_client_key_path", `"/etc/rk.pem"`}},
	"redis.tls_client_key_path":  {{"redis.tls_client_cert_path", `"/etc/rc.pem"`}},
	"server.ssl.cert_path":       {{"server.ssl.key_path", `"/etc/k.pem"`}},
	"server.ssl.key_path":        {{"server.ssl.cert_path", `"/etc/c.pem"`}},
	"pusher.app_id":              {{"pusher.app_key", `"k"`}, {"pusher.secret", `"s"`}},
	"pusher.app_key":             {{"pusher.app_id", `"a"`}, {"pusher.secret", `"s"`}},
	"pusher.api_port":            {{"pusher.app_id", `"a"`}, {"pusher.app_key", `"k"`}, {"pusher.secret", `"s"`}},
	"pusher.webhook_urls":        {{"pusher.app_id", `"a"`}, {"pusher.app_key", `"k"`}, {"pusher.secret", `"s"`}},
}

// TestFileReadsEverySetting asserts each file key is read, alone, and
// that a file with every key gives the configuration the same flags give.
func TestFileReadsEverySetting(t *testing.T) {
	p := newParser()
	Default().bind(p)
	covered := map[string]bool{}
	for _, fc := range fileCases {
		covered[fc.key] = true
	}
	for _, o := range p.options {
		if len(o.keys) > 0 && !covered[o.keys[0]] {
			t.Errorf("fileCases lacks %s (--%s)", o.keys[0], o.name)
		}
	}
	defaults := mustLoad(t, "", nil)
	var pairs [][2]string
	var flags []string
	for _, fc := range fileCases {
		pairs = append(pairs, [2]string{fc.key, fc.value})
		flags = append(flags, fc.flag)
		one := [][2]string{{fc.key, fc.value}}
		one = append(one, pairedKeys[fc.key]...)
		c := mustLoad(t, writeFile(t, "one.toml", tomlFile(one)), nil)
		if c.Loaded = defaults.Loaded; reflect.DeepEqual(c, defaults) {
			t.Errorf("%s = %s changed nothing", displayKey(fc.key), fc.value)
		}
	}
	fromFile := mustLoad(t, writeFile(t, "all.toml", tomlFile(pairs)), nil)
	fromFlags := mustLoad(t, "", nil, flags...)
	if len(fromFile.Loaded.Notices) > 0 {
		t.Errorf("notices for a file of known keys: %v", fromFile.Loaded.Notices)
	}
	fromFile.Loaded, fromFlags.Loaded = Loaded{}, Loaded{}
	if !reflect.DeepEqual(fromFile, fromFlags) {
		t.Errorf("file and flags differ:\nfile  %+v\nflags %+v", fromFile, fromFlags)
	}
}

// TestFileKeysAreAnyCables asserts the keys of settings AnyCable has are
// AnyCable's, and that [rpc] proxy_headers works (AnyCable overwrites it
// with --headers' default), as do [metrics] http (what AnyCable prints)
// and keys in another case (AnyCable's reader ignores case).
func TestFileKeysAreAnyCables(t *testing.T) {
	c := mustLoad(t, writeFile(t, "a.toml", "[rpc]\nproxy_headers = [\"cookie\", \"x-from-file\"]\n[metrics]\nhttp = \"/m\"\n[RPC]\nConcurrency = 3\n"), nil)
	if !slices.Equal(c.Node.AppOptions.Headers, []string{"cookie", "x-from-file"}) || c.Metrics.Path != "/m" || c.RPC.Concurrency != 3 {
		t.Errorf("headers %v, metrics %q, concurrency %d", c.Node.AppOptions.Headers, c.Metrics.Path, c.RPC.Concurrency)
	}
	if len(c.Loaded.Notices) > 0 {
		t.Errorf("notices: %v", c.Loaded.Notices)
	}
}

// TestEverySettingHasAFileKey asserts each flag has a file key (or is
// marked as another setting's shorthand) and no two share one.
func TestEverySettingHasAFileKey(t *testing.T) {
	p := newParser()
	Default().bind(p)
	owner := map[string]string{}
	for _, o := range p.options {
		if len(o.keys) == 0 && !o.fileless {
			t.Errorf("--%s has no key in anycable.toml: add .file(\"section.key\") to its p.add line in flags.go (AnyCable's key if AnyCable has the setting)", o.name)
		}
		for _, k := range o.keys {
			if prev, dup := owner[k]; dup {
				t.Errorf("--%s and --%s share the key %s", prev, o.name, k)
			}
			owner[k] = o.name
		}
	}
}

// TestAnyCableListHasNoCablehubSetting asserts the list of AnyCable
// settings Cablehub lacks names none it has: a flag gaining support must
// leave the list.
func TestAnyCableListHasNoCablehubSetting(t *testing.T) {
	p := newParser()
	Default().bind(p)
	flags, keys := map[string]bool{}, map[string]bool{}
	for _, o := range p.options {
		flags[o.name] = true
		for _, k := range o.keys {
			keys[k] = true
		}
	}
	for _, s := range anycableSettings() {
		if flags[s.flag] || keys[s.key] {
			t.Errorf("anycableSettings lists %q / %q, which Cablehub now supports: remove it from server/config/anycable.go", s.flag, s.key)
		}
		if s.flag == "" && s.key == "" || s.why == "" {
			t.Errorf("incomplete entry %+v", s)
		}
	}
}

func TestConfigFileErrorsAreOneLine(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, "bad.toml", "[rpc]\nhost = \n")
	badValue := writeFile(t, "value.toml", "[server]\nport = \"eighty\"\n")
	badArray := writeFile(t, "array.toml", "[rpc]\nhost = [\"a\", \"b\"]\n")
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"--config-path", filepath.Join(dir, "missing.toml")}, []string{"cannot read configuration file", "missing.toml", "no such file"}},
		{[]string{"--config-path", bad}, []string{"cannot parse configuration file", "bad.toml", "line 2"}},
		{[]string{"--config-path", badValue}, []string{`invalid value "eighty" for [server] port in`, "value.toml", "(--port)", "must be an integer"}},
		{[]string{"--config-path", badArray}, []string{"[rpc] host", "(--rpc_host)", "not an array"}},
		{[]string{"--config-path="}, []string{"--config-path needs a file path"}},
	}
	for _, c := range cases {
		_, err := Load(Input{Args: c.args})
		if err == nil {
			t.Errorf("%v: no error", c.args)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) || strings.Contains(err.Error(), "\n") {
				t.Errorf("%v: %q, want one line with %q", c.args, err, w)
			}
		}
	}
}

// TestSearch asserts AnyCable's lookup: the first file of the search list
// that exists, unless --config-path names one or --ignore-config-path.
func TestSearch(t *testing.T) {
	dir := t.TempDir()
	first, second := filepath.Join(dir, "first.toml"), writeFile(t, "second.toml", "[server]\nport = 7002\n")
	other := writeFile(t, "other.toml", "[server]\nport = 7003\n")
	cases := []struct {
		args   []string
		file   string
		port   int
		create bool
	}{
		{nil, second, 7002, false},
		{nil, first, 7001, true},
		{[]string{"--config-path", other}, other, 7003, false},
		{[]string{"--ignore-config-path"}, "", 8080, false},
		{[]string{"--ignore-config-path", "--config-path", other}, "", 8080, false},
	}
	for _, c := range cases {
		if c.create {
			if err := os.WriteFile(first, []byte("[server]\nport = 7001\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		cfg, err := Load(Input{Args: c.args, Search: []string{first, second}})
		if err != nil || cfg.Loaded.File != c.file || cfg.Server.Port != c.port {
			t.Errorf("%v: file %q port %d (%v), want %q %d", c.args, cfg.Loaded.File, cfg.Server.Port, err, c.file, c.port)
		}
	}
	if _, err := Load(Input{Args: []string{"--print-config"}, Search: []string{first}}); !errors.Is(err, ErrPrinted) {
		t.Errorf("--print-config: %v", err)
	}
}
