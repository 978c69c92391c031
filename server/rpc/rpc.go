// Package rpc is Cablehub's client for an AnyCable RPC back end: the
// application (Rails with the anycable gem, serverless-js, …) that owns
// connection authentication and channel logic. Cablehub calls it on
// WebSocket connect, on subscribe/unsubscribe/message, and on disconnect;
// the wire contract is AnyCable 1.6's RPC, over gRPC or over HTTP (JSON
// bodies POSTed to <base>/connect|command|disconnect), with the schema in
// proto/anycable/rpc.proto (Go package anycablepb). docs/rails.md tells
// what a back end sees and how its answers are applied.
//
// # Method set
//
// Every transport (GRPC here, the HTTP one alongside) implements Client:
//
//	Connect(ctx, sid, *ConnectionRequest) (*ConnectionResponse, error)
//	Command(ctx, sid, *CommandMessage) (*CommandResponse, error)
//	Disconnect(ctx, sid, *DisconnectRequest) (*DisconnectResponse, error)
//	Close() error
//
// sid is the session id; it travels as call metadata `sid` together with
// `protov: v1` so the back end can echo it in its welcome frame.
//
// # Error contract
//
// A returned response is exactly what the back end answered, every field
// untouched, whatever its Status: ERROR and FAILURE are answers, not Go
// errors, and the caller applies them as AnyCable does (the table of
// docs/rails.md). A non-nil error means the call produced no answer; it
// is always a gRPC status error (google.golang.org/grpc/status) so
// callers classify failures the same way for both transports:
//
//   - codes.Unavailable: back end unreachable (retried, then given up);
//   - codes.ResourceExhausted: back end overloaded (retried, then given up);
//   - codes.DeadlineExceeded: the per-attempt timeout or the whole call's
//     budget (CommandTimeout) ran out; never retried;
//   - codes.Canceled: the caller's context was canceled;
//   - anything else (Internal, Unauthenticated, InvalidArgument, Unknown …):
//     the back end or transport refused the call; never retried.
//
// # Shared call discipline
//
// All calls of one client share a concurrency Limiter (--rpc_concurrency,
// default 28): a call waits for a slot without a timeout of its own, as
// AnyCable does, but gives up when its context ends. Holding the slot, it
// runs under the Retry policy: only ResourceExhausted and Unavailable are
// retried, after 2^attempt × base (10 ms / 100 ms), the whole call
// bounded by CommandTimeout (3 s default). Invoker bundles both with the
// Metrics hook and the reachability log so each transport only supplies the
// single attempt.
package rpc

import (
	"context"

	anycablepb "github.com/cablehub/cablehub/gen/anycable"
)

// Method names as reported to Metrics and logs; they are also the last
// path element of the HTTP RPC endpoints (<base>/connect, …).
const (
	MethodConnect    = "connect"
	MethodCommand    = "command"
	MethodDisconnect = "disconnect"
)

// ProtocolVersion is the `protov` metadata value sent with every call.
const ProtocolVersion = "v1"

// Metadata keys sent with every call; HTTP RPC sends them as the headers
// X-Anycable-Meta-Sid / X-Anycable-Meta-Protov.
const (
	MetaSID      = "sid"
	MetaProtocol = "protov"
)

// Client is the method set every RPC transport implements; see the package
// doc for the error contract. Implementations are safe for concurrent use.
type Client interface {
	Connect(ctx context.Context, sid string, req *anycablepb.ConnectionRequest) (*anycablepb.ConnectionResponse, error)
	Command(ctx context.Context, sid string, req *anycablepb.CommandMessage) (*anycablepb.CommandResponse, error)
	Disconnect(ctx context.Context, sid string, req *anycablepb.DisconnectRequest) (*anycablepb.DisconnectResponse, error)
	Close() error
}
