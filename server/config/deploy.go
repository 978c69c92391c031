package config

import (
	"crypto/rand"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cablehub/cablehub/server/redact"
)

// This file holds the settings deployments set around the server itself:
// the node's id, Redis Sentinel and TLS, StatsD and the metrics' tags and
// the AnyCable features Cablehub accepts but does not have yet.

// Redis is how Cablehub reaches --redis_url, as in AnyCable: through
// Sentinel when Sentinels is set (the URL's host is then the master's
// name), as a Redis Cluster when the URL lists several comma-separated
// nodes, over TLS with a rediss:// URL.
type Redis struct {
	// Sentinels is --redis_sentinels: comma-separated host:port addresses,
	// each may be a redis:// URL carrying the Sentinels' password.
	Sentinels string
	// SentinelDiscoveryInterval is accepted and unused: go-redis follows
	// Sentinel's switch-master notifications instead of polling.
	SentinelDiscoveryInterval time.Duration
	// KeepaliveInterval is the TCP keepalive period of Redis connections.
	KeepaliveInterval time.Duration
	// TLSVerify checks the server's certificate with rediss:// URLs. Off by
	// default, as in AnyCable (managed Redis such as Heroku's serves
	// self-signed certificates); the startup log warns while it is off.
	TLSVerify bool
	// TLSCACertPath is a PEM file of the CA that signed the server's
	// certificate; setting it turns TLSVerify on.
	TLSCACertPath     string
	TLSClientCertPath string
	TLSClientKeyPath  string
	// DisableCache is accepted and unused: Cablehub keeps no client-side
	// cache.
	DisableCache bool
	// ShardedPubSub carries streams on sharded channels (SSUBSCRIBE,
	// SPUBLISH) when Redis is a Redis Cluster, so a publication crosses
	// only its stream's shard. Off, they go on classic channels, which
	// every node of the cluster carries, as AnyCable's do: for clusters
	// that mix AnyCable and Cablehub nodes.
	ShardedPubSub bool
}

func defaultRedis() Redis {
	return Redis{SentinelDiscoveryInterval: 30 * time.Second, KeepaliveInterval: 30 * time.Second, ShardedPubSub: true}
}

// Statsd is where metrics are sent over UDP, and how their names and tags
// are written. Names are Prefix followed by the metric's name without its
// Prometheus namespace (anycable_go.clients_num), as in AnyCable.
type Statsd struct {
	// Host is host:port; empty sends nothing.
	Host   string
	Prefix string
	// TagsFormat is "datadog" (name:1|c|#k:v), "influxdb" (name,k=v:1|c)
	// or "graphite" (name;k=v:1|c).
	TagsFormat string
}

// DefaultRotateInterval is AnyCable's --metrics_rotate_interval.
const DefaultRotateInterval = 15 * time.Second

func defaultMetrics() Metrics {
	return Metrics{
		RotateInterval:       DefaultRotateInterval,
		Statsd:               Statsd{Prefix: "anycable_go.", TagsFormat: "datadog"},
		StatsRefreshInterval: 5 * time.Second,
	}
}

// SSE is the Server-Sent Events endpoint.
type SSE struct {
	// Enabled (--sse) serves it at Path (--sse_path) on the main port.
	Enabled bool
	Path    string
}

// DS is the Durable Streams read API.
type DS struct {
	// Enabled (--ds) serves it under Path (--ds_path) on the main port:
	// Path + "/" + the stream's name.
	Enabled bool
	Path    string
	// SkipAuth (--ds_skip_auth) serves readers without authenticating
	// them; a stream still needs a signed name or public streams.
	SkipAuth bool
	// PollInterval (--ds_poll_interval) is how long a long-poll waits;
	// SSETTL (--ds_sse_ttl) how long an SSE answer lasts (0: 60 s).
	PollInterval time.Duration
	SSETTL       time.Duration
}

// Pusher is the Pusher Channels mode: on when both AppID and AppKey are
// set.
type Pusher struct {
	// AppID (--pusher_app_id) names the HTTP API's paths, /apps/<id>/*;
	// AppKey (--pusher_app_key) the WebSocket path, /app/<key>.
	AppID  string
	AppKey string
	// Secret (--pusher_secret, falling back to --secret) signs channel
	// authorizations, sign-ins and API requests.
	Secret string
	// APIPort (--pusher_api_port) serves the HTTP API on a listener of its
	// own; 0 serves it on the main port.
	APIPort int
	// WebhookURLs (--pusher_webhook_url, comma-separated) receive the
	// app's webhooks; each is an absolute http:// or https:// URL, and
	// they need Pusher mode.
	WebhookURLs []string
}

// Enabled reports whether Pusher mode is on.
func (p *Pusher) Enabled() bool { return p.AppID != "" && p.AppKey != "" }

// check refuses a Pusher mode that is half set up or has no secret: an
// empty secret would verify nothing.
func (p *Pusher) check() error {
	switch {
	case p.AppID == "" && p.AppKey == "" && len(p.WebhookURLs) > 0:
		return fmt.Errorf("--pusher_webhook_url needs Pusher mode: set --pusher_app_id and --pusher_app_key")
	case p.AppID == "" && p.AppKey == "":
		return nil
	case p.AppID == "":
		return fmt.Errorf("--pusher_app_id is required with --pusher_app_key")
	case p.AppKey == "":
		return fmt.Errorf("--pusher_app_key is required with --pusher_app_id")
	case p.Secret == "":
		return fmt.Errorf("--pusher_secret (or --secret) is required in Pusher mode: without it no authorization or API request could be verified")
	case strings.ContainsAny(p.AppKey, "/?#") || strings.ContainsAny(p.AppID, "/?#"):
		return fmt.Errorf("--pusher_app_id and --pusher_app_key must not contain /, ? or #")
	}
	for _, raw := range p.WebhookURLs {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
			return fmt.Errorf("--pusher_webhook_url: %q is not an absolute http:// or https:// URL with a host", redact.Credentials(raw))
		}
	}
	return nil
}

// TLS is where the server's certificate and key are (--ssl_cert,
// --ssl_key). TLS is on when both are set; one without the other is a
// startup error (AnyCable would silently serve plain HTTP).
type TLS struct {
	CertPath string
	KeyPath  string
}

// Enabled reports whether the listeners serve TLS.
func (t TLS) Enabled() bool { return t.CertPath != "" && t.KeyPath != "" }

// finishDeploy applies --debug, picks the node's id and checks the Redis,
// metrics and TLS settings.
func (c *Config) finishDeploy() error {
	if c.Log.Debug {
		c.Log.Level = "debug"
	}
	c.Server.NodeID = strings.TrimSpace(c.Server.NodeID)
	if c.Server.NodeID == "" {
		c.Server.NodeID = newNodeID()
	}
	if err := c.Pusher.check(); err != nil {
		return err
	}
	if c.SSE.Enabled && !strings.HasPrefix(c.SSE.Path, "/") {
		return fmt.Errorf("--sse_path %q must start with /", c.SSE.Path)
	}
	if c.DS.Enabled && !strings.HasPrefix(c.DS.Path, "/") {
		return fmt.Errorf("--ds_path %q must start with /", c.DS.Path)
	}
	// A prefix: "/ds/" is "/ds"; "/" would take every path.
	c.DS.Path = strings.TrimRight(c.DS.Path, "/")
	if c.DS.Enabled && c.DS.Path == "" {
		return fmt.Errorf("--ds_path must name a prefix such as /ds, not /")
	}
	if c.DS.Enabled && c.Cluster.Broker == "none" {
		return fmt.Errorf("--ds needs a broker that keeps history (memory, redis or nats), not --broker none")
	}
	if c.DS.PollInterval <= 0 {
		return fmt.Errorf("--ds_poll_interval must be positive")
	}
	if c.DS.SSETTL <= 0 {
		c.DS.SSETTL = 60 * time.Second
	}
	if (c.TLS.CertPath == "") != (c.TLS.KeyPath == "") {
		return fmt.Errorf("--ssl_cert and --ssl_key go together: set both to serve TLS, or neither")
	}
	r := &c.Cluster.Redis
	if (r.TLSClientCertPath == "") != (r.TLSClientKeyPath == "") {
		return fmt.Errorf("--redis_tls_client_cert_path and --redis_tls_client_key_path go together: set both for mutual TLS, or neither")
	}
	if r.TLSCACertPath != "" {
		r.TLSVerify = true
	}
	if r.Sentinels != "" && strings.Contains(c.Cluster.RedisURL, ",") {
		return fmt.Errorf("invalid value %q for --redis_url: with --redis_sentinels it names the master, e.g. redis://mymaster (one URL, no list)", c.Cluster.RedisURL)
	}
	if c.Metrics.RotateInterval == 0 {
		c.Metrics.RotateInterval = DefaultRotateInterval // as AnyCable reads 0
	}
	return nil
}

// nodeIDAlphabet is nanoid's, which AnyCable's node ids use.
const nodeIDAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"

// newNodeID returns a random 6-character id, like AnyCable's default
// node_id.
func newNodeID() string {
	var b [6]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = nodeIDAlphabet[b[i]&63]
	}
	return string(b[:])
}

// tagsValue is --metrics_tags: "key:value,key:value". AnyCable crashes on
// an item without a colon; here it is an error naming the item.
type tagsValue struct{ p *map[string]string }

func (v tagsValue) String() string {
	if v.p == nil || len(*v.p) == 0 {
		return ""
	}
	items := make([]string, 0, len(*v.p))
	for k, val := range *v.p {
		items = append(items, k+":"+val)
	}
	sort.Strings(items)
	return strings.Join(items, ",")
}

func (v tagsValue) Set(s string) error {
	tags := map[string]string{}
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		k, val, ok := strings.Cut(item, ":")
		k, val = strings.TrimSpace(k), strings.TrimSpace(val)
		if !ok || k == "" || val == "" {
			return fmt.Errorf("each tag must be key:value, got %q", item)
		}
		tags[k] = val
	}
	if len(tags) == 0 {
		tags = nil // no tags, as by default
	}
	*v.p = tags
	return nil
}

// The presets AnyCable knows; "none" turns detection off.
var presetNames = []string{"fly", "heroku", "broker", "none"}

// presetsValue is --presets: a comma-separated list of presetNames. An
// unknown name is an error (AnyCable ignores it).
type presetsValue struct{ p *[]string }

func (v presetsValue) String() string {
	if v.p == nil {
		return ""
	}
	return strings.Join(*v.p, ",")
}

func (v presetsValue) Set(s string) error {
	out := []string{}
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		if !slices.Contains(presetNames, item) {
			return fmt.Errorf("each preset must be one of %s", strings.Join(presetNames, ", "))
		}
		out = append(out, item)
	}
	*v.p = out
	return nil
}

// setFile reads [metrics] tags as AnyCable writes it, a TOML table
// (tags = { env = "prod" }), or as the flag's key:value list.
func (v tagsValue) setFile(raw any) error {
	switch t := raw.(type) {
	case string:
		return v.Set(t)
	case map[string]any:
		tags := make(map[string]string, len(t))
		for k, val := range t {
			s, ok := val.(string)
			if !ok || k == "" || s == "" {
				return fmt.Errorf("each tag must be a non-empty string, got %s = %v", k, val)
			}
			tags[k] = s
		}
		*v.p = tags
		return nil
	}
	return fmt.Errorf("must be a table of strings, got %T", raw)
}

// fileForm prints the tags as the flag's key:value list, which setFile
// reads back.
func (v tagsValue) fileForm() any { return v.String() }
