package broadcast

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
)

// The adapter names, as --broadcast_adapter takes them.
const (
	NameHTTP   = "http"
	NameRedis  = "redis"
	NameRedisX = "redisx"
	NameNATS   = "nats"
)

// Names lists every adapter name, in the order --help shows them.
var Names = []string{NameHTTP, NameRedis, NameRedisX, NameNATS}

// Options configure the adapters; each reads only its own fields. The
// runner fills them from the configuration and the connections it has
// made.
type Options struct {
	// HTTP is the http adapter's.
	HTTP HTTPOptions
	// Redis is the client of the redis and redisx adapters (--redis_url);
	// the runner owns and closes it.
	Redis redis.UniversalClient
	// RedisChannel is the redis adapter's channel (--redis_channel).
	RedisChannel string
	// RedisX is the redisx adapter's.
	RedisX RedisXOptions
	// NATS is the nats adapter's connection (--nats_servers, or the
	// embedded server); the runner owns and closes it.
	NATS *nats.Conn
	// NATSChannel is the nats adapter's subject (--nats_channel).
	NATSChannel string
	// Clustered says a cluster pub/sub (--pubsub redis or nats) carries
	// every broadcast the sink takes to every node. The fan-out inputs
	// (redis, nats), whose messages every node receives, must then hand
	// each message to the sink on one node only, or it would be stamped
	// and delivered once per node: the redis adapter holds a lease in
	// Redis so one node at a time listens; the nats adapter subscribes in
	// a queue group. Without a cluster pub/sub every node takes its own
	// copy (its broker stamps it, and it reaches that node's clients only).
	Clustered bool
	// NodeID names this process where adapters need a name that differs
	// between nodes (the redis lease holder, the redisx consumer). Empty
	// gets a random one.
	NodeID string
	// MaxPayloadSize is the largest payload the redis, redisx and nats
	// adapters hand on, bytes (--api_max_body_size, the http adapter's
	// and the API's limit, so a broadcast too large for POST /api/publish
	// is too large whichever way it comes); 0 means no limit. A larger
	// one is dropped before it is decoded, with a WARN giving its size
	// (not its content), and counted (Metrics.BroadcastTooLarge).
	MaxPayloadSize int64
	// Metrics counts drops and outages; nil counts nothing.
	Metrics Metrics
}

// HTTPOptions configure the http adapter.
type HTTPOptions struct {
	// Path is --http_broadcast_path, e.g. "/_broadcast".
	Path string
	// Key is the bearer token requests must carry ("Authorization: Bearer
	// <key>"); empty accepts requests without one.
	Key string
	// MaxBodySize is the largest accepted body, bytes (--api_max_body_size).
	MaxBodySize int64
	// BodyTimeout bounds receiving a request's body; 0 means no bound.
	BodyTimeout time.Duration
}

// RedisXOptions configure the redisx adapter (Redis Streams with a consumer
// group).
type RedisXOptions struct {
	// Stream is the stream key (--redisx_stream).
	Stream string
	// Group is the consumer group (--redisx_group).
	Group string
	// ReadBlock is how long one XREADGROUP waits for entries
	// (--redisx_read_block_milliseconds).
	ReadBlock time.Duration
}

// DefaultOptions are AnyCable's defaults for the adapters' own settings;
// the connections and the HTTP key are the runner's to set.
func DefaultOptions() Options {
	return Options{
		HTTP:         HTTPOptions{Path: "/_broadcast", MaxBodySize: 1 << 20},
		RedisChannel: "__anycable__",
		RedisX:       RedisXOptions{Stream: "__anycable__", Group: "bx", ReadBlock: 2 * time.Second},
		NATSChannel:  "__anycable__",

		MaxPayloadSize: 1 << 20,
	}
}

// New builds the adapter called name, feeding sink. log gets the
// adapter's context (context=broadcast provider=<name>) here. The http
// adapter it returns is also an http.Handler, to be mounted at
// o.HTTP.Path by whoever serves it (see HTTP).
func New(name string, o Options, sink Sink, log *slog.Logger) (Adapter, error) {
	log = log.With("context", "broadcast", "provider", name)
	h := NewHandler(sink, log)
	h.maxSize = o.MaxPayloadSize
	if o.Metrics != nil {
		h.tooLarge = func() { o.Metrics.BroadcastTooLarge(name) }
	}
	if o.NodeID == "" {
		o.NodeID = randomID()
	}
	switch name {
	case NameHTTP:
		return newHTTP(o.HTTP, h, log), nil
	case NameRedis:
		if o.Redis == nil {
			return nil, fmt.Errorf("the %s broadcast adapter needs a Redis client", name)
		}
		return newRedis(o, h, log), nil
	case NameRedisX:
		return newRedisX(o, h, log)
	case NameNATS:
		return newNATS(o, h, log)
	}
	return nil, fmt.Errorf("unknown broadcast adapter %q: use %s", name, strings.Join(Names, ", "))
}
