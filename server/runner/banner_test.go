package runner

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cablehub/cablehub/server/config"
)

// logLines is a slog handler keeping each record as "LEVEL msg k=v ...".
type logLines struct {
	mu    *sync.Mutex
	lines *[]string
	attrs []slog.Attr
}

func newLogLines() logLines { return logLines{mu: &sync.Mutex{}, lines: &[]string{}} }

func (h logLines) Enabled(context.Context, slog.Level) bool { return true }
func (h logLines) WithGroup(string) slog.Handler            { return h }
func (h logLines) WithAttrs(as []slog.Attr) slog.Handler {
	h.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return h
}

func (h logLines) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	for _, a := range h.attrs {
		fmt.Fprintf(&b, " %s=%s", a.Key, a.Value)
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%s", a.Key, a.Value)
		return true
	})
	h.mu.Lock()
	*h.lines = append(*h.lines, b.String())
	h.mu.Unlock()
	return nil
}

func (h logLines) get() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), *h.lines...)
}

var (
	pidLine = regexp.MustCompile(`\(pid: \d+, gomaxprocs: \d+\)`)
	epoch   = regexp.MustCompile(`epoch: [^,]+`)
)

// TestStartupBanner pins the startup log lines at the default level: the
// end-to-end and JavaScript suites, and tools waiting for a server, parse
// them. Bound addresses are shown as {MAIN}, {API}, {GRPC} and {METRICS}.
func TestStartupBanner(t *testing.T) {
	api, grpcPort, metricsPort, bcast := freePort(t), freePort(t), freePort(t), freePort(t)
	// The file sets --noauth and misspells a key: the file is named, then
	// the key.
	file := filepath.Join(t.TempDir(), "anycable.toml")
	if err := os.WriteFile(file, []byte("noauth = true\n[rpc]\nhots = \"typo:1\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"public, shared", []string{"--public", "--broadcast_adapter", "http", "--http_broadcast_port", strconv.Itoa(bcast), "--ds"}, []string{
			"INFO Starting Cablehub VERSION (pid: PID) nodeid=n1",
			"WARN Server is running in the public mode",
			"INFO connection authentication is disabled",
			"WARN signed streams cannot be used (every signed_stream_name is rejected): no --streams_secret or --secret is set",
			fmt.Sprintf("WARN the http broadcast adapter on port %d accepts broadcasts without a token (no --broadcast_key or --secret): anyone who can reach it can publish; set --secret or --broadcast_key, or --broadcast_adapter without http", bcast),
			"WARN --public without --api_secret or --secret: the API on the main port accepts calls without a token",
			"INFO Using in-memory broker (epoch: EPOCH, history limit: 100, history ttl: 300s, sessions ttl: 300s, presence ttl: 15s)",
			"INFO Using local pub/sub (single node)",
			"INFO RPC controller initialized: localhost:50051 (concurrency: 28, impl: grpc, enable_tls: false, proto_versions: v1, proxy_headers: cookie, proxy_cookies: <all>) context=rpc",
			"INFO Accept broadcast requests at http://{BCAST}/_broadcast (no authorization) context=broadcast provider=http",
			"WARN API server is running without authentication",
			"INFO Handle API requests at http://{MAIN}/api (no authorization) context=api",
			"INFO Handle gRPC API requests at {MAIN} (no authorization, h2c, shared with the REST API) context=grpc",
			"INFO Handle WebSocket connections at http://{MAIN}/cable (clients connect to ws://{MAIN}/cable)",
			"INFO Handle health requests at http://{MAIN}/health",
			"INFO Handle Durable Streams requests at http://{MAIN}/ds/*",
		}},
		{"dedicated ports", []string{"--secret", "s", "--broker", "none", "--api_port", strconv.Itoa(api), "--grpc_port", strconv.Itoa(grpcPort),
			"--metrics_http", "/metrics", "--metrics_port", strconv.Itoa(metricsPort), "--api_cors_headers", "--path", "/cable,/ws", "--broadcast_adapter="}, []string{
			"INFO Starting Cablehub VERSION (pid: PID) nodeid=n1",
			"INFO JWT authentication is enabled (param: jid, enforced: false)",
			"INFO Using no-op broker (no history, presence or session restore)",
			"INFO Using local pub/sub (single node)",
			"INFO RPC controller initialized: localhost:50051 (concurrency: 28, impl: grpc, enable_tls: false, proto_versions: v1, proxy_headers: cookie, proxy_cookies: <all>) context=rpc",
			"INFO Handle API requests at http://{API}/api (authorization required, CORS enabled) context=api",
			"INFO Handle gRPC API requests at {GRPC} (authorization required, dedicated listener) context=grpc",
			"INFO Handle WebSocket connections at http://{MAIN}/cable (clients connect to ws://{MAIN}/cable)",
			"INFO Handle WebSocket connections at http://{MAIN}/ws (clients connect to ws://{MAIN}/ws)",
			"INFO Serve metrics at http://{METRICS}/metrics",
			"INFO Handle health requests at http://{MAIN}/health",
		}},
		{"no API, gRPC port, metrics on main", []string{"--jwt_secret", "j", "--enforce_jwt", "--broker", "none", "--grpc_port", strconv.Itoa(grpcPort),
			"--metrics_http", "/m", "--pprof", "--broadcast_key", "k", "--redis_channel", "bc"}, []string{
			"INFO Starting Cablehub VERSION (pid: PID) nodeid=n1",
			"INFO Connecting to Redis server localhost:6379 (TLS: off) context=redis",
			"INFO JWT authentication is enabled (param: jid, enforced: true)",
			"WARN signed streams cannot be used (every signed_stream_name is rejected): no --streams_secret or --secret is set",
			"WARN the gRPC API on --grpc_port accepts calls without a token (no --api_secret or --secret): anyone who can reach that port can publish and disconnect clients",
			"INFO Using no-op broker (no history, presence or session restore)",
			"INFO Using local pub/sub (single node)",
			"INFO Starting Redis broadcaster at localhost:6379 (channel: bc) context=broadcast provider=redis",
			"INFO RPC controller initialized: localhost:50051 (concurrency: 28, impl: grpc, enable_tls: false, proto_versions: v1, proxy_headers: cookie, proxy_cookies: <all>) context=rpc",
			"INFO Accept broadcast requests at http://{MAIN}/_broadcast (authorization required) context=broadcast provider=http",
			"INFO Handle gRPC API requests at {GRPC} (no authorization, dedicated listener) context=grpc",
			"INFO Handle WebSocket connections at http://{MAIN}/cable (clients connect to ws://{MAIN}/cable)",
			"INFO Serve metrics at http://{MAIN}/m",
			"INFO Handle health requests at http://{MAIN}/health",
		}},
		{"HTTP RPC with a derived key", []string{"--secret", "s", "--broker", "none", "--rpc_host", "http://127.0.0.1:1/_anycable",
			"--rpc_concurrency", "5", "--headers", "Cookie,X-Api-Key", "--proxy-cookies", "_session"}, []string{
			"INFO Starting Cablehub VERSION (pid: PID) nodeid=n1",
			"INFO Connecting to Redis server localhost:6379 (TLS: off) context=redis",
			"INFO JWT authentication is enabled (param: jid, enforced: false)",
			"INFO Using no-op broker (no history, presence or session restore)",
			"INFO Using local pub/sub (single node)",
			"INFO auto-generated authorization secret from the application secret context=broadcast provider=http",
			"INFO Starting Redis broadcaster at localhost:6379 (channel: __anycable__) context=broadcast provider=redis",
			"INFO auto-generated authorization secret from the application secret context=rpc",
			"INFO RPC controller initialized: http://127.0.0.1:1/_anycable (concurrency: 5, impl: http, enable_tls: false, proto_versions: v1, proxy_headers: cookie,x-api-key, proxy_cookies: _session) context=rpc",
			"INFO Accept broadcast requests at http://{MAIN}/_broadcast (authorization required) context=broadcast provider=http",
			"INFO Handle API requests at http://{MAIN}/api (authorization required) context=api",
			"INFO Handle gRPC API requests at {MAIN} (authorization required, h2c, shared with the REST API) context=grpc",
			"INFO Handle WebSocket connections at http://{MAIN}/cable (clients connect to ws://{MAIN}/cable)",
			"INFO Handle health requests at http://{MAIN}/health",
		}},
		{"no RPC", []string{"--secret", "s", "--broker", "none", "--norpc", "--noauth", "--broadcast_adapter", "http", "--broadcast_key", "none",
			"--http_broadcast_port", strconv.Itoa(bcast)}, []string{
			"INFO Starting Cablehub VERSION (pid: PID) nodeid=n1",
			"INFO JWT authentication is enabled (param: jid, enforced: false)",
			"INFO connection authentication is disabled",
			fmt.Sprintf("WARN the http broadcast adapter on port %d accepts broadcasts without a token (--broadcast_key none): anyone who can reach it can publish; set --secret or --broadcast_key, or --broadcast_adapter without http", bcast),
			"INFO Using no-op broker (no history, presence or session restore)",
			"INFO Using local pub/sub (single node)",
			"INFO no RPC configured context=rpc",
			"INFO Accept broadcast requests at http://{BCAST}/_broadcast (no authorization) context=broadcast provider=http",
			"INFO Handle API requests at http://{MAIN}/api (authorization required) context=api",
			"INFO Handle gRPC API requests at {MAIN} (authorization required, h2c, shared with the REST API) context=grpc",
			"INFO Handle WebSocket connections at http://{MAIN}/cable (clients connect to ws://{MAIN}/cable)",
			"INFO Handle health requests at http://{MAIN}/health",
		}},
		{"configuration file", []string{"--config-path", file, "--secret", "s", "--broker", "none", "--norpc", "--broadcast_adapter="}, []string{
			"INFO Starting Cablehub VERSION (pid: PID) nodeid=n1",
			"INFO Using configuration from file: " + file,
			"WARN unknown key [rpc] hots in " + file + ": no Cablehub or AnyCable setting reads it; ignored (did you mean [rpc] host?)",
			"INFO JWT authentication is enabled (param: jid, enforced: false)",
			"INFO connection authentication is disabled",
			"INFO Using no-op broker (no history, presence or session restore)",
			"INFO Using local pub/sub (single node)",
			"INFO no RPC configured context=rpc",
			"INFO Handle API requests at http://{MAIN}/api (authorization required) context=api",
			"INFO Handle gRPC API requests at {MAIN} (authorization required, h2c, shared with the REST API) context=grpc",
			"INFO Handle WebSocket connections at http://{MAIN}/cable (clients connect to ws://{MAIN}/cable)",
			"INFO Handle health requests at http://{MAIN}/health",
		}},
		{"deployment flags", []string{"--secret", "s", "--broker", "none", "--norpc", "--noauth", "--presets", "heroku,broker",
			"--sse", "--enable_ws_compression", "--statsd_host", "127.0.0.1:1", "--metrics_tags", "env:prod,app:x",
			"--metrics_log", "--metrics_log_filter", "clients_num", "--metrics_rotate_interval", "1m"}, []string{
			"INFO Starting Cablehub VERSION (pid: PID) nodeid=n1",
			"INFO Loaded presets: heroku,broker context=config",
			"INFO Connecting to Redis server localhost:6379 (TLS: off) context=redis",
			"INFO JWT authentication is enabled (param: jid, enforced: false)",
			"INFO connection authentication is disabled",
			"INFO Using no-op broker (no history, presence or session restore)",
			"INFO Using local pub/sub (single node)",
			"INFO auto-generated authorization secret from the application secret context=broadcast provider=http",
			"INFO Starting Redis broadcaster at localhost:6379 (channel: __anycable__) context=broadcast provider=redis",
			"INFO Send StatsD metrics to 127.0.0.1:1 every 60s (prefix: anycable_go., tags format: datadog, tags: app:x,env:prod)",
			"INFO Log metrics every 60s (fields: clients_num)",
			"INFO no RPC configured context=rpc",
			"INFO Accept broadcast requests at http://{MAIN}/_broadcast (authorization required) context=broadcast provider=http",
			"INFO Handle API requests at http://{MAIN}/api (authorization required) context=api",
			"INFO Handle gRPC API requests at {MAIN} (authorization required, h2c, shared with the REST API) context=grpc",
			"INFO Handle WebSocket connections at http://{MAIN}/cable (clients connect to ws://{MAIN}/cable)",
			"INFO Handle health requests at http://{MAIN}/health",
			"INFO Handle SSE requests at http://{MAIN}/events",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := config.Parse(append([]string{"--host", "127.0.0.1", "--port", "0", "--node_id", "n1"}, c.args...), func(string) string { return "" }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			logs := newLogLines()
			r, err := New(cfg, slog.New(logs))
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			// The lines at the default level (info) and above, but for the
			// redis broadcast adapter's reports on its connection, which
			// come when they come (a WARN where no Redis runs).
			var got []string
			for _, l := range logs.get() {
				if !strings.HasPrefix(l, "DEBUG ") && !(strings.Contains(l, "provider=redis") && !strings.Contains(l, "Starting Redis broadcaster")) {
					got = append(got, l)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := r.Shutdown(ctx); err != nil {
				t.Error(err)
			}
			scrub := strings.NewReplacer("Cablehub "+Version+" ", "Cablehub VERSION ")
			addrs := map[string]string{"MAIN": r.MainAddr, "API": r.APIAddr, "GRPC": r.GRPCAddr, "METRICS": r.MetricsAddr, "BCAST": r.BroadcastAddr}
			for i, l := range got {
				l = pidLine.ReplaceAllString(scrub.Replace(l), "(pid: PID)")
				l = epoch.ReplaceAllString(l, "epoch: EPOCH")
				got[i] = l
			}
			want := make([]string, len(c.want))
			for i, w := range c.want {
				for k, addr := range addrs {
					w = strings.ReplaceAll(w, "{"+k+"}", addr)
				}
				want[i] = w
			}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("startup lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}
