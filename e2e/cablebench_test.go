package e2e

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// buildBench builds the load tool for a test.
func buildBench(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "cablebench")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/cablehub/cablehub/cmd/cablebench").CombinedOutput()
	if err != nil {
		t.Fatalf("building cablebench: %v\n%s", err, out)
	}
	return bin
}

// benchResult is the part of cablebench's --json output the tests read.
type benchResult struct {
	Connected       int                `json:"connected"`
	Compressed      int                `json:"compressed"`
	Expected        int64              `json:"expected"`
	Delivered       int64              `json:"delivered"`
	RSSPerConnBytes float64            `json:"rss_per_conn_bytes"`
	LatencyMs       map[string]float64 `json:"latency_ms"`
	FanoutMs        map[string]float64 `json:"fanout_ms"`
}

func runBench(t *testing.T, bin string, args ...string) (benchResult, string, error) {
	t.Helper()
	// Killed well past its own --timeout, should it not keep to it.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append([]string{"--json", "--timeout", "60s"}, args...)...).Output()
	var res benchResult
	if err == nil {
		if jerr := json.Unmarshal(out, &res); jerr != nil {
			t.Fatalf("cablebench printed %q: %v", out, jerr)
		}
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return res, string(ee.Stderr), err
	}
	return res, string(out), err
}

// The load tool connects its clients (signed streams, extended protocol),
// publishes over REST and over gRPC in batches, and reports every delivery,
// latency percentiles and the server's memory.
func TestCablebenchDeliversEverything(t *testing.T) {
	bin := buildBench(t)
	s := startServer(t, nil, "--public", "--streams_secret", "sekret")
	pid := strconv.Itoa(s.cmd.Process.Pid)

	res, out, err := runBench(t, bin, "--url", "ws://"+s.Main+"/cable", "--api", "http://"+s.API+"/api",
		"--clients", "60", "--streams", "3", "--signed", "sekret", "--protocol", "actioncable-v1-ext-json",
		"--messages", "30", "--pid", pid, "--settle", "0s")
	if err != nil {
		t.Fatalf("REST run failed: %v\n%s", err, out)
	}
	// 30 messages round-robin over 3 streams, 20 clients on each.
	if res.Connected != 60 || res.Expected != 600 || res.Delivered != 600 {
		t.Fatalf("connected %d, delivered %d/%d; want 60 and 600/600", res.Connected, res.Delivered, res.Expected)
	}
	if res.LatencyMs["p99"] <= 0 || res.FanoutMs["max"] < res.FanoutMs["p50"] || res.RSSPerConnBytes == 0 {
		t.Fatalf("incomplete report: %+v", res)
	}

	res, out, err = runBench(t, bin, "--url", "ws://"+s.Main+"/cable", "--grpc", s.GRPC,
		"--clients", "10", "--messages", "40", "--batch", "5")
	if err != nil {
		t.Fatalf("gRPC run failed: %v\n%s", err, out)
	}
	if res.Delivered != 400 || res.Expected != 400 {
		t.Fatalf("gRPC batches delivered %d/%d, want 400/400", res.Delivered, res.Expected)
	}
}

// The load tool refuses non-loopback targets and unbounded runs, and fails
// when the server refuses its subscriptions.
func TestCablebenchRefuses(t *testing.T) {
	bin := buildBench(t)
	s := startServer(t, nil, "--public", "--streams_secret", "sekret")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--url", "ws://10.1.2.3:8080/cable"}, "not a loopback address"},
		{[]string{"--clients", "30000"}, "--clients must be"},
		{[]string{"--messages", "5"}, "--messages needs --api, --grpc, --broadcast or --publish pusher"},
		{[]string{"--rpc_channel", "BenchRPCChannel", "--rpc_user", "header"}, "--rpc_user must be cookie or query"},
		{[]string{"--rpc_channel", "BenchRPCChannel", "--signed", "sekret"}, "--signed is for $pubsub streams"},
		{[]string{"--url", "ws://" + s.Main + "/cable", "--clients", "3", "--signed", "wrong"}, "reject_subscription"},
	} {
		_, out, err := runBench(t, bin, tc.args...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("%v: err %v, output %q; want a failure naming %q", tc.args, err, out, tc.want)
		}
	}
}

// The load tool drives an application channel through the server's RPC,
// over gRPC and over HTTP, with its own minimal back end: every client is
// welcomed by the back end's Connect and confirmed by its subscribe.
func TestCablebenchThroughRPC(t *testing.T) {
	bin := buildBench(t)
	backend := startPeer(t, "rpc-backend", exec.Command(bin, "rpc-backend", "-grpc", "127.0.0.1:0", "-http", "127.0.0.1:0", "-for", "5m"))
	line := backend.waitLine(t, 30*time.Second, func(l string) bool { return strings.HasPrefix(l, "rpc-backend listening:") })
	f := strings.Fields(line) // rpc-backend listening: grpc <addr> http <url>
	if len(f) != 6 {
		t.Fatalf("unexpected line %q", line)
	}
	for _, host := range []string{f[3], f[5]} {
		s := startServer(t, nil, "--rpc_host", host)
		res, out, err := runBench(t, bin, "--url", "ws://"+s.Main+"/cable", "--clients", "50", "--rpc_channel", "BenchRPCChannel")
		if err != nil || res.Connected != 50 {
			t.Fatalf("through %s: connected %d/50: %v\n%s", host, res.Connected, err, out)
		}
	}
}

// TestCablebenchCompressed: with --compress the clients offer
// permessage-deflate; a server with --enable_ws_compression agrees with
// each, and every padded publication arrives (inflated by the clients).
func TestCablebenchCompressed(t *testing.T) {
	bin := buildBench(t)
	s := startServer(t, nil, "--public", "--enable_ws_compression")
	res, out, err := runBench(t, bin, "--url", "ws://"+s.Main+"/cable", "--api", "http://"+s.API+"/api",
		"--clients", "40", "--messages", "30", "--payload_size", "2000", "--compress", "--settle", "0s")
	if err != nil {
		t.Fatalf("run failed: %v\n%s", err, out)
	}
	if res.Connected != 40 || res.Compressed != 40 || res.Delivered != 1200 || res.Expected != 1200 {
		t.Fatalf("connected %d (compressed %d), delivered %d/%d; want 40 (40), 1200/1200", res.Connected, res.Compressed, res.Delivered, res.Expected)
	}
}
