package runner

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/cablehub/cablehub/server/config"
	"github.com/cablehub/cablehub/server/redact"
	"github.com/cablehub/cablehub/server/rpc"
)

// rpcBackend is the RPC client the runner hands the node as its App: it
// is closed at shutdown, and probed by /health.
type rpcBackend interface {
	rpc.Client
	Probe(ctx context.Context) error
}

// rpcSetup is the RPC back end built from the configuration, with what
// the startup log says about it.
type rpcSetup struct {
	client rpcBackend // nil with --norpc
	impl   string     // config.RPCImplGRPC, RPCImplHTTP or RPCImplNone
	host   string     // --rpc_host, credentials masked
	// derivedKey: the HTTP RPC key was derived from --secret, which the
	// startup log says, as AnyCable's does.
	derivedKey bool
}

// newRPC builds the RPC client cfg asks for; with --norpc (or --rpc_impl
// none) there is none. Building makes no connection, so a back end that
// is down at startup does not stop the server. A value the transport
// refuses is an error naming its flag.
func newRPC(cfg *config.Config, m rpc.Metrics, log *slog.Logger) (rpcSetup, error) {
	r := cfg.RPC
	// The host is shown (startup line, /health) with its credentials
	// masked; the client gets it whole.
	s := rpcSetup{impl: r.Impl, host: redact.Credentials(r.Host)}
	log = log.With("context", "rpc")
	switch r.Impl {
	case config.RPCImplNone:
		return s, nil
	case config.RPCImplHTTP:
		key, derived := cfg.HTTPRPCSecret()
		if key == "" {
			// No key at all: tell the transport not to derive one itself.
			key = rpc.HTTPSecretNone
		}
		opts := rpc.HTTPOptions{
			URL: r.Host, Secret: key, Concurrency: r.Concurrency,
			HTTPTimeout: r.HTTPTimeout, RequestTimeout: r.RequestTimeout, CommandTimeout: r.CommandTimeout,
			MaxResponseBytes: int64(r.MaxRecvSize), Metrics: m,
		}
		if strings.HasPrefix(r.Host, "https://") && (!r.TLSVerify || r.TLSRootCA != "") {
			tlsCfg, err := rpc.TLSConfig(!r.TLSVerify, r.TLSRootCA)
			if err != nil {
				return s, fmt.Errorf("invalid value %q for --rpc_tls_root_ca: %v", r.TLSRootCA, trimRPC(err))
			}
			opts.TLSConfig = tlsCfg
		}
		client, err := rpc.NewHTTP(opts, log)
		if err != nil {
			return s, fmt.Errorf("invalid value %q for --rpc_host: %v", r.Host, trimRPC(err))
		}
		s.client, s.derivedKey = client, derived
		return s, nil
	}
	client, err := rpc.NewGRPC(rpc.GRPCOptions{
		Host: r.Host, Concurrency: r.Concurrency, CommandTimeout: r.CommandTimeout, RequestTimeout: r.RequestTimeout,
		MaxRecvSize: r.MaxRecvSize, MaxSendSize: r.MaxSendSize,
		EnableTLS: r.EnableTLS, TLSSkipVerify: !r.TLSVerify, TLSRootCA: r.TLSRootCA,
		Metrics: m,
	}, log)
	if err != nil {
		// The transport names the value it refused: the CA or the host.
		if r.TLSRootCA != "" && strings.Contains(err.Error(), "root CA") {
			return s, fmt.Errorf("invalid value %q for --rpc_tls_root_ca: %v", r.TLSRootCA, trimRPC(err))
		}
		return s, fmt.Errorf("invalid value %q for --rpc_host: %v", r.Host, trimRPC(err))
	}
	s.client = client
	return s, nil
}

// trimRPC drops the rpc package's "rpc: " prefix from an error that is
// already introduced by its flag.
func trimRPC(err error) string {
	return strings.TrimPrefix(err.Error(), "rpc: ")
}

// describe is AnyCable's startup line for the RPC controller.
func (s rpcSetup) describe(cfg *config.Config) string {
	if s.client == nil {
		return "no RPC configured"
	}
	r, app := cfg.RPC, cfg.Node.AppOptions
	concurrency, _ := rpc.NormalizeConcurrency(r.Concurrency)
	headers := strings.Join(app.Headers, ",")
	if headers == "" {
		headers = "<none>"
	}
	cookies := strings.Join(app.Cookies, ",")
	if cookies == "" {
		cookies = "<all>"
	}
	tls := r.EnableTLS || r.TLSRootCA != ""
	if s.impl == config.RPCImplHTTP {
		tls = strings.HasPrefix(r.Host, "https://")
	}
	return fmt.Sprintf("RPC controller initialized: %s (concurrency: %d, impl: %s, enable_tls: %t, proto_versions: %s, proxy_headers: %s, proxy_cookies: %s)",
		s.host, concurrency, s.impl, tls, rpc.ProtocolVersion, headers, cookies)
}

// close closes the client, if any.
func (s rpcSetup) close() {
	if s.client != nil {
		_ = s.client.Close()
	}
}
