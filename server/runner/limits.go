package runner

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// limits bound how long a peer may hold the server's connections and
// goroutines without doing its part. New sets the production values
// (defaultLimits); tests in this package shorten them before Start. They
// are not flags: nobody has needed to tune them.
type limits struct {
	// apiBody bounds receiving one REST request's body, from the start of
	// its handling (gateway.Options.BodyTimeout); a slower client gets 408.
	// It bounds every other HTTP/1 request's body the same way, on every
	// listener (routes.boundBody), where nothing reads it: the connection
	// is closed after the answer by then. The headers are bounded by the
	// HTTP server's ReadHeaderTimeout.
	apiBody time.Duration

	// gRPC connections served by grpc-go's own transport: the dedicated
	// --grpc_port and the shared port's HTTP/2-preface connections.
	// (gRPC through net/http, where a shared port cannot peek, is bounded by
	// the HTTP server's IdleTimeout instead: grpc-go ignores keepalive
	// there.)

	// grpcHandshake bounds a new connection's HTTP/2 handshake
	// (grpc.ConnectionTimeout; grpc-go's default is 120 s).
	grpcHandshake time.Duration
	// grpcIdle closes (GOAWAY, then close) a connection that has had no
	// call in flight for this long; clients reconnect on their next call.
	grpcIdle time.Duration
	// grpcPing is how long a connection may be silent before the server
	// pings it, and grpcPingTimeout how long the answer may take before the
	// connection is closed: this finds dead peers under long-lived calls.
	grpcPing, grpcPingTimeout time.Duration
	// grpcMinPing is the shortest interval at which clients may ping, with
	// or without calls in flight; a client pinging more often is sent
	// GOAWAY (too_many_pings). It is below grpc-go's smallest client
	// keepalive time (10 s), so no well-behaved client trips it.
	grpcMinPing time.Duration

	// upgradeViaNetHTTP sends WebSocket upgrades through net/http as before
	// the listener's front answered them (wsFront), for tests comparing the
	// two paths' answers.
	upgradeViaNetHTTP bool
	// onRawUpgrade, if set, is called for each upgrade the front answers.
	onRawUpgrade func()
}

func defaultLimits() limits {
	return limits{
		apiBody:         10 * time.Second,
		grpcHandshake:   10 * time.Second,
		grpcIdle:        5 * time.Minute,
		grpcPing:        2 * time.Minute,
		grpcPingTimeout: 20 * time.Second,
		grpcMinPing:     5 * time.Second,
	}
}

// grpcOptions are the gRPC server options that apply l.
func (l limits) grpcOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ConnectionTimeout(l.grpcHandshake),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: l.grpcIdle,
			Time:              l.grpcPing,
			Timeout:           l.grpcPingTimeout,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             l.grpcMinPing,
			PermitWithoutStream: true,
		}),
	}
}
