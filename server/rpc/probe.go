package rpc

import (
	"context"
	"crypto/tls"
	"net"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	"github.com/cablehub/cablehub/server/redact"
)

// Probe reports whether the gRPC back end can be reached now, for /health:
// nil when the connection is ready or becomes ready before ctx ends, a
// codes.Unavailable error otherwise. It makes no RPC call. An idle
// connection is started and awaited; a connection in backoff after a
// failure is reported unreachable at once and told to retry now, so a back
// end that has come back shows as reachable from the next probe on
// instead of after gRPC's reconnect backoff.
func (g *GRPC) Probe(ctx context.Context) error {
	s := g.conn.GetState()
	for first := true; ; first = false {
		switch s {
		case connectivity.Ready:
			return nil
		case connectivity.Shutdown:
			return status.Error(codes.Unavailable, "rpc client is closed")
		case connectivity.TransientFailure:
			if first {
				g.conn.ResetConnectBackoff()
			}
			return status.Errorf(codes.Unavailable, "gRPC back end %s is not reachable", redact.Credentials(g.target))
		case connectivity.Idle:
			g.conn.Connect()
		}
		if !g.conn.WaitForStateChange(ctx, s) {
			return status.Errorf(codes.Unavailable, "gRPC back end %s: not connected in time: %v", redact.Credentials(g.target), ctx.Err())
		}
		s = g.conn.GetState()
	}
}

// Reachable reports whether the back end answered lately (see
// Invoker.Reachable).
func (h *HTTP) Reachable() bool { return h.invoker.Reachable() }

// Probe reports whether the HTTP back end can be reached now, for
// /health: nil when a TCP connection to the base URL's host and port
// opens before ctx ends (it is closed at once; no request is made, so the
// application logs nothing), a codes.Unavailable error otherwise.
func (h *HTTP) Probe(ctx context.Context) error {
	if h.closed.Load() {
		return h.closedError
	}
	port := h.base.Port()
	if port == "" {
		port = "80"
		if h.base.Scheme == "https" {
			port = "443"
		}
	}
	addr := net.JoinHostPort(h.base.Hostname(), port)
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return status.Errorf(codes.Unavailable, "HTTP back end %s is not reachable: %v", addr, err)
	}
	return conn.Close()
}

// TLSConfig is the client TLS configuration for the back end's
// certificate: verified against rootCA (a PEM file path or the PEM text;
// empty means the system's CAs) unless skipVerify. The gRPC transport
// builds its own from GRPCOptions; this one is for HTTPOptions.TLSConfig.
func TLSConfig(skipVerify bool, rootCA string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: skipVerify}
	if rootCA != "" {
		pool, err := rootCAPool(rootCA)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}
