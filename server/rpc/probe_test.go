package rpc

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	anycablepb "github.com/cablehub/cablehub/gen/anycable"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// probeUntil polls probe until it reports want (nil or not), failing the
// test after a deadline; it returns the last result.
func probeUntil(t *testing.T, probe func(context.Context) error, reachable bool) error {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		err := probe(ctx)
		cancel()
		if (err == nil) == reachable {
			return err
		}
		if time.Now().After(deadline) {
			t.Fatalf("probe stayed %v, want reachable=%t", err, reachable)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serveAt serves a default backend on addr until stop is called.
func serveAt(t *testing.T, addr string) (stop func()) {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	anycablepb.RegisterRPCServer(srv, &backend{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	stop = func() {
		srv.Stop()
		<-done
	}
	t.Cleanup(stop)
	return stop
}

// TestGRPCProbeFollowsTheBackEnd: with nothing at the host the probe says
// unreachable (UNAVAILABLE) without any call being made; once a back end
// listens it says reachable well before gRPC's reconnect backoff would
// have retried; when the back end stops, unreachable again.
func TestGRPCProbeFollowsTheBackEnd(t *testing.T) {
	addr := freeAddr(t)
	g := newTestGRPC(t, GRPCOptions{Host: addr}, nil)
	err := probeUntil(t, g.Probe, false)
	if status.Code(err) != codes.Unavailable {
		t.Errorf("nothing listening: %v", err)
	}
	// Put the connection in gRPC's backoff several times over.
	for range 3 {
		probeUntil(t, g.Probe, false)
	}
	stop := serveAt(t, addr)
	probeUntil(t, g.Probe, true)
	stop()
	probeUntil(t, g.Probe, false)
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := g.Probe(t.Context()); status.Code(err) != codes.Unavailable {
		t.Errorf("closed client: %v", err)
	}
}

// TestGRPCProbeGivesUpWithItsContext: a probe whose context ends while the
// connection is still being made reports unreachable, not a hang.
func TestGRPCProbeGivesUpWithItsContext(t *testing.T) {
	// 192.0.2.1 (TEST-NET-1) is never routed: the dial hangs or fails.
	g := newTestGRPC(t, GRPCOptions{Host: "192.0.2.1:50051"}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := g.Probe(ctx); status.Code(err) != codes.Unavailable {
		t.Errorf("probe of an unroutable host: %v", err)
	}
}

// TestHTTPProbe: reachable while the back end's port accepts connections
// (no request is made), unreachable once it does not, and after Close.
func TestHTTPProbe(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { requests.Add(1) }))
	h := newTestHTTP(t, HTTPOptions{URL: srv.URL + "/_anycable"})
	if err := h.Probe(t.Context()); err != nil {
		t.Errorf("listening back end: %v", err)
	}
	srv.Close()
	if n := requests.Load(); n != 0 {
		t.Errorf("the probe made %d requests", n)
	}
	if err := h.Probe(t.Context()); status.Code(err) != codes.Unavailable {
		t.Errorf("closed back end: %v", err)
	}
	if !h.Reachable() {
		t.Error("Reachable before any call must be true")
	}
	_ = h.Close()
	if err := h.Probe(t.Context()); status.Code(err) != codes.Unavailable {
		t.Errorf("closed client: %v", err)
	}
}

// TestHTTPProbeUnresolvableHost: a host name that does not resolve is
// unreachable.
func TestHTTPProbeUnresolvableHost(t *testing.T) {
	h := newTestHTTP(t, HTTPOptions{URL: "https://cablehub-probe.invalid/rpc"})
	if err := h.Probe(t.Context()); status.Code(err) != codes.Unavailable {
		t.Errorf("unresolvable host: %v", err)
	}
}
