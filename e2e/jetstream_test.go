package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The NATS JetStream broker (--broker nats) against the binary. NATS is
// always a JetStream-enabled server of the test's own (embedded in node A,
// or a nats-server -js on a free port), never the machine's.

// jetstreamCluster starts node A with an embedded NATS (JetStream on, since
// the broker is nats) and node B connected to it, both --broker nats.
func jetstreamCluster(t *testing.T, extra ...string) (*server, *server) {
	t.Helper()
	addr := fmt.Sprintf("nats://127.0.0.1:%d", freePort(t))
	args := append([]string{"--public", "--broker", "nats"}, extra...)
	a := startServer(t, nil, append(args, "--embed_nats", "--enats_addr", addr)...)
	b := startServer(t, nil, append(args, "--nats_servers", addr)...)
	for _, s := range []*server{a, b} {
		if !strings.Contains(s.Logs(), "Using NATS JetStream broker") {
			t.Fatalf("no JetStream broker line:\n%s", s.Logs())
		}
		waitHealth(t, s, 200)
	}
	return a, b
}

// Two nodes publishing concurrently through one JetStream: every
// subscriber, on either node, gets each accepted publication exactly once
// with strictly increasing offsets in one epoch, and a subscriber whose
// connection is cut mid-run reconnects to the other node, restores its
// session by sid and recovers what it missed from history.
func TestJetStreamClusterConcurrentPublishers(t *testing.T) {
	a, b := jetstreamCluster(t)
	stream := uniqueStream(t, "js faults")
	trackers := []*tracker{
		newTracker(t, "ext on A (cut, moves to B)", stream, []*server{a, b}, "actioncable-v1-ext-json", true),
		newTracker(t, "ext on B", stream, []*server{b, a}, "actioncable-v1-ext-json", true),
		newTracker(t, "plain on A", stream, []*server{a}, "actioncable-v1-json", false),
	}
	p := &publisher{stream: stream, nodes: []*server{a, b}, accepted: map[int]bool{}}
	start := time.Now()
	p.run(8, 1000)
	trackers[0].mu.Lock()
	trackers[0].conn.UnderlyingConn().Close()
	trackers[0].mu.Unlock()
	p.run(8, 1000)
	elapsed := time.Since(start)
	settle(t, "broker nats (JetStream), two publishing nodes, client cut", p, trackers)
	p.mu.Lock()
	accepted := len(p.accepted)
	p.mu.Unlock()
	if accepted != 2000 {
		t.Errorf("accepted %d of 2000", accepted)
	}
	t.Logf("JetStream broker: %d publishes over HTTP from 8 workers through 2 nodes in %s: %.0f publishes/s",
		accepted, elapsed.Round(time.Millisecond), float64(accepted)/elapsed.Seconds())
	epoch := trackers[0].epoch
	for _, tr := range trackers[:2] {
		tr.mu.Lock()
		if tr.epoch != epoch || tr.rejects != 0 {
			t.Errorf("%s: epoch %q (want %q), reject_history %d", tr.name, tr.epoch, epoch, tr.rejects)
		}
		tr.mu.Unlock()
	}
}

// publishRate publishes 2000 numbered publications from 8 workers through
// two nodes and logs the publishes/s (not asserted: timing varies).
func publishRate(t *testing.T, setup string, a, b *server) {
	p := &publisher{stream: uniqueStream(t, "rate"), nodes: []*server{a, b}, accepted: map[int]bool{}}
	start := time.Now()
	p.run(8, 2000)
	elapsed := time.Since(start)
	if p.unsent > 0 {
		t.Errorf("%s: %d publications not sent: the run took over %s", setup, p.unsent, publishRunLimit)
	}
	t.Logf("%s: %d publishes over HTTP from 8 workers through 2 nodes in %s: %.0f publishes/s",
		setup, len(p.accepted), elapsed.Round(time.Millisecond), float64(len(p.accepted))/elapsed.Seconds())
}

// The same load on the JetStream broker (on a nats-server -js of its own,
// not one embedded in a node built with -race) and on the Redis broker,
// for comparison.
func TestJetStreamPublishRate(t *testing.T) {
	t.Run("nats", func(t *testing.T) {
		port := freePort(t)
		startNATSJetStream(t, port, t.TempDir())
		args := []string{"--public", "--broker", "nats", "--nats_servers", fmt.Sprintf("nats://127.0.0.1:%d", port)}
		a, b := startServer(t, nil, args...), startServer(t, nil, args...)
		waitHealth(t, a, 200)
		waitHealth(t, b, 200)
		publishRate(t, "JetStream broker (nats-server -js)", a, b)
	})
	t.Run("redis", func(t *testing.T) {
		a, b := redisCluster(t, 10)
		publishRate(t, "Redis broker", a, b)
	})
}

// A client drops from node A, publications go on through both nodes, and it
// reconnects to node B with ?sid=: the session is restored there and
// history from its last (epoch, offset) brings exactly the missed range.
func TestJetStreamRestoreAndHistoryOnAnotherNode(t *testing.T) {
	a, b := jetstreamCluster(t)
	stream := uniqueStream(t, "js.feed *")
	oldSID, cb, id := restoreOnAnotherNode(t, a, b, b, stream)
	q := quoted(id)
	// A sid is restorable once, on any node.
	cc := dialWS(t, a, dialOpts{query: "?sid=" + oldSID})
	if w := cc.next(5 * time.Second); strings.Contains(w, `"restored":true`) {
		t.Errorf("second restore of one sid: %s", w)
	}
	// History from an epoch that is not JetStream's is refused.
	cb.send(historyCmd(id, fmt.Sprintf(`{"streams":{%q:{"epoch":"nope","offset":1}}}`, stream)))
	cb.expect(`{"type":"reject_history","identifier":` + q + `}`)
}

// startNATSJetStream runs nats-server -js on port with its store in dir.
func startNATSJetStream(t *testing.T, port int, dir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(serviceBinary(t, "nats-server"), "-js", "-sd", dir, "-a", "127.0.0.1", "-p", fmt.Sprint(port))
	if err := cmd.Start(); err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// With NATS down, /health names nats and jetstream and publishes answer
// 501 at once; once NATS (same store) is back, the stream is in a new
// epoch (a NATS server that is not part of a cluster may have come back
// from an older store, so the broker cannot go on counting in the old one)
// and the subscriber, whose position could not be confirmed across the
// outage, is told to resync; subscribed again, it gets the next
// publications in the new epoch.
func TestJetStreamNATSDownAndBack(t *testing.T) {
	port := freePort(t)
	dir := t.TempDir()
	nats := startNATSJetStream(t, port, dir)
	s := startServer(t, nil, "--public", "--broker", "nats", "--nats_servers", fmt.Sprintf("nats://127.0.0.1:%d", port))
	waitHealth(t, s, 200)
	stream := uniqueStream(t, "down")
	c := dialWS(t, s, dialOpts{})
	c.welcome()
	id := c.subscribe(stream)
	publish(t, s, fmt.Sprintf(`{"stream":%q,"data":"1"}`, stream))
	first := c.next(5 * time.Second)
	if !strings.Contains(first, `"offset":1`) {
		t.Fatalf("first: %s", first)
	}
	nats.Process.Kill()
	nats.Wait()
	r := waitHealth(t, s, 503)
	if !strings.Contains(r.Body, `"jetstream"`) || !strings.Contains(r.Body, `"nats"`) {
		t.Errorf("health: %s", r.Body)
	}
	began := time.Now()
	if r := do(t, "POST", "http://"+s.Main+"/api/publish", fmt.Sprintf(`{"stream":%q,"data":"lost"}`, stream)); r.Status != 501 {
		t.Errorf("publish with NATS down: %d %s", r.Status, r.Body)
	}
	if d := time.Since(began); d > time.Second {
		t.Errorf("publish with NATS down took %s", d)
	}
	startNATSJetStream(t, port, dir)
	waitHealth(t, s, 200)
	var before broadcast
	json.Unmarshal([]byte(first), &before)
	told := false
	deadline := time.Now().Add(15 * time.Second)
	for n := 2; ; n++ {
		r := do(t, "POST", "http://"+s.Main+"/api/publish", fmt.Sprintf(`{"stream":%q,"data":"%d"}`, stream, n))
		if r.Status == 201 {
			select {
			case f := <-c.frames:
				if strings.Contains(f, `"type":"ping"`) {
					continue
				}
				if !told {
					if f != `{"type":"disconnect","reason":"stream_gap","reconnect":true}` {
						t.Fatalf("after NATS came back: %s (before: %s)", f, first)
					}
					told = true
					c = dialWS(t, s, dialOpts{})
					c.welcome()
					id = c.subscribe(stream)
					continue
				}
				var after broadcast
				json.Unmarshal([]byte(f), &after)
				if !strings.HasPrefix(f, `{"identifier":`+quoted(id)+`,"message":`) || after.Offset < 1 || after.Epoch == before.Epoch {
					t.Fatalf("subscribed again after NATS came back: %s (before: %s)", f, first)
				}
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery did not resume once NATS was back (told: %v)", told)
		}
	}
}

// --broker nats on a NATS without JetStream starts, but reports jetstream
// down on /health and refuses publishes (501).
func TestJetStreamMissing(t *testing.T) {
	port := freePort(t)
	cmd := exec.Command(serviceBinary(t, "nats-server"), "-a", "127.0.0.1", "-p", fmt.Sprint(port))
	if err := cmd.Start(); err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	s := startServer(t, nil, "--public", "--broker", "nats", "--nats_servers", fmt.Sprintf("nats://127.0.0.1:%d", port))
	if r := waitHealth(t, s, 503); !strings.Contains(r.Body, `"jetstream"`) {
		t.Errorf("health: %s", r.Body)
	}
	if r := do(t, "POST", "http://"+s.Main+"/api/publish", okPub); r.Status != 501 {
		t.Errorf("publish without JetStream: %d %s", r.Status, r.Body)
	}
}
