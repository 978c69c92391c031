package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitLog polls the server's log until it contains want.
func waitLog(t *testing.T, s *server, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.Logs(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q:\n%s", want, s.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// --max-conn 2: the third client is told to come back later, in a frame
// and a close code it understands; the first two keep working, health and
// metrics keep answering, and a place freed is taken again.
func TestMaxConnRefusesOverTheLimit(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public", "--max-conn", "2", "--metrics_http", "/metrics")
	stream := uniqueStream(t, "room")
	c1, c2 := dialWS(t, s, dialOpts{}), dialWS(t, s, dialOpts{})
	c1.welcome()
	c2.welcome()
	id := c1.subscribe(stream)
	c2.subscribe(stream)

	over := dialWS(t, s, dialOpts{protocols: []string{"actioncable-v1-json"}})
	over.expect(`{"type":"disconnect","reason":"too_many_connections","reconnect":true}`)
	over.expectClose(1013, "Try Again Later")

	publish(t, s, fmt.Sprintf(`{"stream":%q,"data":"still here"}`, stream))
	for _, c := range []*wsClient{c1, c2} {
		c.expect(`{"identifier":` + quoted(id) + `,"message":"still here"` + s.stamp(stream, 1) + `}`)
	}
	if r := do(t, "GET", "http://"+s.Main+"/health", ""); r.Status != 200 {
		t.Errorf("health at the limit: %d %s", r.Status, r.Body)
	}
	if r := do(t, "GET", "http://"+s.Main+"/metrics", ""); !strings.Contains(r.Body, "\ncablehub_conn_limit_refused_total 1\n") {
		t.Errorf("metrics: no cablehub_conn_limit_refused_total 1 in\n%s", r.Body)
	}
	waitLog(t, s, "connection limit reached (--max-conn 2): refused 1 connection(s) with close 1013")

	// A client leaves: its place is free again once its connection ended.
	c2.conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := dialWS(t, s, dialOpts{})
		f := c.next(5 * time.Second)
		if strings.HasPrefix(f, `{"type":"welcome"`) {
			break
		}
		if f != `{"type":"disconnect","reason":"too_many_connections","reconnect":true}` || time.Now().After(deadline) {
			t.Fatalf("after a client left: %s", f)
		}
		c.conn.Close()
		time.Sleep(20 * time.Millisecond)
	}
	c1.barrier()
}

// --shutdown_delay: after SIGTERM the server keeps welcoming new clients
// and serving the old ones for the delay; a second signal still ends it
// at once.
func TestShutdownDelayKeepsAccepting(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public", "--shutdown_delay", "60", "--shutdown_timeout", "120")
	before := dialWS(t, s, dialOpts{})
	before.welcome()
	s.cmd.Process.Signal(syscall.SIGTERM)
	waitLog(t, s, "Waiting 60s before shutting down (--shutdown_delay); still accepting connections")

	after := dialWS(t, s, dialOpts{})
	after.welcome()
	after.barrier()
	before.barrier()
	if r := do(t, "GET", "http://"+s.Main+"/health", ""); r.Status != 200 {
		t.Errorf("health during the delay: %d", r.Status)
	}

	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("a second signal did not end the server during the delay")
	}
	if !strings.Contains(s.Logs(), "Immediate termination requested") {
		t.Errorf("log:\n%s", s.Logs())
	}
}

var startingLine = regexp.MustCompile(`msg="Starting Cablehub [^"]*" nodeid=(\S+)`)

// The node id is on the first line and in /health: given, from
// ANYCABLE_NODE_ID, or random.
func TestNodeIDInStartupLineAndHealth(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		env  []string
		args []string
		want string
	}{
		{nil, []string{"--node_id", "web-7"}, "web-7"},
		{[]string{"ANYCABLE_NODE_ID=web-8"}, nil, "web-8"},
		{nil, nil, ""},
	} {
		s := startServer(t, c.env, append([]string{"--public"}, c.args...)...)
		m := startingLine.FindStringSubmatch(s.Logs())
		if m == nil {
			t.Fatalf("no nodeid on the startup line:\n%s", s.Logs())
		}
		id := m[1]
		if c.want != "" && id != c.want || c.want == "" && !regexp.MustCompile(`^[A-Za-z0-9_-]{6}$`).MatchString(id) {
			t.Errorf("nodeid=%s, want %q (or 6 random characters)", id, c.want)
		}
		var health struct {
			NodeID string `json:"node_id"`
		}
		r := do(t, "GET", "http://"+s.Main+"/health", "")
		if err := json.Unmarshal([]byte(r.Body), &health); err != nil || health.NodeID != id {
			t.Errorf("health %s: node_id %q, want %q", r.Body, health.NodeID, id)
		}
	}
}

// StatsD: a real UDP socket gets AnyCable-named metrics with the tags.
func TestStatsdSendsMetrics(t *testing.T) {
	t.Parallel()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s := startServer(t, []string{"ANYCABLE_STATSD_HOST=" + pc.LocalAddr().String()}, "--public",
		"--metrics_rotate_interval", "100ms", "--metrics_tags", "env:e2e,node:a", "--statsd_tags_format", "influxdb")
	waitLog(t, s, "Send StatsD metrics to "+pc.LocalAddr().String()+" every 100ms (prefix: anycable_go., tags format: influxdb, tags: env:e2e,node:a)")
	c := dialWS(t, s, dialOpts{})
	c.welcome()
	c.barrier()

	want := map[string]bool{
		"anycable_go.clients_num,env=e2e,node=a:1|g":  false,
		"anycable_go.client_msg_total,env=e2e,node=a": false, // a counter: its value is the interval's increase
	}
	buf := make([]byte, 2048)
	deadline := time.Now().Add(10 * time.Second)
	var seen []string
	for !want["anycable_go.clients_num,env=e2e,node=a:1|g"] || !want["anycable_go.client_msg_total,env=e2e,node=a"] {
		pc.SetReadDeadline(deadline)
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("%v; packets so far: %q", err, seen)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(buf[:n])), "\n") {
			seen = append(seen, line)
			if _, ok := want[line]; ok {
				want[line] = true
			}
			if strings.HasPrefix(line, "anycable_go.client_msg_total,env=e2e,node=a:") && strings.HasSuffix(line, "|c") {
				want["anycable_go.client_msg_total,env=e2e,node=a"] = true
			}
		}
	}
}

// AnyCable settings for what Cablehub lacks are accepted and named in a
// WARN (TLS stops the server instead); --debug turns debug logging on;
// ANYCABLE_SSE and ANYCABLE_SSE_PATH serve Server-Sent Events there.
func TestNotSupportedSettingsWarn(t *testing.T) {
	t.Parallel()
	s := startServer(t, []string{"ANYCABLE_SSE=true", "ANYCABLE_SSE_PATH=/sse"}, "--public", "--enable_ws_compression", "--debug")
	logs := s.Logs()
	for _, want := range []string{
		`level=DEBUG msg="Debug mode is on (--debug)"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "--sse is not supported") {
		t.Errorf("--sse is served, yet a WARN says otherwise:\n%s", logs)
	}
	// Served: a request naming no subscription is refused as AnyCable does.
	if r := do(t, "GET", "http://"+s.Main+"/sse", ""); r.Status != 400 || r.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		t.Errorf("/sse: %d %v", r.Status, r.Header)
	}
}

// Heroku is recognized by its variables, and the presets applied are
// logged.
func TestHerokuPresetDetected(t *testing.T) {
	t.Parallel()
	s := startServer(t, []string{"HEROKU_APP_ID=a", "HEROKU_DYNO_ID=d"}, "--public")
	if !strings.Contains(s.Logs(), `msg="Loaded presets: heroku" context=config`) {
		t.Errorf("log:\n%s", s.Logs())
	}
}
