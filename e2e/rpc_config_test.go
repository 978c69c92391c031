package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// The RPC back end's configuration as an operator sees it: startup errors
// and log lines, /health and /metrics. Calls through the back end are
// covered by the serverless-js and Ruby suites.

// TestRPCConfigBadValuesExitWithOneLine: a --disconnect_mode typo (which
// AnyCable takes silently as "never") and an --rpc_host the transport
// cannot use stop the server with one line naming the flag.
func TestRPCConfigBadValuesExitWithOneLine(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"disconnect mode flag", nil, []string{"--disconnect_mode", "bogus"}, "--disconnect_mode"},
		{"disconnect mode env", []string{"ANYCABLE_DISCONNECT_MODE=sometimes"}, nil, "ANYCABLE_DISCONNECT_MODE"},
		{"rpc host without port", nil, []string{"--rpc_host", "rpc-app"}, "--rpc_host"},
		{"http impl with a gRPC host", []string{"ANYCABLE_RPC_IMPL=http"}, nil, "--rpc_host"},
		{"negative recv size", nil, []string{"--rpc_max_call_recv_size=-1"}, "--rpc_max_call_recv_size"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, c.env, append([]string{"--port", "0"}, c.args...)...)
			if code == 0 {
				t.Fatalf("exit 0\nstdout: %s\nstderr: %s", stdout, stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], c.want) {
				t.Errorf("stderr %q: want one line naming %s", stderr, c.want)
			}
		})
	}
}

// healthRPC reads /health, which must answer 200 with JSON, and returns
// its "rpc" object.
func healthRPC(t *testing.T, s *server) map[string]any {
	t.Helper()
	r := do(t, "GET", "http://"+s.Main+"/health", "")
	if r.Status != 200 || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("/health: %d %s %s", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	var body struct {
		Status string         `json:"status"`
		RPC    map[string]any `json:"rpc"`
	}
	if err := json.Unmarshal([]byte(r.Body), &body); err != nil || body.Status != "ok" {
		t.Fatalf("/health body %s: %v", r.Body, err)
	}
	return body.RPC
}

// TestRPCConfigHTTPFromEnvironment: ANYCABLE_RPC_HOST with an http:// URL
// selects HTTP RPC, the startup log says so (with the key derived from
// --secret), and /health reports the back end unreachable while nothing
// listens there, reachable once something does, and stays 200 throughout.
func TestRPCConfigHTTPFromEnvironment(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/_anycable", port)
	s := startServer(t, []string{"ANYCABLE_RPC_HOST=" + url}, "--public", "--secret", "s")
	logs := s.Logs()
	for _, want := range []string{
		`msg="RPC controller initialized: ` + url + ` (concurrency: 28, impl: http, enable_tls: false, proto_versions: v1, proxy_headers: cookie, proxy_cookies: <all>)"`,
		`msg="auto-generated authorization secret from the application secret"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("startup log lacks %s:\n%s", want, logs)
		}
	}
	rpc := healthRPC(t, s)
	if rpc["impl"] != "http" || rpc["host"] != url || rpc["reachable"] != false || rpc["error"] == nil {
		t.Errorf("nothing at the RPC host: %v", rpc)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(10 * time.Second)
	for rpc = healthRPC(t, s); rpc["reachable"] != true; rpc = healthRPC(t, s) {
		if time.Now().After(deadline) {
			t.Fatalf("/health did not see the back end come up: %v", rpc)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRPCConfigDefaultsAndNoRPC: without flags RPC is gRPC at
// localhost:50051, as in AnyCable, and a server with nothing there is
// healthy; --norpc logs "no RPC configured" and /health says impl none.
func TestRPCConfigDefaultsAndNoRPC(t *testing.T) {
	t.Parallel()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s := startServer(t, nil, "--public", "--rpc_host", addr)
	if !strings.Contains(s.Logs(), `msg="RPC controller initialized: `+addr+` (concurrency: 28, impl: grpc,`) {
		t.Errorf("startup log:\n%s", s.Logs())
	}
	if rpc := healthRPC(t, s); rpc["impl"] != "grpc" || rpc["host"] != addr || rpc["reachable"] != false {
		t.Errorf("nothing at the gRPC host: %v", rpc)
	}
	n := startServer(t, []string{"ANYCABLE_NORPC=true"}, "--public")
	if !strings.Contains(n.Logs(), `msg="no RPC configured"`) || strings.Contains(n.Logs(), "RPC controller initialized") {
		t.Errorf("--norpc startup log:\n%s", n.Logs())
	}
	if rpc := healthRPC(t, n); len(rpc) != 1 || rpc["impl"] != "none" {
		t.Errorf("--norpc /health rpc: %v", rpc)
	}
}

// TestRPCConfigMetrics: AnyCable's rpc_* series and the disconnect queue
// gauge are on /metrics from the start.
func TestRPCConfigMetrics(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public", "--metrics_http", "/metrics")
	r := do(t, "GET", "http://"+s.Main+"/metrics", "")
	if r.Status != 200 {
		t.Fatalf("/metrics: %d", r.Status)
	}
	for _, name := range []string{"rpc_call_total", "rpc_retries_total", "rpc_error_total", "rpc_timeout_total", "rpc_canceled_total", "rpc_pending_num", "disconnect_queue_size"} {
		if !strings.Contains(r.Body, "\nanycable_go_"+name+" 0\n") {
			t.Errorf("/metrics lacks anycable_go_%s 0", name)
		}
	}
}
