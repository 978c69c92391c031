package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cablehub/cablehub/server/broadcast"
	"github.com/cablehub/cablehub/server/pubsub"
)

// groupBroadcast is the help group of the broadcast adapters' flags.
const groupBroadcast = "Broadcast adapters"

// Broadcast is how applications publish to Cablehub besides the API:
// AnyCable's broadcast adapters (--broadcast_adapter) and their settings.
type Broadcast struct {
	// Adapters is --broadcast_adapter: AnyCable's names, AnyCable's
	// default "http,redis".
	Adapters []string
	// Explicit is true when Adapters was given (flag, environment), false
	// for the default list. An explicitly listed adapter that cannot run
	// (its Redis is down, its port taken) makes /health fail; the default
	// list must not, so that Cablehub without flags runs on a machine
	// with no Redis (see runner).
	Explicit bool
	// Key is --broadcast_key: "" derives it from --secret, "none" turns
	// it off (see Config.BroadcastKey).
	Key string
	// HTTPPort is --http_broadcast_port; 0 picks by AnyCable's rule (see
	// Config.HTTPBroadcastPort).
	HTTPPort int
	// Options: --http_broadcast_path, --redis_channel, --redisx_stream,
	// --redisx_group, --redisx_read_block_milliseconds, --nats_channel;
	// the runner fills in the rest.
	Options broadcast.Options
}

// defaultBroadcast is AnyCable's: the http and redis adapters.
func defaultBroadcast() Broadcast {
	return Broadcast{Adapters: []string{broadcast.NameHTTP, broadcast.NameRedis}, Options: broadcast.DefaultOptions()}
}

// DefaultHTTPBroadcastPort is where the http adapter listens when no key
// is in force and no --http_broadcast_port is given, as in AnyCable (whose
// gem posts to localhost:8090 without a key).
const DefaultHTTPBroadcastPort = 8090

func (c *Config) bindBroadcast(p *parser) {
	b, o := &c.Broadcast, &c.Broadcast.Options
	p.add(groupBroadcast, "broadcast_adapter", adapterListValue{&b.Adapters, &b.Explicit}, "broadcast adapters, comma-separated: http, redis, redisx, nats (empty: none)").file("broadcast_adapters")
	p.add(groupBroadcast, "broadcast_key", stringValue{&b.Key}, "bearer token of /_broadcast (default: derived from --secret; \"none\": no token)").file("broadcast_key").secret()
	p.add(groupBroadcast, "http_broadcast_port", intValue{&b.HTTPPort, 0, 65535}, "port of the http adapter (0: the main port when a token is in force, else 8090; --port shares the main listener)").file("http_broadcast.port")
	p.add(groupBroadcast, "http_broadcast_path", stringValue{&o.HTTP.Path}, "path of the http adapter").file("http_broadcast.path")
	p.add(groupBroadcast, "redis_channel", stringValue{&o.RedisChannel}, "Redis channel the redis adapter subscribes to (on --redis_url)").file("redis_pubsub_broadcast.channel")
	p.add(groupBroadcast, "redisx_stream", stringValue{&o.RedisX.Stream}, "Redis stream the redisx adapter reads (on --redis_url)").file("redis_stream_broadcast.stream")
	p.add(groupBroadcast, "redisx_group", stringValue{&o.RedisX.Group}, "consumer group of the redisx adapter").file("redis_stream_broadcast.group")
	p.add(groupBroadcast, "redisx_read_block_milliseconds", msDurationValue{&o.RedisX.ReadBlock}, "how long one read of the redisx adapter waits for entries, milliseconds").file("redis_stream_broadcast.stream_read_block_milliseconds")
	p.add(groupBroadcast, "nats_channel", stringValue{&o.NATSChannel}, "NATS subject the nats adapter subscribes to (on --nats_servers)").file("nats_broadcast.channel")
}

// adapterListValue is --broadcast_adapter: a comma-separated list of
// known adapter names (a repeated one counts once). Setting it marks the
// list explicit.
type adapterListValue struct {
	p        *[]string
	explicit *bool
}

func (v adapterListValue) String() string {
	if v.p == nil {
		return ""
	}
	return strings.Join(*v.p, ",")
}

func (v adapterListValue) isList() {}

func (v adapterListValue) implicit() bool { return v.explicit == nil || !*v.explicit }

func (v adapterListValue) fileForm() any { return append([]string{}, *v.p...) }

func (v adapterListValue) Set(s string) error {
	var out []string
	if err := (listValue{&out}).Set(s); err != nil {
		return err
	}
	for _, name := range out {
		if !slices.Contains(broadcast.Names, name) {
			return fmt.Errorf("unknown adapter %q: use %s", name, strings.Join(broadcast.Names, ", "))
		}
	}
	var names []string
	for _, name := range out {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	*v.p, *v.explicit = names, true
	return nil
}

// HasBroadcastAdapter reports whether --broadcast_adapter lists name.
func (c *Config) HasBroadcastAdapter(name string) bool {
	return slices.Contains(c.Broadcast.Adapters, name)
}

// BroadcastKey is the bearer token the http adapter requires: none with
// --broadcast_key none, else --broadcast_key, else
// hex(HMAC-SHA256(--secret, "broadcast-cable")) (derived reports this
// case, which is logged), else none ("").
//
// Unlike AnyCable, --public does not drop the key: with a secret, public
// mode keeps the API closed to callers without the token, and /_broadcast
// publishes as the API does, so it stays closed the same way.
func (c *Config) BroadcastKey() (key string, derived bool) {
	switch {
	case c.Broadcast.Key == "none":
		return "", false
	case c.Broadcast.Key != "":
		return c.Broadcast.Key, false
	case c.Server.Secret != "":
		return DeriveSecret(c.Server.Secret, "broadcast-cable"), true
	}
	return "", false
}

// HTTPBroadcastPort is the http adapter's port by AnyCable's rule:
// --http_broadcast_port when set; else the main port when a key is in
// force (--broadcast_key other than "none", or one derived from
// --secret); else DefaultHTTPBroadcastPort. main reports that it is the
// main listener (the port equals --port).
func (c *Config) HTTPBroadcastPort() (port int, main bool) {
	b := &c.Broadcast
	switch {
	case b.HTTPPort != 0:
		return b.HTTPPort, b.HTTPPort == c.Server.Port
	case b.Key != "none" && (b.Key != "" || c.Server.Secret != ""):
		return c.Server.Port, true
	}
	return DefaultHTTPBroadcastPort, c.Server.Port == DefaultHTTPBroadcastPort
}

// checkBroadcast checks the adapters' settings that are in use.
func (c *Config) checkBroadcast() error {
	o := &c.Broadcast.Options
	if c.HasBroadcastAdapter(broadcast.NameHTTP) {
		path := o.HTTP.Path
		if !strings.HasPrefix(path, "/") {
			return fmt.Errorf("invalid value %q for --http_broadcast_path: must start with /", path)
		}
		port, main := c.HTTPBroadcastPort()
		if !main && (port == c.API.GRPCPort || port == c.API.Port || port == c.Metrics.Port && c.Metrics.Path != "") {
			return fmt.Errorf("invalid value %d for --http_broadcast_port: must differ from --api_port, --grpc_port and --metrics_port (--port shares the main listener)", port)
		}
		if main && (path == c.Server.HealthPath || path == c.Metrics.Path || slices.Contains(c.Server.Paths, path) ||
			path == c.Gateway.Prefix || strings.HasPrefix(path, c.Gateway.Prefix+"/")) {
			return fmt.Errorf("invalid value %q for --http_broadcast_path: the main listener serves something else there", path)
		}
	}
	if c.HasBroadcastAdapter(broadcast.NameRedis) && o.RedisChannel == "" {
		return fmt.Errorf("invalid value \"\" for --redis_channel: the redis adapter needs a channel")
	}
	if c.HasBroadcastAdapter(broadcast.NameRedis) && o.RedisChannel == pubsub.InternalChannel {
		return fmt.Errorf("invalid value %q for --redis_channel: the Redis pub/sub between nodes uses that channel", o.RedisChannel)
	}
	if c.HasBroadcastAdapter(broadcast.NameRedisX) {
		if o.RedisX.Stream == "" || o.RedisX.Group == "" {
			return fmt.Errorf("invalid value \"\" for --redisx_stream or --redisx_group: the redisx adapter needs both")
		}
		if o.RedisX.ReadBlock < time.Millisecond {
			return fmt.Errorf("invalid value \"0\" for --redisx_read_block_milliseconds: must be positive, such as 2000")
		}
	}
	if c.HasBroadcastAdapter(broadcast.NameNATS) && o.NATSChannel == "" {
		return fmt.Errorf("invalid value \"\" for --nats_channel: the nats adapter needs a subject")
	}
	if c.HasBroadcastAdapter(broadcast.NameNATS) {
		return checkNATSChannel(o.NATSChannel)
	}
	return nil
}

// checkNATSChannel refuses a --nats_channel the nats adapter would share
// with the NATS pub/sub between nodes: its internal subject, or a wildcard
// (which could match the pub/sub's stream subjects, so that every
// publication it delivers came back to the adapter to be published again).
func checkNATSChannel(subject string) error {
	if subject == pubsub.InternalChannel {
		return fmt.Errorf("invalid value %q for --nats_channel: the NATS pub/sub between nodes uses that subject", subject)
	}
	for _, token := range strings.Split(subject, ".") {
		if token == "*" || token == ">" {
			return fmt.Errorf("invalid value %q for --nats_channel: must be one subject, without wildcards", subject)
		}
	}
	return nil
}
