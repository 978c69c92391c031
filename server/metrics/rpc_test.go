package metrics

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	anycablepb "github.com/cablehub/cablehub/gen/anycable"
	"github.com/cablehub/cablehub/server/rpc"
)

var _ rpc.Metrics = (*RPC)(nil)

// scrape returns the registry as a Prometheus scraper sees it.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	return string(body)
}

// hasLines fails the test for each line missing from the scrape.
func hasLines(t *testing.T, text string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains("\n"+text, "\n"+l+"\n") {
			t.Errorf("no line %q in:\n%s", l, grep(text, "rpc_", "disconnect_queue"))
		}
	}
}

func grep(text string, parts ...string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		for _, p := range parts {
			if strings.Contains(l, p) && !strings.HasPrefix(l, "#") {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// TestRPCMetricsBeforeAnyCall asserts AnyCable's rpc_* series and the
// disconnect queue gauge are exposed from the start, at zero, so
// dashboards and alerts find them on an idle server.
func TestRPCMetricsBeforeAnyCall(t *testing.T) {
	hasLines(t, scrape(t, New()),
		"anycable_go_rpc_call_total 0",
		"anycable_go_rpc_retries_total 0",
		"anycable_go_rpc_error_total 0",
		"anycable_go_rpc_timeout_total 0",
		"anycable_go_rpc_canceled_total 0",
		"anycable_go_rpc_pending_num 0",
		"anycable_go_disconnect_queue_size 0",
	)
}

// TestRPCMetricsCountOutcomes asserts each final code lands in its
// counter: every call in rpc_call_total; DEADLINE_EXCEEDED only in
// rpc_timeout_total, CANCELED only in rpc_canceled_total, any other
// failure in rpc_error_total, and OK (an ERROR/FAILURE answer included)
// in none of them; the histogram counts calls by method.
func TestRPCMetricsCountOutcomes(t *testing.T) {
	m := New()
	r := m.RPC
	r.Pending(1)
	r.Pending(1)
	r.Pending(-1)
	r.Retry(rpc.MethodConnect, codes.Unavailable)
	r.Retry(rpc.MethodConnect, codes.ResourceExhausted)
	r.Done(rpc.MethodConnect, codes.OK, 2*time.Millisecond)
	r.Done(rpc.MethodCommand, codes.OK, time.Millisecond)
	r.Done(rpc.MethodCommand, codes.Unavailable, 3*time.Second)
	r.Done(rpc.MethodCommand, codes.Internal, time.Millisecond)
	r.Done(rpc.MethodCommand, codes.DeadlineExceeded, 3*time.Second)
	r.Done(rpc.MethodDisconnect, codes.Canceled, time.Millisecond)
	m.DisconnectQueueSize.Set(3)
	hasLines(t, scrape(t, m),
		"anycable_go_rpc_call_total 6",
		"anycable_go_rpc_retries_total 2",
		"anycable_go_rpc_error_total 2",
		"anycable_go_rpc_timeout_total 1",
		"anycable_go_rpc_canceled_total 1",
		"anycable_go_rpc_pending_num 1",
		"anycable_go_disconnect_queue_size 3",
		`cablehub_rpc_call_duration_seconds_count{method="connect"} 1`,
		`cablehub_rpc_call_duration_seconds_count{method="command"} 4`,
		`cablehub_rpc_call_duration_seconds_count{method="disconnect"} 1`,
		`cablehub_rpc_call_duration_seconds_bucket{method="command",le="0.001"} 2`,
	)
}

// TestRPCMetricsFromARealClient wires the metrics into an HTTP RPC client
// against a back end answering 200, then 500, then nothing: the scrape
// shows the calls, the error and the retries of the unreachable one.
func TestRPCMetricsFromARealClient(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1) == 1 {
			io.WriteString(w, `{"status":1}`)
			return
		}
		w.WriteHeader(http.StatusInternalServerError)
	}))
	m := New()
	c, err := rpc.NewHTTP(rpc.HTTPOptions{URL: srv.URL, Metrics: m.RPC, CommandTimeout: 500 * time.Millisecond}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := t.Context()
	if _, err := c.Connect(ctx, "s1", &anycablepb.ConnectionRequest{}); err != nil {
		t.Fatalf("first connect: %v", err)
	}
	if _, err := c.Connect(ctx, "s2", &anycablepb.ConnectionRequest{}); status.Code(err) != codes.Unknown {
		t.Fatalf("500: %v", err)
	}
	srv.Close()
	if _, err := c.Command(ctx, "s3", &anycablepb.CommandMessage{}); err == nil {
		t.Fatal("a call to a closed back end succeeded")
	}
	text := scrape(t, m)
	hasLines(t, text,
		"anycable_go_rpc_call_total 3",
		"anycable_go_rpc_pending_num 0",
		`cablehub_rpc_call_duration_seconds_count{method="connect"} 2`,
		`cablehub_rpc_call_duration_seconds_count{method="command"} 1`,
	)
	// The unreachable call is retried until its budget runs out: then it
	// is a timeout or (its last attempt refused) an error.
	if strings.Contains(text, "\nanycable_go_rpc_retries_total 0\n") {
		t.Errorf("no retries counted:\n%s", grep(text, "rpc_"))
	}
	failed := strings.Contains(text, "\nanycable_go_rpc_error_total 2\n") && strings.Contains(text, "\nanycable_go_rpc_timeout_total 0\n") ||
		strings.Contains(text, "\nanycable_go_rpc_error_total 1\n") && strings.Contains(text, "\nanycable_go_rpc_timeout_total 1\n")
	if !failed {
		t.Errorf("want the 500 and the unreachable call counted as failed:\n%s", grep(text, "rpc_"))
	}
}
