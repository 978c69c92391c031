package runner

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/cablehub/cablehub/server/config"
)

// part is one thing a listener serves.
type part int

const (
	partHealth part = iota
	partWS
	// partAPI is the REST gateway at --api_path.
	partAPI
	// partGRPC is the gRPC API: on an HTTP listener it shares the port with
	// the REST API (h2c, or grpc-go's transport for connections that open
	// with the HTTP/2 preface); on --grpc_port it is all the listener serves.
	partGRPC
	partMetrics
	partPprof
	// partBroadcast is the http broadcast adapter at --http_broadcast_path.
	partBroadcast
	// partPusherAPI is the Pusher HTTP API at /apps/<id>/*.
	partPusherAPI
	// partAdmin is the admin console at --admin_path, beside the REST API
	// it calls (same origin, so its session cookie reaches the API).
	partAdmin
)

var partNames = [...]string{"health", "ws", "api", "grpc", "metrics", "pprof", "broadcast", "pusher", "admin"}

func (p part) String() string { return partNames[p] }

// listenerSpec is one listener the configuration asks for.
type listenerSpec struct {
	// flag names the port's flag, in errors: "--port", "--api_port"...
	flag string
	host string
	port int
	// grpcOnly marks the dedicated --grpc_port, served by grpc-go alone;
	// every other listener is served by net/http.
	grpcOnly bool
	// optional marks a listener the process runs without when its port
	// cannot be bound (bind skips it; see planBroadcast).
	optional bool
	parts    []part
}

func (s listenerSpec) serves(p part) bool { return slices.Contains(s.parts, p) }

// String is the spec as the table test reads it: "--port 127.0.0.1:0 [health ws]".
func (s listenerSpec) String() string {
	names := make([]string, len(s.parts))
	for i, p := range s.parts {
		names[i] = p.String()
	}
	return fmt.Sprintf("%s %s [%s]", s.flag, net.JoinHostPort(s.host, strconv.Itoa(s.port)), strings.Join(names, " "))
}

// plan lists the listeners cfg asks for, the main one first, and what each
// serves. The main listener always exists and serves health and WebSocket,
// plus whatever has no port of its own: the REST API and gRPC unless
// --api_port or --grpc_port, metrics unless a --metrics_port other than
// --port. With the REST API off (config.APIEnabled), gRPC is served only on
// a --grpc_port.
func plan(cfg *config.Config) []listenerSpec {
	specs := []listenerSpec{{flag: "--port", host: cfg.Server.Host, port: cfg.Server.Port, parts: []part{partHealth, partWS}}}
	api := 0 // the listener of the REST API and the shared gRPC
	if cfg.APIEnabled() {
		if cfg.API.Port != 0 {
			specs = append(specs, listenerSpec{flag: "--api_port", host: cfg.Server.Host, port: cfg.API.Port})
			api = len(specs) - 1
		}
		specs[api].parts = append(specs[api].parts, partAPI)
		if cfg.AdminServed() {
			specs[api].parts = append(specs[api].parts, partAdmin)
		}
	}
	if cfg.API.GRPCPort != 0 {
		specs = append(specs, listenerSpec{flag: "--grpc_port", host: cfg.Server.Host, port: cfg.API.GRPCPort, grpcOnly: true, parts: []part{partGRPC}})
	} else if cfg.APIEnabled() {
		specs[api].parts = append(specs[api].parts, partGRPC)
	}
	if cfg.Metrics.Path != "" {
		if cfg.Metrics.Port != 0 && cfg.Metrics.Port != cfg.Server.Port {
			host := cfg.Metrics.Host
			if host == "" {
				host = cfg.Server.Host
			}
			specs = append(specs, listenerSpec{flag: "--metrics_port", host: host, port: cfg.Metrics.Port, parts: []part{partMetrics}})
		} else {
			specs[0].parts = append(specs[0].parts, partMetrics)
		}
	}
	if cfg.Server.Pprof {
		specs[0].parts = append(specs[0].parts, partPprof)
	}
	if cfg.Pusher.Enabled() {
		if cfg.Pusher.APIPort != 0 {
			specs = append(specs, listenerSpec{flag: "--pusher_api_port", host: cfg.Server.Host, port: cfg.Pusher.APIPort, parts: []part{partPusherAPI}})
		} else {
			specs[0].parts = append(specs[0].parts, partPusherAPI)
		}
	}
	return specs
}

// served reports whether any listener of specs serves p.
func served(specs []listenerSpec, p part) bool {
	return slices.ContainsFunc(specs, func(s listenerSpec) bool { return s.serves(p) })
}

// bound is a listener with the address it is announced at: its spec's host
// with the port actually bound (port 0 picks one).
type bound struct {
	spec listenerSpec
	ln   net.Listener
	addr string
}

// skippedListener is an optional listener that could not be bound.
type skippedListener struct {
	spec listenerSpec
	err  error
}

// bind binds every listener of specs, in order. When one cannot be bound,
// every listener bound before it is closed, and the error names the
// address and the flag of the one that failed; an optional one is skipped
// instead, and returned with its error.
func bind(specs []listenerSpec) ([]bound, []skippedListener, error) {
	var done cleanup
	defer done.run()
	out := make([]bound, 0, len(specs))
	var skipped []skippedListener
	for _, s := range specs {
		ln, err := listen(s)
		if err != nil && s.optional {
			skipped = append(skipped, skippedListener{s, err})
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		done.add(func() { ln.Close() })
		port := ln.Addr().(*net.TCPAddr).Port
		out = append(out, bound{spec: s, ln: ln, addr: net.JoinHostPort(s.host, strconv.Itoa(port))})
	}
	done.disarm()
	return out, skipped, nil
}

func listen(s listenerSpec) (net.Listener, error) {
	addr := net.JoinHostPort(s.host, strconv.Itoa(s.port))
	// No TCP keep-alive probes: they cost four setsockopt calls per
	// accepted connection, WebSocket connections carry pings every few
	// seconds (a dead peer fails their writes), and idle HTTP connections
	// are closed by the server's IdleTimeout.
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s (%s): %w", addr, s.flag, err)
	}
	return ln, nil
}

// cleanup is a stack of undo steps for a sequence that acquires resources
// one by one: run undoes them newest first, unless disarm was called
// because the sequence succeeded and its resources are handed on.
type cleanup struct{ steps []func() }

func (c *cleanup) add(f func()) { c.steps = append(c.steps, f) }

func (c *cleanup) disarm() { c.steps = nil }

func (c *cleanup) run() {
	for i := len(c.steps) - 1; i >= 0; i-- {
		c.steps[i]()
	}
	c.steps = nil
}
