// Package broadcast runs AnyCable's broadcast adapters: the inputs through
// which applications publish (the anycable gem's http, redis, redisx and
// nats adapters, and SDKs speaking the same formats). Every adapter decodes
// its payloads with package publication and hands them to a Sink, the same
// path as POST /api/publish, so a broadcast is validated, stamped (offset,
// epoch, history), fanned out to the cluster and honours exclude_socket,
// transient and broadcast_type whichever way it came in.
package broadcast

import (
	"context"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
	"github.com/cablehub/cablehub/server/connwatch"
)

// Sink takes decoded broadcasts; the API service (api.Service) is the one
// the server uses. Errors are gRPC status errors: InvalidArgument for a
// publication it refuses, Unavailable when the broker or pub/sub did not
// take it.
type Sink interface {
	Publish(ctx context.Context, req *cablehubv1.PublishRequest) (*cablehubv1.PublishResponse, error)
	Disconnect(ctx context.Context, req *cablehubv1.DisconnectRequest) (*cablehubv1.DisconnectResponse, error)
}

// Adapter is one running broadcast input.
type Adapter interface {
	// Name is the adapter's --broadcast_adapter name (http, redis, redisx,
	// nats).
	Name() string
	// Run consumes broadcasts until ctx ends, surviving outages of what it
	// reads from (it retries with backoff and reports them through Err);
	// it returns once it has stopped.
	Run(ctx context.Context) error
	// Err is nil while the adapter can receive broadcasts, else why not
	// (for /health).
	Err() error
	// Role is what the adapter does at the moment, for /health's "role":
	// the redis adapter, one node of a cluster listening at a time, says
	// RoleListening, RoleStandby or RoleConnecting. It is "" for an
	// adapter that has no role to report, and /health then shows none.
	Role() string
	// Describe is the adapter's startup line, logged once before it
	// runs: what it reads from. It is "" when there is nothing to say
	// before a listener is bound (the http adapter's line, DescribeAt,
	// needs the address), and nothing is logged then.
	Describe() string
}

// Metrics counts what the adapters drop for its size and the outages of
// what they read from (components "broadcast:redis", "broadcast:redisx",
// "broadcast:nats"); the server's metrics.Metrics implements it.
type Metrics interface {
	connwatch.Counters
	BroadcastTooLarge(adapter string)
}
