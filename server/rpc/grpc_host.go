package rpc

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// grpcTarget is a parsed --rpc_host.
type grpcTarget struct {
	target   string           // what grpc.NewClient dials
	display  string           // what logs show
	resolver resolver.Builder // non-nil for grpc-list://, registered per client
}

// listSchemeSeq makes each grpc-list client's resolver scheme unique, so
// two clients never share a resolver (registration is per client anyway,
// via grpc.WithResolvers; the name just has to be valid and distinct).
var listSchemeSeq atomic.Uint64

// parseGRPCHost accepts AnyCable's --rpc_host forms (host:port,
// dns:///host:port, grpc-list://h1:p1,h2:p2, and grpc://host:port, which
// works here) and rejects anything else with an error naming the value,
// where AnyCable fails every call later without saying why.
func parseGRPCHost(host string) (grpcTarget, error) {
	if host == "" {
		host = DefaultGRPCHost
	}
	bad := func(why string) (grpcTarget, error) {
		return grpcTarget{}, fmt.Errorf("rpc: invalid gRPC host %q: %s (want host:port, dns:///host:port, grpc://host:port or grpc-list://h1:p1,h2:p2)", host, why)
	}
	switch {
	case strings.HasPrefix(host, "grpc-list://"):
		list := strings.Split(strings.TrimPrefix(host, "grpc-list://"), ",")
		addrs := make([]resolver.Address, 0, len(list))
		for _, a := range list {
			a = strings.TrimSpace(a)
			if err := checkHostPort(a); err != nil {
				return bad(err.Error())
			}
			addrs = append(addrs, resolver.Address{Addr: a})
		}
		scheme := "cablehub-rpc-list-" + strconv.FormatUint(listSchemeSeq.Add(1), 10)
		r := manual.NewBuilderWithScheme(scheme)
		r.InitialState(resolver.State{Addresses: addrs})
		return grpcTarget{target: scheme + ":///list", display: host, resolver: r}, nil
	case strings.HasPrefix(host, "dns:"):
		// dns:///host:port or dns://authority/host:port (a DNS server).
		rest := strings.TrimPrefix(host, "dns:")
		if !strings.HasPrefix(rest, "//") {
			return bad("dns target must be dns:///host:port")
		}
		rest = rest[2:]
		slash := strings.IndexByte(rest, '/')
		if slash < 0 {
			return bad("dns target must be dns:///host:port")
		}
		if err := checkHostPort(rest[slash+1:]); err != nil {
			return bad(err.Error())
		}
		return grpcTarget{target: host, display: host}, nil
	case strings.HasPrefix(host, "grpc://"):
		hp := strings.TrimSuffix(strings.TrimPrefix(host, "grpc://"), "/")
		if err := checkHostPort(hp); err != nil {
			return bad(err.Error())
		}
		return grpcTarget{target: "dns:///" + hp, display: host}, nil
	case strings.Contains(host, "://"):
		return bad("unsupported scheme")
	}
	if err := checkHostPort(host); err != nil {
		return bad(err.Error())
	}
	return grpcTarget{target: "dns:///" + host, display: host}, nil
}

// checkHostPort requires a non-empty host and a numeric port 1–65535.
func checkHostPort(hp string) error {
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		return err
	}
	if h == "" || strings.ContainsAny(h, "/ ") {
		return fmt.Errorf("bad host in %q", hp)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("bad port in %q", hp)
	}
	return nil
}
