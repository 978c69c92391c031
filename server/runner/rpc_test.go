package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	anycablepb "github.com/cablehub/cablehub/gen/anycable"
	"github.com/cablehub/cablehub/server/config"
)

// TestRPCValuesTheTransportRefuses asserts a value that parses but that
// the RPC transport refuses stops the server with one line naming the
// flag, before anything listens.
func TestRPCValuesTheTransportRefuses(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--rpc_host", "rpc-without-port"}, "--rpc_host"},
		{[]string{"--rpc_host", "ftp://app/rpc"}, "--rpc_host"},
		{[]string{"--rpc_host", "grpc-list://a:1,b"}, "--rpc_host"},
		{[]string{"--rpc_impl", "http"}, "--rpc_host"},
		{[]string{"--rpc_impl", "grpc", "--rpc_host", "http://app:3000/rpc"}, "--rpc_host"},
		{[]string{"--rpc_host", "http://"}, "--rpc_host"},
		{[]string{"--rpc_tls_root_ca", "/nonexistent/ca.pem"}, "--rpc_tls_root_ca"},
		{[]string{"--rpc_host", "https://app/rpc", "--rpc_tls_root_ca", "-----BEGIN CERTIFICATE-----\nnot a cert"}, "--rpc_tls_root_ca"},
	}
	for _, c := range cases {
		cfg, err := config.Parse(c.args, func(string) string { return "" }, io.Discard)
		if err != nil {
			t.Fatalf("%v: config: %v", c.args, err)
		}
		r, err := New(cfg, slog.New(slog.DiscardHandler))
		if err == nil {
			r.Shutdown(context.Background())
			t.Errorf("%v: accepted", c.args)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: %q, want one line naming %s", c.args, err, c.want)
		}
	}
}

// health is /health as a client sees it.
type healthReply struct {
	code int
	body struct {
		Status string         `json:"status"`
		Down   []string       `json:"down"`
		RPC    map[string]any `json:"rpc"`
	}
	raw string
}

func getHealth(t *testing.T, r *Runner) healthReply {
	t.Helper()
	resp, err := http.Get("http://" + r.MainAddr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	h := healthReply{code: resp.StatusCode, raw: string(raw)}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if err := json.Unmarshal(raw, &h.body); err != nil {
		t.Fatalf("health body %s: %v", raw, err)
	}
	return h
}

// waitReachable polls /health until its rpc.reachable is want.
func waitReachable(t *testing.T, r *Runner, want bool) healthReply {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h := getHealth(t, r)
		if h.body.RPC["reachable"] == want {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health stayed %d %s, want rpc reachable %t", h.code, h.raw, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serveRPC runs a gRPC RPC back end (every method unimplemented: /health
// makes no call) on addr until the returned stop.
func serveRPC(t *testing.T, addr string) (stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	anycablepb.RegisterRPCServer(srv, anycablepb.UnimplementedRPCServer{})
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return srv.Stop
}

// TestHealthReportsTheGRPCBackEnd asserts /health says whether the gRPC
// back end can be reached, and stays 200 while it cannot: a server used
// standalone, with nothing at --rpc_host, is healthy.
func TestHealthReportsTheGRPCBackEnd(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	r := start(t, "--public", "--rpc_host", addr)
	h := waitReachable(t, r, false)
	if h.code != 200 || h.body.Status != "ok" || h.body.RPC["impl"] != "grpc" || h.body.RPC["host"] != addr || h.body.RPC["error"] == nil {
		t.Errorf("nothing at the RPC host: %d %s", h.code, h.raw)
	}
	stop := serveRPC(t, addr)
	if h := waitReachable(t, r, true); h.code != 200 || h.body.RPC["error"] != nil {
		t.Errorf("back end up: %d %s", h.code, h.raw)
	}
	stop()
	waitReachable(t, r, false)
}

// TestHealthReportsTheHTTPBackEnd: the same for HTTP RPC, chosen by the
// URL's scheme.
func TestHealthReportsTheHTTPBackEnd(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/_anycable"
	r := start(t, "--public", "--rpc_host", url)
	if h := waitReachable(t, r, true); h.code != 200 || h.body.RPC["impl"] != "http" || h.body.RPC["host"] != url {
		t.Errorf("HTTP back end up: %d %s", h.code, h.raw)
	}
	srv.Close()
	if h := waitReachable(t, r, false); h.code != 200 {
		t.Errorf("HTTP back end down: %d %s", h.code, h.raw)
	}
}

// TestHealthWithoutRPC: --norpc shows as impl none; a dependency that is
// down still makes /health 503, with the RPC state alongside.
func TestHealthWithoutRPC(t *testing.T) {
	r := start(t, "--public", "--norpc")
	if h := getHealth(t, r); h.code != 200 || h.body.Status != "ok" || len(h.body.RPC) != 1 || h.body.RPC["impl"] != "none" {
		t.Errorf("--norpc: %d %s", h.code, h.raw)
	}
	redisURL := fmt.Sprintf("redis://127.0.0.1:%d/0", freePort(t))
	r = start(t, "--public", "--broker", "none", "--pubsub", "redis", "--redis_url", redisURL)
	h := getHealth(t, r)
	if h.code != 503 || h.body.Status != "unavailable" || len(h.body.Down) != 1 || h.body.Down[0] != "redis" || h.body.RPC["impl"] != "grpc" {
		t.Errorf("Redis down: %d %s", h.code, h.raw)
	}
}

// TestRPCClientClosedAtShutdown: the RPC client lives until the runner
// has shut down, then it is closed.
func TestRPCClientClosedAtShutdown(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	cfg, err := config.Parse([]string{"--host", "127.0.0.1", "--port", "0", "--public", "--rpc_host", srv.URL}, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	client := r.deps.rpc.client
	if err := client.Probe(t.Context()); err != nil {
		t.Fatalf("before shutdown: %v", err)
	}
	if err := r.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := client.Probe(t.Context()); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("after shutdown: %v", err)
	}
}
