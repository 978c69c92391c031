package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cablehub/cablehub/server/config"
	"github.com/cablehub/cablehub/server/runner"
)

const (
	testJWTSecret     = "jwt-s3cr3t"
	testStreamsSecret = "streams-s3cr3t"
)

// startCablehub runs a Cablehub server in this process on a free loopback
// port, standalone with JWT identification enforced and signed streams,
// and returns its WebSocket URL.
func startCablehub(t *testing.T) string {
	t.Helper()
	args := []string{"--host", "127.0.0.1", "--port", "0", "--norpc", "--broadcast_adapter=",
		"--jwt_secret", testJWTSecret, "--enforce_jwt", "--streams_secret", testStreamsSecret}
	cfg, err := config.Parse(args, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r, err := runner.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r.Shutdown(ctx)
	})
	return "ws://" + r.MainAddr + "/cable"
}

// runStormJSON runs `cablebench storm --json args...` and returns its result and
// error; it fails the test if the run outlives its --timeout by far.
func runStormJSON(t *testing.T, args ...string) (stormResult, error) {
	t.Helper()
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- runStorm(append([]string{"--json"}, args...), &out, io.Discard) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("cablebench storm did not return")
	}
	var res stormResult
	if jerr := json.Unmarshal(out.Bytes(), &res); jerr != nil {
		t.Fatalf("output %q: %v (run: %v)", out.String(), jerr, err)
	}
	return res, err
}

// TestStormSignedJWT is the realistic storm: every client carries a JWT
// and subscribes to a signed stream; all subscribe, nothing is refused.
func TestStormSignedJWT(t *testing.T) {
	url := startCablehub(t)
	res, err := runStormJSON(t, "--url", url, "--clients", "200", "--streams", "3", "--signed", testStreamsSecret,
		"--jwt", testJWTSecret, "--pid", strconv.Itoa(os.Getpid()), "--timeout", "90s")
	if err != nil {
		t.Fatalf("storm: %v; result %+v", err, res)
	}
	if res.Clients != 200 || res.Subscribed != 200 || res.Refusals != 0 || res.Attempts != 200 {
		t.Errorf("clients %d, subscribed %d, refusals %d (%v), attempts %d; want 200 subscribed at the first attempt each",
			res.Clients, res.Subscribed, res.Refusals, res.RefusalExamples, res.Attempts)
	}
	if res.AllSubscribedSeconds == nil {
		t.Error("all_subscribed_seconds is null with every client subscribed")
	}
	for _, p := range []string{"p50", "p90", "p99", "p99.9", "max"} {
		if _, ok := res.ConnectMs[p]; !ok {
			t.Errorf("connect_ms has no %s: %v", p, res.ConnectMs)
		}
		if _, ok := res.HandshakeMs[p]; !ok {
			t.Errorf("handshake_ms has no %s: %v", p, res.HandshakeMs)
		}
	}
	if runtime.GOOS == "linux" && res.RSSAfterKiB <= 0 {
		t.Errorf("server_rss_after_kib %d with --pid on Linux", res.RSSAfterKiB)
	}
}

// TestStormRefusals checks that refused clients are counted by kind and
// retried until --timeout, which then ends the storm with an error rather
// than a hang.
func TestStormRefusals(t *testing.T) {
	url := startCablehub(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed.Close() // nothing listens there any more
	unavailable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "try later", http.StatusServiceUnavailable)
	}))
	defer unavailable.Close()
	cases := []struct {
		name, kind string
		args       []string
	}{
		{"wrong JWT secret", "disconnect", []string{"--url", url, "--signed", testStreamsSecret, "--jwt", "not-the-secret"}},
		{"no JWT", "disconnect", []string{"--url", url, "--signed", testStreamsSecret}},
		{"wrong streams secret", "reject_subscription", []string{"--url", url, "--signed", "not-the-secret", "--jwt", testJWTSecret}},
		{"public stream", "reject_subscription", []string{"--url", url, "--jwt", testJWTSecret}},
		{"nothing listening", "connection_refused", []string{"--url", "ws://" + closed.Addr().String() + "/cable"}},
		{"503", "http_503", []string{"--url", "ws://" + strings.TrimPrefix(unavailable.URL, "http://") + "/cable"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := runStormJSON(t, append(c.args, "--clients", "20", "--timeout", "2s", "--backoff", "50ms", "--backoff_max", "200ms")...)
			if err == nil || !strings.Contains(err.Error(), "20 of 20 clients not subscribed") {
				t.Errorf("error %v, want 20 of 20 clients not subscribed", err)
			}
			if res.Subscribed != 0 || res.AllSubscribedSeconds != nil {
				t.Errorf("subscribed %d, all_subscribed_seconds %v; want 0 and null", res.Subscribed, res.AllSubscribedSeconds)
			}
			// Every client is refused at least once, and the first
			// refusals are retried.
			if got := res.RefusalsByKind[c.kind]; got < 20 || got != res.Refusals {
				t.Errorf("refusals %v (total %d), want only %s, at least 20; first: %v", res.RefusalsByKind, res.Refusals, c.kind, res.RefusalExamples)
			}
			if res.Attempts <= 20 || res.Attempts < res.Refusals {
				t.Errorf("%d attempts for %d refusals of 20 clients: no retries", res.Attempts, res.Refusals)
			}
		})
	}
}

// TestBackoffDelay checks the retry delays' bounds: the n-th retry waits
// between base·2^n·0.5 and base·2^(n+1)·1.5, never more than the cap.
func TestBackoffDelay(t *testing.T) {
	base, limit := 100*time.Millisecond, 2*time.Second
	for n := range 40 {
		lo := min(time.Duration(float64(base)*0.5*float64(int64(1)<<min(n, 30))), limit)
		hi := min(time.Duration(float64(base)*3*float64(int64(1)<<min(n, 30))), limit)
		for range 100 {
			if d := backoffDelay(n, base, limit); d < lo || d > hi {
				t.Fatalf("backoffDelay(%d) = %s, want within [%s, %s]", n, d, lo, hi)
			}
		}
	}
}
