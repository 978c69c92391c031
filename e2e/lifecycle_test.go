package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSlowClientIsCutOthersReceive(t *testing.T) {
	// A long write timeout keeps the write that is stuck on the full socket
	// alive until the slow client reads again; then the too_slow message
	// queued behind it can arrive.
	s := startServer(t, nil, "--public", "--ws_max_pending_size", "262144", "--ws_write_timeout", "60", "--metrics_http", "/metrics")
	fast := dialWS(t, s, dialOpts{})
	fast.welcome()
	fast.subscribe("firehose")
	slow := dialWS(t, s, dialOpts{paused: true})
	slowID := identifier("firehose")
	slow.send(subscribeCmd(slowID))

	payload := strings.Repeat("x", 60000)
	const n = 300 // 18 MB: far more than socket buffers and the pending limit
	for i := range n {
		publish(t, s, fmt.Sprintf(`{"stream":"firehose","data":"%d %s"}`, i, payload))
	}
	prefix := `{"identifier":` + quoted(identifier("firehose")) + `,"message":"`
	for i := range n {
		want := fmt.Sprintf("%s%d %s\"%s}", prefix, i, payload, s.stamp("firehose", i+1))
		if got := fast.next(10 * time.Second); got != want {
			t.Fatalf("fast client message %d: got %.80s...", i, got)
		}
	}

	// The slow client now reads: a prefix of the stream, then too_slow.
	slow.resume()
	var sawDisconnect bool
	deadline := time.After(30 * time.Second)
	for !sawDisconnect {
		select {
		case f, ok := <-slow.frames:
			if !ok {
				t.Fatal("closed before the too_slow message")
			}
			if f == `{"type":"disconnect","reason":"too_slow","reconnect":true}` {
				sawDisconnect = true
			}
		case <-deadline:
			t.Fatal("slow client never told it was too slow")
		}
	}
	slow.expectClose(1000, "")
	r := do(t, "GET", "http://"+s.Main+"/metrics", "")
	if !regexp.MustCompile(`(?m)^anycable_go_disconnected_slow_clients_total 1$`).MatchString(r.Body) {
		t.Errorf("metrics:\n%s", grep(r.Body, "slow"))
	}
	fast.barrier()
}

func TestGracefulShutdown(t *testing.T) {
	s := startServer(t, nil, "--public")
	a := dialWS(t, s, dialOpts{protocols: []string{"actioncable-v1-json"}})
	b := dialWS(t, s, dialOpts{})
	a.welcome()
	b.welcome()
	a.subscribe("s")
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*wsClient{a, b} {
		c.expect(`{"type":"disconnect","reason":"server_restart","reconnect":true}`)
		c.expectClose(1001, "Server restart")
	}
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("server did not exit after its clients left")
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d", code)
	}
	logs := s.Logs()
	for _, want := range []string{"Shutting down", "closing active connections", "all active connections closed"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// A client that reads nothing while the server has more queued for it than
// the socket buffers hold cannot take its close frame, so shutdown waits for
// it; --shutdown_timeout 1 ends the wait: the log says the client was
// dropped and the process exits in seconds, where the 30 s default would
// have it wait (its writes would block for --ws_write_timeout's 60 s).
func TestShutdownTimeoutDropsUnresponsiveClients(t *testing.T) {
	s := startServer(t, nil, "--public", "--shutdown_timeout", "1", "--metrics_http", "/metrics",
		"--ws_write_timeout", "60", "--ws_max_pending_size", "67108864")
	stuck := dialWS(t, s, dialOpts{paused: true})
	stuck.send(subscribeCmd(identifier("flood")))
	deadline := time.Now().Add(10 * time.Second)
	for !regexp.MustCompile(`(?m)^anycable_go_broadcast_streams_num 1$`).MatchString(do(t, "GET", "http://"+s.Main+"/metrics", "").Body) {
		if time.Now().After(deadline) {
			t.Fatal("the stuck client was never subscribed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// 18 MB for it: far more than socket buffers hold.
	payload := strings.Repeat("x", 900<<10)
	for i := range 20 {
		publish(t, s, fmt.Sprintf(`{"stream":"flood","data":"%d %s"}`, i, payload))
	}

	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		t.Fatal("the server did not exit within 15s with --shutdown_timeout 1")
	}
	logs := s.Logs()
	for _, want := range []string{"wait for up to 1s for graceful shutdown", "dropped connections that did not close in time", "Stopped"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

func TestMetrics(t *testing.T) {
	s := startServer(t, nil, "--public", "--metrics_http", "/metrics")
	if !strings.Contains(s.Logs(), "Serve metrics at http://"+s.Main+"/metrics") {
		t.Errorf("log:\n%s", s.Logs())
	}
	a := dialWS(t, s, dialOpts{})
	a.welcome()
	a.subscribe("m")
	publish(t, s, `{"stream":"m","data":"1"}`)
	a.next(5 * time.Second)
	do(t, "GET", "http://"+s.Main+"/api/publish", "")
	body := do(t, "GET", "http://"+s.Main+"/metrics", "").Body
	for _, re := range []string{
		`(?m)^anycable_go_clients_num 1$`,
		`(?m)^anycable_go_clients_uniq_num 0$`,
		`(?m)^anycable_go_broadcast_streams_num 1$`,
		`(?m)^anycable_go_broadcast_msg_total 1$`,
		`(?m)^anycable_go_client_msg_total [1-9]`,
		`(?m)^anycable_go_data_sent_total [1-9]`,
		`(?m)^anycable_go_server_msg_total [1-9]`,
		`(?m)^cablehub_api_requests_total\{code="201",route="publish"\} 1$`,
		`(?m)^cablehub_api_requests_total\{code="405",route="publish"\} 1$`,
		`(?m)^cablehub_api_request_duration_seconds_count\{code="201",route="publish"\} 1$`,
	} {
		if !regexp.MustCompile(re).MatchString(body) {
			t.Errorf("metrics lack %s", re)
		}
	}
}
