// Package config reads Cablehub's settings from command-line flags,
// environment variables and an anycable.toml file with AnyCable's names,
// so an AnyCable deployment's flags, ANYCABLE_* variables and
// configuration file work unchanged, and says at startup what in them it
// does not use.
//
// Each subsystem owns its options struct and their defaults (node.Options
// and node.DefaultOptions, ws.Options, broker.MemoryOptions, ...); Config
// holds those structs and binds the flags straight onto their fields. The
// groups declared here are the process's own settings: listeners, secrets,
// the choice of broker and pub/sub, logging.
package config

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cablehub/cablehub/gateway"
	"github.com/cablehub/cablehub/server/api"
	"github.com/cablehub/cablehub/server/broadcast"
	"github.com/cablehub/cablehub/server/broker"
	"github.com/cablehub/cablehub/server/identity"
	"github.com/cablehub/cablehub/server/node"
	"github.com/cablehub/cablehub/server/pubsub"
	"github.com/cablehub/cablehub/server/redact"
	"github.com/cablehub/cablehub/server/rpc"
	"github.com/cablehub/cablehub/server/streams"
	"github.com/cablehub/cablehub/server/ws"
)

// Config is the effective configuration after flags, environment and
// derivations (secret fallbacks, public mode) have been applied. The
// subsystems' structs leave unset what the process wires at run time
// (ws.Options.Header, gateway.Options.Conn, node.Options.CatchUp...).
type Config struct {
	Server  Server
	API     API
	Cluster Cluster
	Metrics Metrics
	Log     Log
	// RPC is the application back end (--rpc_host, --norpc, ...); how the
	// node uses it (--headers, --proxy-cookies, --disconnect_*) is
	// Node.AppOptions.
	RPC RPC
	// TLS: --ssl_cert, --ssl_key.
	TLS TLS
	// SSE: --sse, --sse_path.
	SSE SSE
	// Pusher: --pusher_app_id, --pusher_app_key, --pusher_secret,
	// --pusher_api_port, --pusher_webhook_url.
	Pusher Pusher
	// DS: --ds, --ds_path, --ds_skip_auth, --ds_poll_interval, --ds_sse_ttl.
	DS DS

	// WS: --allowed_origins, --max_message_size, --ws_max_pending_size,
	// --ws_write_timeout, --ws_io_uring.
	WS ws.Options
	// Node: pings, per-connection limits, --idempotency_window, the RPC
	// back end's AppOptions; SessionsTTL is --sessions_ttl, shared with
	// Broker.
	Node node.Options
	// Streams: --public_streams, the streams secrets, --streams_whisper,
	// --streams_presence, --turbo_streams, --benchmark_channel.
	Streams streams.Config
	// JWT: --jwt_secret, --jwt_param, --enforce_jwt.
	JWT identity.JWTOptions
	// Gateway: --api_path, --api_cors_headers, --api_cors_hosts,
	// --api_max_body_size (which bounds gRPC messages too).
	Gateway gateway.Options
	// Broker: --history_limit, --history_ttl, --sessions_ttl,
	// --presence_ttl, --presence_max_members.
	Broker broker.MemoryOptions
	// Broadcast: --broadcast_adapter and the adapters' settings.
	Broadcast Broadcast
	// Admin: --admin, --admin_path, --admin_password.
	Admin Admin

	// Loaded is where the settings came from and what was ignored.
	Loaded Loaded
}

// Server is where the process listens and how it authenticates.
type Server struct {
	Host       string
	Port       int
	Paths      []string
	HealthPath string
	// Secret is --secret, the base of the API, streams and JWT secrets.
	Secret string
	// Public is --public: no connection authentication, public streams, an
	// open API unless a secret is set (finish applies the first two).
	Public          bool
	Noauth          bool
	ShutdownTimeout time.Duration
	// Pprof serves Go's profiles at /debug/pprof/ on the main port.
	Pprof bool
	// ShutdownDelay is --shutdown_delay; see deploy.go for this group.
	ShutdownDelay time.Duration
	// MemoryTrim is --memory_trim: give the heap's free memory back when
	// the server goes quiet after a burst of allocation (see memtrim).
	MemoryTrim bool
	NodeID     string
	// Presets is --presets as given; nil detects them (see applyPresets).
	// After Parse it lists the presets applied.
	Presets []string
}

// API is where the REST and gRPC APIs listen and how they are guarded; the
// REST gateway's own settings are Config.Gateway.
type API struct {
	// Port is --api_port; 0 serves the APIs on the main port.
	Port int
	// Secret is --api_secret; see Config.EffectiveAPISecret.
	Secret string
	// GRPCPort is --grpc_port; 0 serves gRPC on the REST API's listener.
	GRPCPort int
	// PublishTimeout bounds each API call's work against the broker and
	// pub/sub (publish, presence, disconnect); see api.Service.
	PublishTimeout time.Duration
}

// Admin is the admin console.
type Admin struct {
	// Enabled is --admin: the console is served when it is on and some
	// credential can sign in (see AdminServed).
	Enabled bool
	// Path is --admin_path, without a trailing slash.
	Path string
	// Password is --admin_password; the API token signs in too.
	Password string
}

// AdminServed reports whether the admin console is served: --admin is on,
// the REST API it calls is served, and something can sign in (a password
// or an API token). It fails closed: without a credential no session can
// be made, so the console is not served at all (startupWarnings says
// why).
func (c *Config) AdminServed() bool {
	return c.Admin.Enabled && c.APIEnabled() && (c.Admin.Password != "" || c.EffectiveAPISecret() != "")
}

// Cluster chooses the broker and the pub/sub between nodes, and how to
// reach Redis and NATS.
type Cluster struct {
	// Broker is "memory", "redis", "nats" or "none".
	Broker string
	// PubSub is "", "redis" or "nats" (finish derives it from Broker when
	// unset).
	PubSub      string
	RedisURL    string
	NATSServers string
	EmbedNATS   bool
	// Embedded configures the embedded NATS server (--enats_*).
	Embedded pubsub.EmbeddedOptions
	// Redis is how to reach RedisURL: Sentinel, TLS (see deploy.go).
	Redis Redis
}

// Metrics is where Prometheus metrics are served: at Path (off when
// empty), on Host:Port, or on the main listener when Port is 0 or --port.
type Metrics struct {
	Path string
	Host string
	Port int
	// Tags (--metrics_tags) label every metric; see deploy.go for the
	// periodic writers' settings.
	Tags                 map[string]string
	RotateInterval       time.Duration
	Log                  bool
	LogFilter            []string
	Statsd               Statsd
	StatsRefreshInterval time.Duration
}

// The RPC implementations after finish (RPC.Impl).
const (
	RPCImplGRPC = "grpc"
	RPCImplHTTP = "http"
	RPCImplNone = "none"
)

// RPC is how to reach the application back end over AnyCable's RPC. The
// timeouts are AnyCable's milliseconds; zero values mean the transports'
// defaults (see rpc.GRPCOptions and rpc.HTTPOptions).
type RPC struct {
	// Host is --rpc_host: host:port, dns:///host:port, grpc-list://…,
	// grpc://host:port for gRPC, or an http(s):// base URL for HTTP RPC.
	Host string
	// Disabled is --norpc (or --rpc_impl none): no back end at all.
	Disabled bool
	// Impl is --rpc_impl; after finish it is always RPCImplGRPC,
	// RPCImplHTTP or RPCImplNone: when not given, an http:// or https://
	// host means HTTP, anything else gRPC.
	Impl           string
	Concurrency    int
	RequestTimeout time.Duration
	CommandTimeout time.Duration
	// HTTPSecret is --http_rpc_secret: "" derives the key from --secret,
	// "none" sends no Authorization header (see Config.HTTPRPCSecret).
	HTTPSecret  string
	HTTPTimeout time.Duration
	EnableTLS   bool
	TLSVerify   bool
	// TLSRootCA is a PEM file path or the PEM text itself.
	TLSRootCA   string
	MaxRecvSize int
	MaxSendSize int
}

// Log is --log_level, --log_format and --debug (which sets Level to
// "debug").
type Log struct {
	Level  string
	Format string
	Debug  bool
}

// Default is the configuration without flags or environment: each
// subsystem's defaults, and the process's own.
func Default() *Config {
	return &Config{
		Server: Server{
			Host:            "localhost",
			Port:            8080,
			Paths:           []string{"/cable"},
			HealthPath:      "/health",
			MemoryTrim:      true,
			ShutdownTimeout: 30 * time.Second,
		},
		API: API{PublishTimeout: api.DefaultTimeout},
		Cluster: Cluster{
			Broker:      "memory",
			RedisURL:    "redis://localhost:6379",
			NATSServers: pubsub.DefaultNATSURL,
			Embedded:    pubsub.DefaultEmbeddedOptions(),
			Redis:       defaultRedis(),
		},
		Log:       Log{Level: "info", Format: "text"},
		Metrics:   defaultMetrics(),
		SSE:       SSE{Path: "/events"},
		DS:        DS{Path: "/ds", PollInterval: 10 * time.Second, SSETTL: 60 * time.Second},
		WS:        ws.DefaultOptions(),
		Node:      node.DefaultOptions(),
		Streams:   streams.DefaultConfig(),
		JWT:       identity.DefaultJWTOptions(),
		Gateway:   gateway.DefaultOptions(),
		Admin:     Admin{Path: "/admin"},
		Broker:    broker.DefaultMemoryOptions(),
		Broadcast: defaultBroadcast(),
		RPC: RPC{
			Host:           rpc.DefaultGRPCHost,
			Concurrency:    rpc.DefaultConcurrency,
			CommandTimeout: rpc.DefaultCommandTimeout,
			TLSVerify:      true,
		},
	}
}

// ErrHelp is returned by Parse and Load when --help was asked for; the
// usage has been written to the output given.
var ErrHelp = flag.ErrHelp

// Input is what Load reads a configuration from.
type Input struct {
	// Args are the command-line arguments, without the program name.
	Args []string
	// Environ is the environment as KEY=VALUE pairs, as os.Environ gives
	// it. Settings are read from it, and every ANYCABLE_* variable no
	// setting reads gets a notice.
	Environ []string
	// Search lists the configuration files tried, in order, when
	// --config-path is not given (DefaultSearch is AnyCable's); the first
	// that exists is read. Nil tries none.
	Search []string
	// Out receives --help and --print-config.
	Out io.Writer
}

// Loaded says where a configuration came from, for the startup log.
type Loaded struct {
	// File is the configuration file read, as found or given; "" for none.
	File string
	// Notices name what the sources hold that no setting reads.
	Notices []Notice
	// Printed is the configuration as --print-config prints it, secrets
	// masked, for the admin console's Configuration page; set only with
	// --admin on.
	Printed string
}

// Load reads the configuration: each setting from its flag, else its
// environment variable, else its key in the configuration file, else its
// default (defaults < file < environment < flags). Errors are one line
// naming the flag, variable or file key. --help writes the usage and
// returns ErrHelp; --print-config writes the configuration as TOML and
// returns ErrPrinted.
func Load(in Input) (*Config, error) {
	vars := map[string]string{}
	for _, kv := range in.Environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			if _, dup := vars[k]; !dup {
				vars[k] = v
			}
		}
	}
	return load(in, func(k string) string { return vars[k] })
}

// Parse is Load from args and the variables getenv gives, with no
// configuration file unless --config-path names one and no notices about
// the environment (getenv cannot list it).
func Parse(args []string, getenv func(string) string, out io.Writer) (*Config, error) {
	return load(Input{Args: args, Out: out}, getenv)
}

// load is Load; its errors quote the values they refuse with the
// credentials of URLs masked (redact.Error).
func load(in Input, getenv func(string) string) (_ *Config, err error) {
	defer func() { err = redact.Error(err) }()
	out := in.Out
	if out == nil {
		out = io.Discard
	}
	c := Default()
	p := newParser()
	c.bind(p)
	if err := p.parseArgs(in.Args, out); err != nil {
		return nil, err
	}
	file, err := p.loadFile(in.Search)
	if err != nil {
		return nil, err
	}
	if err := p.apply(getenv, file); err != nil {
		return nil, err
	}
	if file != nil {
		c.Loaded.File = file.path
	}
	c.Loaded.Notices = append(append(p.argNotices(), p.fileNotices(file)...), p.envNotices(in.Environ)...)
	given := p.snapshot()
	if err := c.applyPresets(getenv); err != nil {
		return nil, err
	}
	if err := c.finish(); err != nil {
		return nil, err
	}
	if p.print != printOff {
		if err := p.printConfig(out, c.Loaded, given); err != nil {
			return nil, err
		}
		return nil, ErrPrinted
	}
	if c.Admin.Enabled {
		// The console's Configuration page: what --print-config prints,
		// secrets masked whatever was asked.
		var b strings.Builder
		p.print = printMasked
		if err := p.printConfig(&b, c.Loaded, given); err != nil {
			return nil, err
		}
		p.print = printOff
		c.Loaded.Printed = b.String()
	}
	return c, nil
}

// finish applies AnyCable's derivations and checks values that depend on
// each other.
func (c *Config) finish() error {
	c.deriveSecrets()
	c.deriveCluster()
	if c.Cluster.Broker == "nats" && c.Cluster.PubSub != "nats" {
		return fmt.Errorf("invalid value %q for --pubsub: --broker nats delivers through NATS and needs --pubsub nats", c.Cluster.PubSub)
	}
	if c.JWT.Param == "" {
		return fmt.Errorf("invalid value \"\" for --jwt_param: must not be empty")
	}
	if c.Metrics.Path != "" && !strings.HasPrefix(c.Metrics.Path, "/") {
		return fmt.Errorf("invalid value %q for --metrics_http: must start with /", c.Metrics.Path)
	}
	if c.Server.Public {
		c.Server.Noauth = true
		c.Streams.Public = true
	}
	for _, p := range c.Server.Paths {
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("invalid value %q for --path: each path must start with /", p)
		}
	}
	if len(c.Server.Paths) == 0 {
		return fmt.Errorf("invalid value \"\" for --path: at least one path is needed")
	}
	if !strings.HasPrefix(c.Server.HealthPath, "/") {
		return fmt.Errorf("invalid value %q for --health-path: must start with /", c.Server.HealthPath)
	}
	if err := c.deriveRPC(); err != nil {
		return err
	}
	if err := c.finishDeploy(); err != nil {
		return err
	}
	if err := c.checkAPI(); err != nil {
		return err
	}
	return c.checkBroadcast()
}

// deriveRPC settles which RPC implementation is in use: --norpc and
// --rpc_impl none turn it off; otherwise --rpc_impl, or the host's scheme.
func (c *Config) deriveRPC() error {
	r := &c.RPC
	if r.Impl == RPCImplNone {
		r.Disabled = true
	}
	switch {
	case r.Disabled:
		r.Impl = RPCImplNone
	case r.Impl != "":
	case strings.HasPrefix(r.Host, "http://") || strings.HasPrefix(r.Host, "https://"):
		r.Impl = RPCImplHTTP
	default:
		r.Impl = RPCImplGRPC
	}
	if r.CommandTimeout <= 0 {
		return fmt.Errorf("invalid value \"0\" for --rpc_command_timeout: must be positive, such as 3000 (milliseconds)")
	}
	return nil
}

// deriveSecrets applies "none" (no secret) and the fallbacks of the
// streams, Turbo and JWT secrets to --secret.
func (c *Config) deriveSecrets() {
	for _, secret := range []*string{&c.Server.Secret, &c.Streams.Secret, &c.JWT.Secret, &c.Streams.TurboSecret, &c.Pusher.Secret} {
		if *secret == "none" {
			*secret = ""
		}
	}
	if c.Streams.Secret == "" {
		c.Streams.Secret = c.Server.Secret
	}
	if c.Streams.TurboSecret == "" {
		c.Streams.TurboSecret = c.Streams.Secret
	}
	if c.JWT.Secret == "" {
		c.JWT.Secret = c.Server.Secret
	}
	if c.Pusher.Secret == "" {
		c.Pusher.Secret = c.Server.Secret
	}
}

// deriveCluster picks the pub/sub that goes with the broker (or the
// redisx adapter) when none is set, points NATS clients at the embedded
// server, and gives the node the broker's session lifetime (one flag,
// --sessions_ttl, for both).
func (c *Config) deriveCluster() {
	cl := &c.Cluster
	// The redisx adapter hands each entry to one node; the other nodes'
	// clients get it through the cluster pub/sub, which it therefore
	// turns on, as in AnyCable (an explicit --pubsub none stays none).
	if cl.PubSub == "" && c.HasBroadcastAdapter(broadcast.NameRedisX) {
		cl.PubSub = "redis"
	}
	if cl.PubSub == "none" {
		cl.PubSub = ""
	}
	if cl.PubSub == "" && cl.Broker == "redis" {
		cl.PubSub = "redis"
	}
	if cl.PubSub == "" && cl.Broker == "nats" {
		cl.PubSub = "nats"
	}
	if cl.EmbedNATS && cl.NATSServers == pubsub.DefaultNATSURL {
		cl.NATSServers = cl.Embedded.Addr
	}
	c.Node.SessionsTTL = c.Broker.SessionsTTL
}

// checkAPI normalizes --api_path and checks the API's ports and timeout.
func (c *Config) checkAPI() error {
	c.Gateway.Prefix = strings.TrimRight(c.Gateway.Prefix, "/")
	if c.Gateway.Prefix != "" && !strings.HasPrefix(c.Gateway.Prefix, "/") {
		return fmt.Errorf("invalid value %q for --api_path: must start with /", c.Gateway.Prefix)
	}
	if c.Gateway.Prefix == "" {
		return fmt.Errorf("invalid value \"/\" for --api_path: the API needs its own path, such as /api")
	}
	if c.API.Port != 0 && c.API.Port == c.Server.Port {
		return fmt.Errorf("invalid value %d for --api_port: must differ from --port (0 shares the main port)", c.API.Port)
	}
	if c.API.PublishTimeout <= 0 {
		return fmt.Errorf("invalid value \"0\" for --publish_timeout: must be positive, such as 2 or 1500ms")
	}
	if c.API.GRPCPort != 0 && (c.API.GRPCPort == c.Server.Port || c.API.GRPCPort == c.API.Port) {
		return fmt.Errorf("invalid value %d for --grpc_port: must differ from --port and --api_port", c.API.GRPCPort)
	}
	return c.checkAdmin()
}

// checkAdmin normalizes --admin_path and keeps it off the API's paths.
func (c *Config) checkAdmin() error {
	c.Admin.Path = strings.TrimRight(c.Admin.Path, "/")
	switch p := c.Admin.Path; {
	case p == "":
		return fmt.Errorf("invalid value \"/\" for --admin_path: the console needs its own path, such as /admin")
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("invalid value %q for --admin_path: must start with /", p)
	case p == c.Gateway.Prefix || strings.HasPrefix(p, c.Gateway.Prefix+"/") || strings.HasPrefix(c.Gateway.Prefix, p+"/"):
		return fmt.Errorf("invalid value %q for --admin_path: must not overlap --api_path %q", p, c.Gateway.Prefix)
	}
	return nil
}

// EffectiveAPISecret is the bearer token the API requires: --api_secret, or
// else hex(HMAC-SHA256(secret, "api-cable")) when --secret is set, or "" for
// none.
func (c *Config) EffectiveAPISecret() string {
	if c.API.Secret != "" {
		return c.API.Secret
	}
	if c.Server.Secret != "" {
		return DeriveSecret(c.Server.Secret, "api-cable")
	}
	return ""
}

// APIEnabled reports whether the REST API (and gRPC on the shared listener)
// is served. It fails closed: only a secret in effect, a dedicated
// --api_port (protection by network placement) or --public turn it on.
func (c *Config) APIEnabled() bool {
	return c.EffectiveAPISecret() != "" || c.API.Port != 0 || c.Server.Public
}

// HTTPRPCSecret is the key HTTP RPC sends as "Authorization: Bearer
// <key>": --http_rpc_secret, or else rpc.DeriveSecret(--secret) (derived
// reports this case, which AnyCable logs), or "" for no header: with
// --http_rpc_secret none, or without either secret.
func (c *Config) HTTPRPCSecret() (key string, derived bool) {
	switch {
	case c.RPC.HTTPSecret == rpc.HTTPSecretNone:
		return "", false
	case c.RPC.HTTPSecret != "":
		return c.RPC.HTTPSecret, false
	case c.Server.Secret != "":
		return rpc.DeriveSecret(c.Server.Secret), true
	}
	return "", false
}

// DeriveSecret is AnyCable's secret derivation: the lower-case hex HMAC-SHA256
// of phrase keyed with secret.
func DeriveSecret(secret, phrase string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(phrase))
	return hex.EncodeToString(m.Sum(nil))
}
