package broadcast

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// startNATSServer runs a real nats-server in the test process on port.
func startNATSServer(t *testing.T, port int) *natsserver.Server {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: port, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	return ns
}

// natsConn connects as the server does: retrying and reconnecting forever.
func natsConn(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// startNATS runs a nats adapter and waits until it is subscribed.
func startNATS(t *testing.T, nc *nats.Conn, cfg natsConfig, got *received, log *logBuffer) *NATS {
	t.Helper()
	if log == nil {
		log = &logBuffer{}
	}
	a := newNATSAdapter(nc, cfg, got.handle, log.logger())
	if a.Err() == nil {
		t.Error("Err is nil before the subscription")
	}
	runUntilStopped(t, a)
	eventually(t, "the subscription", func() bool { return a.Err() == nil })
	return a
}

func publishNATS(t *testing.T, nc *nats.Conn, subject string, payloads ...string) {
	t.Helper()
	for _, p := range payloads {
		if err := nc.Publish(subject, []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func TestNATSDeliversTheSubjectOnly(t *testing.T) {
	ns := startNATSServer(t, -1)
	var got received
	var log logBuffer
	got.fail = func(p string, _ int) error {
		if p == "garbage" {
			return status.Error(codes.InvalidArgument, "request body is not valid JSON")
		}
		return nil
	}
	startNATS(t, natsConn(t, ns.ClientURL()), natsConfig{subject: "my_bcast"}, &got, &log)
	pub := natsConn(t, ns.ClientURL())
	payloads := []string{
		`{"stream":"feed","data":"{\"n\":1}"}`,
		`[{"stream":"feed","data":"{\"n\":2}"},{"stream":"feed","data":"{\"n\":3}"}]`,
		`{"stream":"feed","data":"{\"n\":4}","meta":{"exclude_socket":"sidA"}}`,
		"garbage",
		`{"command":"disconnect","payload":{"identifier":"{\"sid\":\"sidA\"}","reconnect":true}}`,
	}
	publishNATS(t, pub, "__anycable__", `{"stream":"feed","data":"{\"n\":99}"}`)
	publishNATS(t, pub, "my_bcast", payloads...)
	publishNATS(t, pub, "my_bcast.sub", `{"stream":"feed","data":"{\"n\":98}"}`)
	publishNATS(t, pub, "my_bcast", "last")
	want := append(payloads, "last")
	eventually(t, "every message", func() bool { return len(got.all()) >= len(want) })
	if g := got.all(); !slices.Equal(g, want) {
		t.Errorf("delivered\n%q\nwant\n%q", g, want)
	}
	if l := log.String(); !strings.Contains(l, "NATS broadcast dropped") || !strings.Contains(l, "payload=garbage") {
		t.Errorf("no warning for the undeliverable message:\n%s", l)
	}
}

func TestNATSDefaultSubject(t *testing.T) {
	ns := startNATSServer(t, -1)
	var got received
	startNATS(t, natsConn(t, ns.ClientURL()), natsConfig{}, &got, nil)
	publishNATS(t, natsConn(t, ns.ClientURL()), "__anycable__", "x")
	eventually(t, "the message", func() bool { return len(got.all()) == 1 })
}

func TestNATSQueueGroupDeliversEachMessageOnce(t *testing.T) {
	ns := startNATSServer(t, -1)
	var a, b, plain received
	startNATS(t, natsConn(t, ns.ClientURL()), natsConfig{subject: "q", queue: NATSQueue}, &a, nil)
	startNATS(t, natsConn(t, ns.ClientURL()), natsConfig{subject: "q", queue: NATSQueue}, &b, nil)
	// A subscriber outside the group (an AnyCable node during a
	// migration) still gets everything.
	startNATS(t, natsConn(t, ns.ClientURL()), natsConfig{subject: "q"}, &plain, nil)
	const n = 200
	pub := natsConn(t, ns.ClientURL())
	for i := range n {
		publishNATS(t, pub, "q", fmt.Sprint(i))
	}
	eventually(t, "every message", func() bool { return len(a.all())+len(b.all()) >= n && len(plain.all()) >= n })
	count := map[string]int{}
	for _, p := range append(a.all(), b.all()...) {
		count[p]++
	}
	for i := range n {
		if count[fmt.Sprint(i)] != 1 {
			t.Errorf("message %d handled %d times in the group", i, count[fmt.Sprint(i)])
		}
	}
}

func TestNATSSurvivesServerRestart(t *testing.T) {
	port := freeTCPPort(t)
	ns := startNATSServer(t, port)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	var got received
	var log logBuffer
	a := startNATS(t, natsConn(t, url), natsConfig{subject: "s"}, &got, &log)
	pub := natsConn(t, url)
	publishNATS(t, pub, "s", "before")
	eventually(t, "the first message", func() bool { return len(got.all()) == 1 })

	ns.Shutdown()
	ns.WaitForShutdown()
	eventually(t, "Err to report the outage", func() bool { return a.Err() != nil })
	startNATSServer(t, port)
	eventually(t, "Err to clear", func() bool { return a.Err() == nil })
	// The subscription is renewed on reconnect; core NATS keeps nothing,
	// so publish until one arrives (the publisher reconnects too).
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Contains(got.all(), "after") {
		if time.Now().After(deadline) {
			t.Fatalf("nothing delivered after the restart: %q", got.all())
		}
		if pub.IsConnected() {
			pub.Publish("s", []byte("after"))
			pub.FlushTimeout(time.Second)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNATSThroughTheHandler: the adapter New builds hands the messages to
// the sink; with a cluster pub/sub it joins the queue group.
func TestNATSThroughTheHandler(t *testing.T) {
	ns := startNATSServer(t, -1)
	for _, clustered := range []bool{false, true} {
		t.Run(fmt.Sprint("clustered=", clustered), func(t *testing.T) {
			sink := &sinkCalls{}
			var log logBuffer
			o := DefaultOptions()
			o.NATS, o.NATSChannel, o.Clustered = natsConn(t, ns.ClientURL()), "my_bcast", clustered
			a, err := New(NameNATS, o, sink, log.logger())
			if err != nil {
				t.Fatal(err)
			}
			want := "Subscribing for broadcasts to NATS subject my_bcast (servers: " + ns.ClientURL() + ")"
			if clustered {
				want += "; in queue group cablehub-broadcast, so one node of the cluster takes each message"
			}
			if d := a.Describe(); d != want {
				t.Errorf("Describe: %s\nwant %s", d, want)
			}
			runUntilStopped(t, a)
			eventually(t, "the subscription", func() bool { return a.Err() == nil })
			publishNATS(t, natsConn(t, ns.ClientURL()), "my_bcast",
				`{"stream":"feed","data":"{\"n\":1}"}`,
				`garbage`,
				`{"command":"disconnect","payload":{"identifier":"{\"sid\":\"sidA\"}","reconnect":true}}`,
			)
			eventually(t, "two sink calls", func() bool { return len(sink.got()) == 2 })
			wantCalls := []string{
				`publish {"publications":[{"stream":"feed","data":"{\"n\":1}"}]}`,
				`disconnect {"identifier":"{\"sid\":\"sidA\"}","reconnect":true}`,
			}
			if g := sink.got(); !slices.Equal(g, wantCalls) {
				t.Errorf("sink got %q", g)
			}
			if l := log.String(); !strings.Contains(l, "malformed broadcast dropped") {
				t.Errorf("the malformed message is not logged:\n%s", l)
			}
		})
	}
}
