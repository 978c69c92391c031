package runner

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cablehub/cablehub/server/config"
)

func deployRunner(t *testing.T, args ...string) *Runner {
	t.Helper()
	cfg, err := config.Parse(append([]string{"--secret", "s", "--broker", "none", "--norpc"}, args...), func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return &Runner{cfg: cfg, deps: &deps{}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// Each deployment setting that leaves something undone or unsafe gets one
// WARN naming the flag.
func TestDeployWarnings(t *testing.T) {
	cases := []struct {
		args []string
		want []string
	}{
		{nil, nil},
		{[]string{"--sse", "--sse_path", "/events"}, nil},
		{[]string{"--enable_ws_compression"}, nil},
		{[]string{"--shutdown_delay", "30", "--shutdown_timeout", "30"}, []string{"--shutdown_delay (30s) is not shorter than --shutdown_timeout (30s)"}},
		{[]string{"--shutdown_delay", "5"}, nil},
	}
	for _, c := range cases {
		got := deployRunner(t, c.args...).deployWarnings()
		if len(got) != len(c.want) {
			t.Errorf("%v: %q, want %q", c.args, got, c.want)
			continue
		}
		for i, w := range c.want {
			if !strings.HasPrefix(got[i], w) {
				t.Errorf("%v: %q, want %q…", c.args, got[i], w)
			}
		}
	}
}

// Redis warnings come from what connecting found: TLS without
// verification, a server that could not be asked about clustering.
func TestDeployRedisWarnings(t *testing.T) {
	if testing.Short() {
		t.Skip("connects to Redis")
	}
	r := deployRunner(t, "--redis_url", "rediss://127.0.0.1:1")
	if err := r.deps.newRedis(r.cfg); err != nil {
		t.Fatal(err)
	}
	defer r.deps.close()
	got := strings.Join(r.deployWarnings(), "\n")
	for _, want := range []string{"Redis TLS does not verify the server's certificate", "Redis at 127.0.0.1:1 did not answer at startup"} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings lack %q:\n%s", want, got)
		}
	}
}

// The delay is served before anything stops, and a context that ends
// first cuts it short.
func TestShutdownDelayWaitsForContext(t *testing.T) {
	r := deployRunner(t, "--shutdown_delay", "1h", "--shutdown_timeout", "2h")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		r.waitShutdownDelay(ctx)
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("returned before the delay or the context ended")
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	<-done
}
