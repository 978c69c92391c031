package rpc

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	anycablepb "github.com/cablehub/cablehub/gen/anycable"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cablehub/cablehub/server/redact"
)

// DefaultGRPCHost is AnyCable's --rpc_host default.
const DefaultGRPCHost = "localhost:50051"

// grpcKeepalive is AnyCable's client keepalive: a ping every 10 s even
// without calls in flight, so a dead back end is noticed between calls.
// Back ends must permit it (AnyCable's and grpc-go's with a
// permissive EnforcementPolicy do; a stricter server answers with
// too_many_pings and grpc-go then backs the interval off by itself).
const grpcKeepalive = 10 * time.Second

// GRPCOptions configures NewGRPC. The zero value is AnyCable's default
// configuration (localhost:50051, concurrency 28, 3 s budget, no
// per-attempt timeout, plaintext).
type GRPCOptions struct {
	// Host is --rpc_host: "host:port", "dns:///host:port" (DNS, every
	// address resolved is used round-robin), "grpc-list://h1:p1,h2:p2" (a
	// static list, round-robin) or "grpc://host:port" (same as host:port;
	// AnyCable accepts the form but fails every call with "grpc
	// connection is not ready"). Empty means DefaultGRPCHost.
	Host string
	// Concurrency is --rpc_concurrency; ≤ 0 means DefaultConcurrency.
	Concurrency int
	// CommandTimeout is the budget of a whole call, retries included
	// (--rpc_command_timeout); 0 means DefaultCommandTimeout.
	CommandTimeout time.Duration
	// RequestTimeout bounds each attempt (--rpc_request_timeout); 0 means
	// none.
	RequestTimeout time.Duration
	// MaxRecvSize and MaxSendSize bound a message in bytes
	// (--rpc_max_call_recv_size / --rpc_max_call_send_size); 0 keeps
	// gRPC's defaults (4 MiB receive, unlimited send).
	MaxRecvSize int
	MaxSendSize int
	// EnableTLS is --rpc_enable_tls. Setting TLSRootCA implies it.
	EnableTLS bool
	// TLSSkipVerify disables server certificate verification; it is the
	// negation of --rpc_tls_verify (default true), so the zero value
	// verifies.
	TLSSkipVerify bool
	// TLSRootCA is --rpc_tls_root_ca: a PEM file path or the PEM text
	// itself (recognised by "-----BEGIN"). Empty means the system pool.
	TLSRootCA string
	// Metrics receives call metrics; nil records nothing.
	Metrics Metrics

	// exhaustedBase/unavailableBase shrink retry delays in tests.
	exhaustedBase, unavailableBase time.Duration
}

// GRPC is the gRPC transport of Client, AnyCable's anycable.RPC service
// with its call metadata: one round-robin client connection to the back
// end, calls run by an Invoker.
type GRPC struct {
	conn    *grpc.ClientConn
	client  anycablepb.RPCClient
	invoker *Invoker
	target  string
}

var _ Client = (*GRPC)(nil)

// NewGRPC validates opts and prepares the client connection. It does not
// wait for the back end: connecting is lazy, so a server whose back end is
// down still starts, and calls fail with codes.Unavailable until it is up.
// The error names the offending value (host, CA).
func NewGRPC(opts GRPCOptions, log *slog.Logger) (*GRPC, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tgt, err := parseGRPCHost(opts.Host)
	if err != nil {
		return nil, redact.Error(err)
	}
	creds, err := grpcCredentials(opts)
	if err != nil {
		return nil, err
	}
	dialOpts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: grpcKeepalive, PermitWithoutStream: true}),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{
			BaseDelay: time.Second, Multiplier: 1.6, Jitter: 0.2, MaxDelay: grpcMaxBackoff,
		}, MinConnectTimeout: 5 * time.Second}),
	}
	if tgt.resolver != nil {
		dialOpts = append(dialOpts, grpc.WithResolvers(tgt.resolver))
	}
	var callOpts []grpc.CallOption
	if opts.MaxRecvSize > 0 {
		callOpts = append(callOpts, grpc.MaxCallRecvMsgSize(opts.MaxRecvSize))
	}
	if opts.MaxSendSize > 0 {
		callOpts = append(callOpts, grpc.MaxCallSendMsgSize(opts.MaxSendSize))
	}
	if len(callOpts) > 0 {
		dialOpts = append(dialOpts, grpc.WithDefaultCallOptions(callOpts...))
	}
	conn, err := grpc.NewClient(tgt.target, dialOpts...)
	if err != nil {
		return nil, redact.Error(fmt.Errorf("rpc: gRPC client for host %q: %w", opts.Host, err))
	}
	policy := RetryPolicy{
		CommandTimeout:  opts.CommandTimeout,
		RequestTimeout:  opts.RequestTimeout,
		ExhaustedBase:   opts.exhaustedBase,
		UnavailableBase: opts.unavailableBase,
	}
	g := &GRPC{
		conn:    conn,
		client:  anycablepb.NewRPCClient(conn),
		invoker: NewInvoker(opts.Concurrency, policy, opts.Metrics, log),
		target:  tgt.target,
	}
	// AnyCable's "RPC controller initialized" line also names the proxied
	// headers and cookies, which only the caller knows; it logs that line.
	log.Debug("gRPC RPC client ready", "host", tgt.display, "target", tgt.target,
		"concurrency", g.invoker.Concurrency(), "enable_tls", opts.EnableTLS || opts.TLSRootCA != "")
	return g, nil
}

// errNotReady fails a call at once while the connection to the back end
// is in TRANSIENT_FAILURE: AnyCable's callers then fail fast
// instead of each spending the whole budget on retries, so an outage
// costs clients a quick 1011, not a 3 s wait each.
var errNotReady = finalError{status.Error(codes.Unavailable, "grpc connection is not ready")}

// ready fails fast while the connection is in TRANSIENT_FAILURE, asking
// it to reconnect (which it does by itself within grpcMaxBackoff).
func (g *GRPC) ready() error {
	if g.conn.GetState() != connectivity.TransientFailure {
		return nil
	}
	g.conn.Connect()
	return errNotReady
}

// grpcMaxBackoff caps the delay between reconnection attempts to a back
// end that is down (grpc-go's default grows to 120 s), so that calls work
// again within seconds of the back end's return.
const grpcMaxBackoff = 5 * time.Second

// Connect asks the back end to authenticate a new session.
func (g *GRPC) Connect(ctx context.Context, sid string, req *anycablepb.ConnectionRequest) (*anycablepb.ConnectionResponse, error) {
	var resp *anycablepb.ConnectionResponse
	err := g.invoker.Invoke(ctx, MethodConnect, sid, func(ctx context.Context) error {
		var err error
		if err := g.ready(); err != nil {
			return err
		}
		resp, err = g.client.Connect(withMeta(ctx, sid), req)
		return tooLarge(err)
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// Command passes a client's subscribe, unsubscribe or message command on
// a channel the back end runs.
func (g *GRPC) Command(ctx context.Context, sid string, req *anycablepb.CommandMessage) (*anycablepb.CommandResponse, error) {
	var resp *anycablepb.CommandResponse
	err := g.invoker.Invoke(ctx, MethodCommand, sid, func(ctx context.Context) error {
		var err error
		if err := g.ready(); err != nil {
			return err
		}
		resp, err = g.client.Command(withMeta(ctx, sid), req)
		return tooLarge(err)
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// Disconnect tells the back end that a session ended.
func (g *GRPC) Disconnect(ctx context.Context, sid string, req *anycablepb.DisconnectRequest) (*anycablepb.DisconnectResponse, error) {
	var resp *anycablepb.DisconnectResponse
	err := g.invoker.Invoke(ctx, MethodDisconnect, sid, func(ctx context.Context) error {
		var err error
		if err := g.ready(); err != nil {
			return err
		}
		resp, err = g.client.Disconnect(withMeta(ctx, sid), req)
		return tooLarge(err)
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// tooLarge makes a message refused for its size a final error. grpc-go
// refuses a reply over MaxRecvSize (--rpc_max_call_recv_size) from its
// length prefix, before reading it, with RESOURCE_EXHAUSTED "grpc:
// received message larger than max" (or "… after decompression larger
// than max"); a back end refusing a request over its own limit answers
// the same. Both would fail the same way every time, so unlike an
// overloaded back end's RESOURCE_EXHAUSTED they are not retried: a back
// end answering huge replies is asked once per call, not until the
// budget runs out.
func tooLarge(err error) error {
	s, ok := status.FromError(err)
	if !ok || s.Code() != codes.ResourceExhausted || !strings.Contains(s.Message(), "larger than max") {
		return err
	}
	return finalError{err}
}

// Reachable reports whether the back end answered lately (see
// Invoker.Reachable); meant for /health.
func (g *GRPC) Reachable() bool { return g.invoker.Reachable() }

// Close tears the connection down; calls in flight fail with
// codes.Canceled and later calls fail too.
func (g *GRPC) Close() error { return g.conn.Close() }

// withMeta adds the metadata AnyCable sends with every call: the sid,
// which the back end puts in its welcome, and protov.
func withMeta(ctx context.Context, sid string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, MetaSID, sid, MetaProtocol, ProtocolVersion)
}

// grpcCredentials builds TLS or plaintext credentials from opts.
func grpcCredentials(opts GRPCOptions) (credentials.TransportCredentials, error) {
	if !opts.EnableTLS && opts.TLSRootCA == "" {
		return insecure.NewCredentials(), nil
	}
	cfg, err := TLSConfig(opts.TLSSkipVerify, opts.TLSRootCA)
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(cfg), nil
}

// rootCAPool reads a CA given as PEM text or as the path of a PEM file.
func rootCAPool(ca string) (*x509.CertPool, error) {
	pemData := []byte(ca)
	if !strings.Contains(ca, "-----BEGIN") {
		data, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("rpc: reading TLS root CA %q: %w", ca, err)
		}
		pemData = data
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, errors.New("rpc: TLS root CA contains no PEM certificate")
	}
	return pool, nil
}
