package config

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestDeployDefaults(t *testing.T) {
	c, err := parse(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{6}$`).MatchString(c.Server.NodeID) {
		t.Errorf("node id %q: want a random 6-character id", c.Server.NodeID)
	}
	if other, _ := parse(t, nil); other.Server.NodeID == c.Server.NodeID {
		t.Errorf("two processes got the same node id %q", c.Server.NodeID)
	}
	m := c.Metrics
	if m.RotateInterval != 15*time.Second || m.Statsd.Prefix != "anycable_go." || m.Statsd.TagsFormat != "datadog" || m.Statsd.Host != "" || m.Tags != nil {
		t.Errorf("metrics defaults: %+v", m)
	}
	if c.Node.MaxConns != 0 || c.Server.ShutdownDelay != 0 || c.Log.Level != "info" || len(c.Server.Presets) != 0 {
		t.Errorf("server defaults: %+v, %+v", c.Server, c.Log)
	}
	r := c.Cluster.Redis
	if r.TLSVerify || r.KeepaliveInterval != 30*time.Second || r.Sentinels != "" {
		t.Errorf("redis defaults: %+v", r)
	}
	if c.SSE.Enabled || c.SSE.Path != "/events" || c.WS.Compression {
		t.Errorf("transport defaults: %+v %v", c.SSE, c.WS.Compression)
	}
	if c.DS != (DS{Path: "/ds", PollInterval: 10 * time.Second, SSETTL: 60 * time.Second}) {
		t.Errorf("ds defaults: %+v", c.DS)
	}
}

// Every deployment flag reads AnyCable's variable, and a flag wins.
func TestDeployEnvironment(t *testing.T) {
	env := map[string]string{
		"ANYCABLE_MAX_CONN": "100", "ANYCABLE_SHUTDOWN_DELAY": "5", "ANYCABLE_NODE_ID": "web-1", "ANYCABLE_DEBUG": "true",
		"ANYCABLE_REDIS_SENTINELS": "s1:26379,s2:26379", "ANYCABLE_REDIS_TLS_VERIFY": "true",
		"ANYCABLE_STATSD_HOST": "statsd:8125", "ANYCABLE_STATSD_PREFIX": "app.", "ANYCABLE_STATSD_TAGS_FORMAT": "influxdb",
		"ANYCABLE_METRICS_TAGS": "env:prod, region:eu", "ANYCABLE_METRICS_ROTATE_INTERVAL": "30",
		"ANYCABLE_SSE": "true", "ANYCABLE_SSE_PATH": "/sse", "ANYCABLE_ENABLE_WS_COMPRESSION": "true",
		"ANYCABLE_DS": "true", "ANYCABLE_DS_PATH": "/streams", "ANYCABLE_DS_SKIP_AUTH": "true",
		"ANYCABLE_DS_POLL_INTERVAL": "3", "ANYCABLE_DS_SSE_TTL": "6",
	}
	c, err := parse(t, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Node.MaxConns != 100 || c.Server.ShutdownDelay != 5*time.Second || c.Server.NodeID != "web-1" || !c.Log.Debug || c.Log.Level != "debug" {
		t.Errorf("server: %+v %+v max-conn %d", c.Server, c.Log, c.Node.MaxConns)
	}
	if c.Cluster.Redis.Sentinels != "s1:26379,s2:26379" || !c.Cluster.Redis.TLSVerify {
		t.Errorf("redis: %+v", c.Cluster.Redis)
	}
	m := c.Metrics
	if m.Statsd != (Statsd{Host: "statsd:8125", Prefix: "app.", TagsFormat: "influxdb"}) || m.RotateInterval != 30*time.Second ||
		!reflect.DeepEqual(m.Tags, map[string]string{"env": "prod", "region": "eu"}) {
		t.Errorf("metrics: %+v", m)
	}
	if !c.SSE.Enabled || c.SSE.Path != "/sse" || !c.WS.Compression {
		t.Errorf("transports: %+v %v", c.SSE, c.WS.Compression)
	}
	if c.DS != (DS{Enabled: true, Path: "/streams", SkipAuth: true, PollInterval: 3 * time.Second, SSETTL: 6 * time.Second}) {
		t.Errorf("ds: %+v", c.DS)
	}
	if c, _ := parse(t, nil, "--ds_path", "/streams/"); c.DS.Path != "/streams" {
		t.Errorf("--ds_path keeps its trailing slash: %q", c.DS.Path)
	}
	c, _ = parse(t, env, "--max-conn", "7", "--node_id", "web-2")
	if c.Node.MaxConns != 7 || c.Server.NodeID != "web-2" {
		t.Errorf("flags must win: %d %q", c.Node.MaxConns, c.Server.NodeID)
	}
}

func TestDeployInvalidValues(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--metrics_tags", "env"}, `invalid value "env" for --metrics_tags: each tag must be key:value, got "env"`},
		{[]string{"--statsd_tags_format", "json"}, `invalid value "json" for --statsd_tags_format: must be one of datadog, influxdb, graphite`},
		{[]string{"--max-conn", "-1"}, `invalid value "-1" for --max-conn`},
		{[]string{"--presets", "aws"}, `invalid value "aws" for --presets: each preset must be one of fly, heroku, broker, none`},
		{[]string{"--presets", "fly"}, "--presets fly needs FLY_REGION and FLY_APP_NAME"},
		{[]string{"--ssl_cert", "/c.pem"}, "--ssl_cert and --ssl_key go together"},
		{[]string{"--ssl_key", "/k.pem"}, "--ssl_cert and --ssl_key go together"},
		{[]string{"--ds", "--broker", "none"}, "--ds needs a broker that keeps history"},
		{[]string{"--ds", "--ds_path", "ds"}, `--ds_path "ds" must start with /`},
		{[]string{"--ds", "--ds_path", "/"}, "--ds_path must name a prefix such as /ds, not /"},
		{[]string{"--redis_tls_client_cert_path", "/c.pem"}, "--redis_tls_client_cert_path and --redis_tls_client_key_path go together"},
		{[]string{"--redis_sentinels", "s:26379", "--redis_url", "redis://a,redis://b"}, "with --redis_sentinels it names the master"},
		{[]string{"--pusher_webhook_url", "https://h.example/hook"}, "--pusher_webhook_url needs Pusher mode: set --pusher_app_id and --pusher_app_key"},
		{append(pusherMode, "--pusher_webhook_url", "https://h.example/a,ftp://h.example/b"), `--pusher_webhook_url: "ftp://h.example/b" is not an absolute http:// or https:// URL with a host`},
		{append(pusherMode, "--pusher_webhook_url", "h.example/hook"), `--pusher_webhook_url: "h.example/hook" is not an absolute`},
		{append(pusherMode, "--pusher_webhook_url", "https:///hook"), `--pusher_webhook_url: "https:///hook" is not an absolute`},
		{append(pusherMode, "--pusher_webhook_url", "http://u:hunter2@/x"), `--pusher_webhook_url: "http://u:xxxxx@/x" is not an absolute`},
	}
	for _, c := range cases {
		_, err := parse(t, nil, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want %q", c.args, err, c.want)
		}
	}
}

// pusherMode are the flags that turn Pusher mode on.
var pusherMode = []string{"--pusher_app_id", "a", "--pusher_app_key", "k", "--pusher_secret", "s"}

func TestPusherWebhookURLs(t *testing.T) {
	c, err := parse(t, map[string]string{"ANYCABLE_PUSHER_WEBHOOK_URL": "https://a.example/hook, http://b.example/x?t=1"}, pusherMode...)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"https://a.example/hook", "http://b.example/x?t=1"}; !reflect.DeepEqual(c.Pusher.WebhookURLs, want) {
		t.Errorf("webhook URLs %q, want %q", c.Pusher.WebhookURLs, want)
	}
}

func TestRedisCAImpliesVerify(t *testing.T) {
	c, err := parse(t, nil, "--redis_tls_ca_cert_path", "/etc/ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Cluster.Redis.TLSVerify {
		t.Error("a CA path must turn verification on")
	}
}

func TestPresets(t *testing.T) {
	heroku := map[string]string{"HEROKU_APP_ID": "a1", "HEROKU_DYNO_ID": "d1", "PORT": "5000"}
	c, err := parse(t, heroku)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Server.Presets, []string{"heroku"}) || c.Server.Host != "0.0.0.0" || c.Server.Port != 5000 {
		t.Errorf("heroku detected: presets %v host %s port %d", c.Server.Presets, c.Server.Host, c.Server.Port)
	}
	if c, _ = parse(t, heroku, "--host", "10.0.0.1"); c.Server.Host != "10.0.0.1" {
		t.Errorf("a preset must not override a flag: %s", c.Server.Host)
	}
	if c, _ = parse(t, heroku, "--presets", "none"); c.Server.Host != "localhost" || len(c.Server.Presets) != 0 {
		t.Errorf("--presets none: %s %v", c.Server.Host, c.Server.Presets)
	}

	fly := map[string]string{"FLY_APP_NAME": "chat", "FLY_ALLOC_ID": "x1", "FLY_REGION": "ams", "ANYCABLE_FLY_RPC_APP_NAME": "web"}
	c, err = parse(t, fly)
	if err != nil {
		t.Fatal(err)
	}
	e := c.Cluster.Embedded
	if !reflect.DeepEqual(c.Server.Presets, []string{"fly"}) || c.Server.Host != "0.0.0.0" || !c.Cluster.EmbedNATS || c.Cluster.PubSub != "nats" ||
		c.Cluster.NATSServers != "nats://0.0.0.0:4222" || e.ClusterAddr != "nats://0.0.0.0:5222" || e.ClusterName != "chat-ams-cluster" ||
		!reflect.DeepEqual(e.Routes, []string{"nats://ams.chat.internal:5222"}) || c.RPC.Host != "dns:///ams.web.internal:50051" {
		t.Errorf("fly: %+v %+v rpc %s", c.Cluster, c.Server, c.RPC.Host)
	}
	// With Redis configured, Fly nodes use Redis pub/sub instead.
	c, _ = parse(t, fly, "--redis_url", "redis://redis.internal:6379")
	if c.Cluster.PubSub != "redis" || c.Cluster.EmbedNATS {
		t.Errorf("fly with redis: %+v", c.Cluster)
	}

	c, _ = parse(t, nil, "--presets", "broker", "--embed_nats")
	if c.Cluster.Broker != "nats" || c.Cluster.PubSub != "nats" {
		t.Errorf("broker preset with embedded NATS: %+v", c.Cluster)
	}
	c, _ = parse(t, nil, "--presets", "broker", "--redis_url", "redis://r:6379")
	if c.Cluster.Broker != "memory" || c.Cluster.PubSub != "redis" {
		t.Errorf("broker preset with Redis: %+v", c.Cluster)
	}
}
