package runner

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/cablehub/cablehub/server/config"
)

func parseConfig(t *testing.T, args ...string) *config.Config {
	t.Helper()
	cfg, err := config.Parse(args, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestPlan asserts which listeners exist for which flags and what each one
// serves.
func TestPlan(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"defaults: API off without a secret", nil, []string{
			"--port localhost:8080 [health ws]",
		}},
		{"secret: API and gRPC on the main port", []string{"--secret", "s"}, []string{
			"--port localhost:8080 [health ws api grpc]",
		}},
		{"public", []string{"--public", "--host", "0.0.0.0", "--port", "9000"}, []string{
			"--port 0.0.0.0:9000 [health ws api grpc]",
		}},
		{"api_port alone enables the API", []string{"--api_port", "8081"}, []string{
			"--port localhost:8080 [health ws]",
			"--api_port localhost:8081 [api grpc]",
		}},
		{"the admin console beside the API on its port", []string{"--secret", "s", "--admin", "--api_port", "8081"}, []string{
			"--port localhost:8080 [health ws]",
			"--api_port localhost:8081 [api admin grpc]",
		}},
		{"the admin console without a credential is not served", []string{"--public", "--admin"}, []string{
			"--port localhost:8080 [health ws api grpc]",
		}},
		{"grpc_port without the API", []string{"--grpc_port", "50051"}, []string{
			"--port localhost:8080 [health ws]",
			"--grpc_port localhost:50051 [grpc]",
		}},
		{"api_port and grpc_port", []string{"--secret", "s", "--api_port", "8081", "--grpc_port", "50051"}, []string{
			"--port localhost:8080 [health ws]",
			"--api_port localhost:8081 [api]",
			"--grpc_port localhost:50051 [grpc]",
		}},
		{"metrics on the main port", []string{"--metrics_http", "/metrics"}, []string{
			"--port localhost:8080 [health ws metrics]",
		}},
		{"metrics_port equal to port is the main port", []string{"--metrics_http", "/metrics", "--metrics_port", "8080", "--metrics_host", "10.0.0.1"}, []string{
			"--port localhost:8080 [health ws metrics]",
		}},
		{"metrics port of its own, on the main host", []string{"--metrics_http", "/metrics", "--metrics_port", "9090"}, []string{
			"--port localhost:8080 [health ws]",
			"--metrics_port localhost:9090 [metrics]",
		}},
		{"metrics host and port", []string{"--metrics_http", "/metrics", "--metrics_port", "9090", "--metrics_host", "127.0.0.1"}, []string{
			"--port localhost:8080 [health ws]",
			"--metrics_port 127.0.0.1:9090 [metrics]",
		}},
		{"metrics_port without metrics_http is nothing", []string{"--metrics_port", "9090"}, []string{
			"--port localhost:8080 [health ws]",
		}},
		{"pprof on the main port only", []string{"--pprof", "--secret", "s", "--api_port", "8081", "--metrics_http", "/m", "--metrics_port", "9090"}, []string{
			"--port localhost:8080 [health ws pprof]",
			"--api_port localhost:8081 [api grpc]",
			"--metrics_port localhost:9090 [metrics]",
		}},
		{"everything", []string{"--secret", "s", "--api_port", "8081", "--grpc_port", "50051", "--metrics_http", "/m", "--metrics_port", "9090", "--pprof"}, []string{
			"--port localhost:8080 [health ws pprof]",
			"--api_port localhost:8081 [api]",
			"--grpc_port localhost:50051 [grpc]",
			"--metrics_port localhost:9090 [metrics]",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			for _, s := range plan(parseConfig(t, c.args...)) {
				got = append(got, s.String())
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

// taken holds a port so that binding it fails.
func taken(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// TestStartFailureClosesEveryListener asserts that when a port cannot be
// bound, Start fails naming that port's flag and leaves none of the ports
// bound before it open: each can be bound again.
func TestStartFailureClosesEveryListener(t *testing.T) {
	grpc := freePort(t)
	cases := []struct {
		flag string
		args func(main, api, busy int) []string
		free []string // flags whose ports must be free again
	}{
		{"--metrics_port", func(main, api, busy int) []string {
			return []string{"--port", strconv.Itoa(main), "--api_port", strconv.Itoa(api), "--grpc_port", strconv.Itoa(grpc),
				"--metrics_http", "/metrics", "--metrics_port", strconv.Itoa(busy)}
		}, []string{"--port", "--api_port", "--grpc_port"}},
		{"--grpc_port", func(main, api, busy int) []string {
			return []string{"--port", strconv.Itoa(main), "--api_port", strconv.Itoa(api), "--grpc_port", strconv.Itoa(busy)}
		}, []string{"--port", "--api_port"}},
		{"--api_port", func(main, api, busy int) []string {
			return []string{"--port", strconv.Itoa(main), "--api_port", strconv.Itoa(busy)}
		}, []string{"--port"}},
	}
	for _, c := range cases {
		t.Run(c.flag, func(t *testing.T) {
			main, api, busy := freePort(t), freePort(t), taken(t)
			cfg := parseConfig(t, append([]string{"--host", "127.0.0.1", "--broker", "none"}, c.args(main, api, busy)...)...)
			r, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			err = r.Start(context.Background())
			want := "127.0.0.1:" + strconv.Itoa(busy) + " (" + c.flag + ")"
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("Start: %v, want an error naming %s", err, want)
			}
			ports := map[string]int{"--port": main, "--api_port": api, "--grpc_port": grpc}
			for _, flag := range c.free {
				ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[flag])))
				if err != nil {
					t.Errorf("%s still bound after the failed start: %v", flag, err)
					continue
				}
				ln.Close()
			}
		})
	}
}

// TestCleanup asserts the undo stack bind relies on: steps run newest
// first, once, and not at all once disarmed.
func TestCleanup(t *testing.T) {
	var order []int
	var c cleanup
	for i := range 3 {
		c.add(func() { order = append(order, i) })
	}
	c.run()
	c.run()
	if len(order) != 3 || order[0] != 2 || order[1] != 1 || order[2] != 0 {
		t.Errorf("undo order %v, want [2 1 0]", order)
	}
	c.add(func() { t.Error("a disarmed step ran") })
	c.disarm()
	c.run()
}
