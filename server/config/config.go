// Package config holds Cablehub's settings and reads them from command-line
// flags and environment variables with AnyCable's names, so an AnyCable
// deployment's flags and ANYCABLE_* variables work unchanged.
package config

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// Config is the effective configuration after flags, environment and
// derivations (secret fallbacks, public mode) have been applied.
type Config struct {
	// Server.
	Host            string
	Port            int
	Paths           []string
	HealthPath      string
	Secret          string
	Public          bool
	Noauth          bool
	ShutdownTimeout time.Duration
	AllowedOrigins  []string

	// WebSocket.
	MaxMessageSize   int64
	PingInterval     time.Duration
	PingPrecision    string
	PongTimeout      time.Duration
	WSMaxPendingSize int64
	WSWriteTimeout   time.Duration

	// Streams and JWT.
	PublicStreams   bool
	StreamsSecret   string
	StreamsWhisper  bool
	StreamsPresence bool
	TurboStreams    bool
	// BenchmarkChannel turns on the built-in BenchmarkChannel, for load tools
	// written against Action Cable (websocket-bench).
	BenchmarkChannel   bool
	TurboStreamsSecret string
	JWTSecret          string
	JWTParam           string
	EnforceJWT         bool

	// Limits per connection.
	MaxSubscriptionsPerConnection int
	MaxPresencePerConnection      int
	MaxPresenceInfoSize           int
	PresenceIDFromIdentifiers     bool

	// API.
	APIPort        int
	APIPath        string
	APISecret      string
	APICORSHeaders bool
	APICORSHosts   []string
	APIMaxBodySize int64
	GRPCPort       int
	// PublishTimeout bounds each API call's work against the broker and
	// pub/sub (publish, presence, disconnect); see api.Service.
	PublishTimeout time.Duration

	// Broker and pub/sub.
	PubSub             string
	RedisURL           string
	NATSServers        string
	EmbedNATS          bool
	ENATSAddr          string
	ENATSCluster       string
	ENATSClusterName   string
	ENATSClusterRoutes []string
	Broker             string
	PresenceTTL        time.Duration
	HistoryLimit       int
	HistoryTTL         time.Duration
	SessionsTTL        time.Duration
	IdempotencyWindow  time.Duration

	// Logging and metrics.
	LogLevel    string
	LogFormat   string
	MetricsHTTP string
	MetricsHost string
	MetricsPort int
	Pprof       bool
}

// ErrHelp is returned by Parse when --help was asked for; the usage has been
// written to the output given to Parse.
var ErrHelp = flag.ErrHelp

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

// Parse reads the configuration from args (without the program name) and
// the environment as seen through getenv. A flag given on the command line
// wins over its environment variables. Errors are one line naming the flag;
// with --help the grouped usage goes to out and ErrHelp is returned.
func Parse(args []string, getenv func(string) string, out io.Writer) (*Config, error) {
	c := &Config{
		Host:                          "localhost",
		Port:                          8080,
		Paths:                         []string{"/cable"},
		HealthPath:                    "/health",
		ShutdownTimeout:               30 * time.Second,
		MaxMessageSize:                65536,
		PingInterval:                  3 * time.Second,
		PingPrecision:                 "s",
		WSMaxPendingSize:              1 << 20,
		WSWriteTimeout:                2 * time.Second,
		StreamsPresence:               true,
		MaxSubscriptionsPerConnection: 1000,
		MaxPresencePerConnection:      100,
		MaxPresenceInfoSize:           4096,
		JWTParam:                      "jid",
		APIPath:                       "/api",
		APIMaxBodySize:                1 << 20,
		PublishTimeout:                2 * time.Second,
		Broker:                        "memory",
		RedisURL:                      "redis://localhost:6379",
		NATSServers:                   DefaultNATSServers,
		ENATSAddr:                     DefaultNATSServers,
		ENATSClusterName:              "anycable-cluster",
		PresenceTTL:                   15 * time.Second,
		HistoryLimit:                  100,
		HistoryTTL:                    300 * time.Second,
		SessionsTTL:                   300 * time.Second,
		IdempotencyWindow:             120 * time.Second,
		LogLevel:                      "info",
		LogFormat:                     "text",
	}
	p := &parser{fs: flag.NewFlagSet("cablehub", flag.ContinueOnError)}
	p.fs.SetOutput(io.Discard)
	p.fs.Usage = func() {}

	const (
		server    = "Server"
		websocket = "WebSocket"
		streams   = "Streams and JWT"
		api       = "API (REST and gRPC)"
		broker    = "Broker"
		logging   = "Logging and metrics"
		limits    = "Limits per connection"
	)
	p.add(server, "host", stringValue{&c.Host}, "host to listen on")
	p.add(server, "port", intValue{&c.Port, 0, 65535}, "port to listen on (0 picks a free one)", "PORT")
	p.add(server, "path", listValue{&c.Paths}, "WebSocket endpoint paths, comma-separated")
	p.add(server, "health-path", stringValue{&c.HealthPath}, "health check path")
	p.add(server, "secret", stringValue{&c.Secret}, "application secret: base of the API, streams and JWT secrets (\"none\" clears it)")
	p.add(server, "public", boolValue{&c.Public}, "public mode: no connection authentication, public streams, open API unless a secret is set")
	p.add(server, "noauth", boolValue{&c.Noauth}, "accept connections without authentication")
	p.add(server, "shutdown_timeout", durationValue{&c.ShutdownTimeout}, "graceful shutdown limit, seconds")
	p.add(server, "allowed_origins", listValue{&c.AllowedOrigins}, "accepted WebSocket Origin hosts, comma-separated, *.example.com allowed (default: any)")

	p.add(websocket, "max_message_size", sizeValue{&c.MaxMessageSize, 1}, "largest client frame, bytes (larger ones close with 1009)")
	p.add(websocket, "ping_interval", durationValue{&c.PingInterval}, "time between pings, seconds (0 disables)")
	p.add(websocket, "ping_timestamp_precision", enumValue{&c.PingPrecision, []string{"s", "ms", "ns"}}, "ping timestamp unit: s, ms, ns")
	p.add(websocket, "pong_timeout", durationValue{&c.PongTimeout}, "disconnect extended-protocol clients silent this long after a ping, seconds (0 disables)")
	p.add(websocket, "ws_max_pending_size", sizeValue{&c.WSMaxPendingSize, 0}, "most bytes queued for one client before it is cut as too slow (0 = unlimited)")
	p.add(websocket, "ws_write_timeout", durationValue{&c.WSWriteTimeout}, "limit for one socket write, seconds")

	p.add(streams, "public_streams", boolValue{&c.PublicStreams}, "allow subscribing to unsigned streams")
	p.add(streams, "streams_secret", stringValue{&c.StreamsSecret}, "secret of signed stream names (default: --secret)")
	p.add(streams, "streams_whisper", boolValue{&c.StreamsWhisper}, "allow whispers on signed streams")
	p.add(streams, "streams_presence", boolValue{&c.StreamsPresence}, "allow presence on $pubsub streams")
	p.add(streams, "turbo_streams", boolValue{&c.TurboStreams}, "enable Turbo::StreamsChannel")
	p.add(streams, "benchmark_channel", boolValue{&c.BenchmarkChannel}, "enable BenchmarkChannel (echo and broadcast actions on stream \"all\") for websocket-bench")
	p.add(streams, "turbo_streams_secret", stringValue{&c.TurboStreamsSecret}, "secret of Turbo signed stream names (default: the streams secret)")
	p.add(streams, "jwt_secret", stringValue{&c.JWTSecret}, "secret of JWT identification tokens (default: --secret)")
	p.add(streams, "jwt_param", stringValue{&c.JWTParam}, "query parameter carrying the JWT (header X-<param>)")
	p.add(streams, "enforce_jwt", boolValue{&c.EnforceJWT}, "refuse connections without a JWT")

	p.add(limits, "max_subscriptions_per_connection", intValue{&c.MaxSubscriptionsPerConnection, 1, 1 << 20}, "most subscriptions one connection may hold; more are rejected")
	p.add(limits, "max_presence_per_connection", intValue{&c.MaxPresencePerConnection, 1, 1 << 20}, "most streams one connection may be present on at once; more joins are refused")
	p.add(limits, "max_presence_info_size", intValue{&c.MaxPresenceInfoSize, 1, 1 << 20}, "largest presence info a join may carry, bytes; larger joins are refused")
	p.add(limits, "presence_id_from_identifiers", boolValue{&c.PresenceIDFromIdentifiers}, "use the connection identifiers (JWT ext claim) as the presence id instead of the id the client sends; connections without identifiers cannot join")

	p.add(api, "api_port", intValue{&c.APIPort, 0, 65535}, "dedicated REST API port (0 = the main port)")
	p.add(api, "api_path", stringValue{&c.APIPath}, "base path of the REST API")
	p.add(api, "api_secret", stringValue{&c.APISecret}, "API bearer token (default: derived from --secret)")
	p.add(api, "api_cors_headers", boolValue{&c.APICORSHeaders}, "add CORS headers to API responses and answer preflight requests")
	p.add(api, "api_cors_hosts", listValue{&c.APICORSHosts}, "allowed CORS origin hosts, comma-separated, *.example.com allowed (default: any)")
	p.add(api, "api_max_body_size", sizeValue{&c.APIMaxBodySize, 1}, "largest accepted API request body, bytes")
	// 2 s: a healthy Redis or NATS answers in milliseconds even under load,
	// so this only cuts calls to a dependency that is down or stuck, and a
	// caller (often a web request) learns it in time to retry or give up
	// instead of piling up behind it.
	p.add(api, "publish_timeout", durationValue{&c.PublishTimeout}, "limit for one publish, presence or disconnect call's work against the broker and pub/sub, seconds or e.g. 1500ms (then 501 / UNAVAILABLE)")
	p.add(api, "grpc_port", intValue{&c.GRPCPort, 0, 65535}, "dedicated gRPC API port (0 = gRPC on the API's own listener)")

	// "none" keeps no presence or history, like AnyCable's legacy broker.
	p.add(broker, "broker", enumValue{&c.Broker, []string{"memory", "redis", "nats", "none"}}, "broker for history, presence and sessions: memory, redis, nats (JetStream, no presence), none")
	p.add(broker, "pubsub", enumValue{&c.PubSub, []string{"", "none", "redis", "nats"}}, "pub/sub between nodes: redis, nats (default: none, or redis with --broker=redis, nats with --broker=nats)")
	p.add(broker, "redis_url", stringValue{&c.RedisURL}, "Redis URL", "REDIS_URL")
	p.add(broker, "nats_servers", stringValue{&c.NATSServers}, "NATS server URLs, comma-separated")
	p.add(broker, "embed_nats", boolValue{&c.EmbedNATS}, "run a NATS server inside this process (and use it unless --nats_servers says otherwise)")
	p.add(broker, "enats_addr", stringValue{&c.ENATSAddr}, "embedded NATS client address")
	p.add(broker, "enats_cluster", stringValue{&c.ENATSCluster}, "embedded NATS cluster address, e.g. nats://127.0.0.1:6222 (default: no cluster)")
	p.add(broker, "enats_cluster_name", stringValue{&c.ENATSClusterName}, "embedded NATS cluster name")
	p.add(broker, "enats_cluster_routes", listValue{&c.ENATSClusterRoutes}, "other embedded NATS servers' cluster URLs, comma-separated")
	p.add(broker, "presence_ttl", durationValue{&c.PresenceTTL}, "how long presence outlives a client's last connection, seconds")
	p.add(broker, "history_limit", intValue{&c.HistoryLimit, 1, 1 << 20}, "publications kept per stream for history")
	p.add(broker, "history_ttl", durationValue{&c.HistoryTTL}, "how long publications stay in history, seconds")
	p.add(broker, "sessions_ttl", durationValue{&c.SessionsTTL}, "how long a disconnected extended-protocol session can be restored, seconds (0 disables)")
	p.add(broker, "idempotency_window", durationValue{&c.IdempotencyWindow}, "how long a publication's idempotency key makes a retry with the same stream and key a no-op, seconds (0 disables; cluster-wide with --broker=redis)")

	p.add(logging, "log_level", enumValue{&c.LogLevel, []string{"debug", "info", "warn", "error"}}, "log level: debug, info, warn, error")
	p.add(logging, "log_format", enumValue{&c.LogFormat, []string{"text", "json"}}, "log format: text, json")
	p.add(logging, "metrics_http", stringValue{&c.MetricsHTTP}, "serve Prometheus metrics at this path, e.g. /metrics (default: off)")
	p.add(logging, "metrics_host", stringValue{&c.MetricsHost}, "metrics host (default: --host)")
	p.add(logging, "metrics_port", intValue{&c.MetricsPort, 0, 65535}, "metrics port (default: the main port)")
	p.add(logging, "pprof", boolValue{&c.Pprof}, "serve Go profiles at /debug/pprof/ on the main port (for profiling; keep off in production)")

	if err := p.parse(args, getenv, out); err != nil {
		return nil, err
	}
	if err := c.finish(); err != nil {
		return nil, err
	}
	return c, nil
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

// finish applies AnyCable's derivations and checks values that depend on
// each other.
func (c *Config) finish() error {
	for _, secret := range []*string{&c.Secret, &c.StreamsSecret, &c.JWTSecret, &c.TurboStreamsSecret} {
		if *secret == "none" {
			*secret = ""
		}
	}
	if c.StreamsSecret == "" {
		c.StreamsSecret = c.Secret
	}
	if c.TurboStreamsSecret == "" {
		c.TurboStreamsSecret = c.StreamsSecret
	}
	if c.JWTSecret == "" {
		c.JWTSecret = c.Secret
	}
	if c.PubSub == "none" {
		c.PubSub = ""
	}
	if c.PubSub == "" && c.Broker == "redis" {
		c.PubSub = "redis"
	}
	if c.PubSub == "" && c.Broker == "nats" {
		c.PubSub = "nats"
	}
	if c.Broker == "nats" && c.PubSub != "nats" {
		return fmt.Errorf("invalid value %q for --pubsub: --broker nats delivers through NATS and needs --pubsub nats", c.PubSub)
	}
	if c.EmbedNATS && c.NATSServers == DefaultNATSServers {
		c.NATSServers = c.ENATSAddr
	}
	if c.JWTParam == "" {
		return fmt.Errorf("invalid value \"\" for --jwt_param: must not be empty")
	}
	if c.MetricsHTTP != "" && !strings.HasPrefix(c.MetricsHTTP, "/") {
		return fmt.Errorf("invalid value %q for --metrics_http: must start with /", c.MetricsHTTP)
	}
	if c.Public {
		c.Noauth = true
		c.PublicStreams = true
	}
	for _, p := range c.Paths {
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("invalid value %q for --path: each path must start with /", p)
		}
	}
	if len(c.Paths) == 0 {
		return fmt.Errorf("invalid value \"\" for --path: at least one path is needed")
	}
	if !strings.HasPrefix(c.HealthPath, "/") {
		return fmt.Errorf("invalid value %q for --health-path: must start with /", c.HealthPath)
	}
	c.APIPath = strings.TrimRight(c.APIPath, "/")
	if c.APIPath != "" && !strings.HasPrefix(c.APIPath, "/") {
		return fmt.Errorf("invalid value %q for --api_path: must start with /", c.APIPath)
	}
	if c.APIPath == "" {
		return fmt.Errorf("invalid value \"/\" for --api_path: the API needs its own path, such as /api")
	}
	if c.APIPort != 0 && c.APIPort == c.Port {
		return fmt.Errorf("invalid value %d for --api_port: must differ from --port (0 shares the main port)", c.APIPort)
	}
	if c.PublishTimeout <= 0 {
		return fmt.Errorf("invalid value \"0\" for --publish_timeout: must be positive, such as 2 or 1500ms")
	}
	if c.GRPCPort != 0 && (c.GRPCPort == c.Port || c.GRPCPort == c.APIPort) {
		return fmt.Errorf("invalid value %d for --grpc_port: must differ from --port and --api_port", c.GRPCPort)
	}
	return nil
}

// DefaultNATSServers is nats.go's default URL, AnyCable's default too.
const DefaultNATSServers = "nats://127.0.0.1:4222"

// EffectiveAPISecret is the bearer token the API requires: --api_secret, or
// else hex(HMAC-SHA256(secret, "api-cable")) when --secret is set, or "" for
// none.
func (c *Config) EffectiveAPISecret() string {
	if c.APISecret != "" {
		return c.APISecret
	}
	if c.Secret != "" {
		return DeriveSecret(c.Secret, "api-cable")
	}
	return ""
}

// APIEnabled reports whether the REST API (and gRPC on the shared listener)
// is served. It fails closed: only a secret in effect, a dedicated
// --api_port (protection by network placement) or --public turn it on.
func (c *Config) APIEnabled() bool {
	return c.EffectiveAPISecret() != "" || c.APIPort != 0 || c.Public
}

// DeriveSecret is AnyCable's secret derivation: the lower-case hex HMAC-SHA256
// of phrase keyed with secret.
func DeriveSecret(secret, phrase string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(phrase))
	return hex.EncodeToString(m.Sum(nil))
}
