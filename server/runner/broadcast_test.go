package runner

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cablehub/cablehub/server/config"
)

// TestPlanBroadcast: where the http adapter is served, by AnyCable's port
// rule; its own listener is optional only with the default adapter list.
func TestPlanBroadcast(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"default: no key, port 8090, optional", nil, []string{
			"--port localhost:8080 [health ws]",
			"--http_broadcast_port localhost:8090 [broadcast] optional",
		}},
		{"a key: the main port", []string{"--secret", "s"}, []string{
			"--port localhost:8080 [health ws api grpc broadcast]",
		}},
		{"explicit list: required", []string{"--broadcast_adapter", "http,redis"}, []string{
			"--port localhost:8080 [health ws]",
			"--http_broadcast_port localhost:8090 [broadcast]",
		}},
		{"--http_broadcast_port equal to --port", []string{"--http_broadcast_port", "8080"}, []string{
			"--port localhost:8080 [health ws broadcast]",
		}},
		{"a port of its own", []string{"--secret", "s", "--http_broadcast_port", "9999"}, []string{
			"--port localhost:8080 [health ws api grpc]",
			"--http_broadcast_port localhost:9999 [broadcast] optional",
		}},
		{"no http adapter", []string{"--broadcast_adapter", "redis"}, []string{
			"--port localhost:8080 [health ws]",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, s := range planBroadcast(parseConfig(t, c.args...), plan(parseConfig(t, c.args...))) {
				line := s.String()
				if s.optional {
					line += " optional"
				}
				got = append(got, line)
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

// healthOf fetches /health of r: the status and the decoded body.
func healthOf(t *testing.T, r *Runner) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get("http://" + r.MainAddr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// waitHealth polls /health until cond holds for its body, or 10 s pass.
func waitHealth(t *testing.T, r *Runner, cond func(body map[string]any) bool) (int, map[string]any) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := healthOf(t, r)
		if cond(body) {
			return code, body
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health never matched: %d %v", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func adapterState(body map[string]any, name string) map[string]any {
	b, _ := body["broadcast"].(map[string]any)
	s, _ := b[name].(map[string]any)
	return s
}

// TestBroadcastHealth: an unreachable Redis of the redis adapter is in
// /health's JSON; it fails /health only when the adapter was listed
// explicitly.
func TestBroadcastHealth(t *testing.T) {
	down := func(body map[string]any) bool { return adapterState(body, "redis")["status"] == "unavailable" }

	implicit := start(t, "--public", "--redis_url", "redis://127.0.0.1:1", "--http_broadcast_port", "0", "--secret", "s")
	code, body := waitHealth(t, implicit, down)
	if code != http.StatusOK || body["status"] != "ok" {
		t.Errorf("default list, Redis down: %d %v, want 200 ok", code, body)
	}
	redis := adapterState(body, "redis")
	if redis["required"] != false || redis["role"] != "connecting" || !strings.Contains(redis["error"].(string), "subscribing to __anycable__ in Redis: dial tcp 127.0.0.1:1") {
		t.Errorf("redis adapter state %v", redis)
	}
	if h := adapterState(body, "http"); h["status"] != "ok" {
		t.Errorf("http adapter state %v", h)
	}

	explicit := start(t, "--public", "--broadcast_adapter", "redis", "--redis_url", "redis://127.0.0.1:1")
	code, body = waitHealth(t, explicit, down)
	if code != http.StatusServiceUnavailable || body["status"] != "unavailable" {
		t.Errorf("explicit redis adapter, Redis down: %d %v, want 503", code, body)
	}
	if d, _ := body["down"].([]any); len(d) != 1 || d[0] != "broadcast:redis" {
		t.Errorf("down %v, want [broadcast:redis]", body["down"])
	}
}

// TestBroadcastPortTaken: with the default list, the http adapter's own
// port being taken is a WARN and a /health entry; listed explicitly, it
// fails the start.
func TestBroadcastPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	// The default list with --http_broadcast_port set is still the
	// default list: the port does not make the adapter required.
	r := start(t, "--norpc", "--noauth", "--http_broadcast_port", strconv.Itoa(port))
	code, body := healthOf(t, r)
	h := adapterState(body, "http")
	if code != 200 || h["status"] != "unavailable" || !strings.Contains(h["error"].(string), "--http_broadcast_port") {
		t.Errorf("default list, port taken: %d %v", code, body)
	}
	if r.BroadcastAddr != "" {
		t.Errorf("BroadcastAddr %q for a listener not bound", r.BroadcastAddr)
	}

	cfg, err := config.Parse([]string{"--host", "127.0.0.1", "--port", "0", "--broadcast_adapter", "http", "--http_broadcast_port", strconv.Itoa(port)},
		func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.Start(t.Context()); err == nil || !strings.Contains(err.Error(), "(--http_broadcast_port)") {
		t.Errorf("explicit http adapter, port taken: Start returned %v", err)
	}
}
