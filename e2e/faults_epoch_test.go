package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The fault-injection cases in which a stream's offsets could go back: a
// service restarted from a snapshot, a failover to a replica that lagged,
// and a stream idle long enough for its state to expire. In each the
// broker must start a new epoch, so that subscribers take the new offsets
// as new (none of them may miss an accepted publication without being
// told) and clients holding the old epoch are refused history.

// TestFaultsRedisSnapshotRestart: Redis saves a snapshot, takes more
// publications, dies and comes back from the snapshot, its counters behind
// what subscribers have seen.
func TestFaultsRedisSnapshotRestart(t *testing.T) {
	t.Parallel()
	port, dir := freePort(t), t.TempDir()
	start := func() *exec.Cmd {
		return startRedisProcess(t, port, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	}
	proc := start()
	args := []string{"--public", "--broker", "redis", "--redis_url", fmt.Sprintf("redis://127.0.0.1:%d/0", port)}
	a, b := startServer(t, nil, args...), startServer(t, nil, args...)
	stream := uniqueStream(t, "faults")
	trackers := pairTrackers(t, stream, a, b)
	p := &publisher{stream: stream, nodes: []*server{a, b}, accepted: map[int]bool{}}
	p.run(4, 400)
	redisCLI(t, port, "save")
	p.run(4, 400) // accepted and delivered, but not in the snapshot
	proc.Process.Kill()
	proc.Wait()
	start()
	if got := redisCLI(t, port, "dbsize"); got == "0" {
		t.Fatal("Redis did not load its snapshot")
	}
	for _, s := range []*server{a, b} {
		waitHealth(t, s, 200)
	}
	p.run(4, 800)
	settle(t, "broker redis, pubsub redis: Redis restarted from a snapshot", p, trackers)
	expectOldEpochRefused(t, a, stream, trackers[0])
}

// TestFaultsRedisFailover: Sentinel promotes a replica that lagged: the
// master took publications the replica never got, then died.
func TestFaultsRedisFailover(t *testing.T) {
	t.Parallel()
	masterPort, replicaPort := freePort(t), freePort(t)
	base := []string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}
	master := startRedisProcess(t, masterPort, append([]string{"--port", fmt.Sprint(masterPort), "--repl-diskless-sync-delay", "0"}, base...)...)
	replica := startRedisProcess(t, replicaPort, append([]string{"--port", fmt.Sprint(replicaPort), "--replicaof", "127.0.0.1", fmt.Sprint(masterPort)}, base...)...)
	sentinel := startSentinel(t, masterPort)
	args := []string{"--public", "--broker", "redis", "--redis_url", "redis://mymaster/0", "--redis_sentinels", fmt.Sprintf("127.0.0.1:%d", sentinel)}
	a, b := startServer(t, nil, args...), startServer(t, nil, args...)
	stream := uniqueStream(t, "faults")
	trackers := pairTrackers(t, stream, a, b)
	p := &publisher{stream: stream, nodes: []*server{a, b}, accepted: map[int]bool{}}
	p.run(4, 400)
	waitUntil(t, "the replica is in sync", func() bool {
		return strings.Contains(redisCLI(t, replicaPort, "info", "replication"), "master_link_status:up")
	})
	// Cut the replica off: paused, and its link closed by the master, so
	// what follows never reaches it.
	replica.Process.Signal(syscall.SIGSTOP)
	redisCLI(t, masterPort, "client", "kill", "type", "replica")
	p.run(4, 400)
	master.Process.Kill()
	master.Wait()
	replica.Process.Signal(syscall.SIGCONT)
	waitUntil(t, "Sentinel promotes the replica", func() bool { return masterPortOf(t, sentinel) == fmt.Sprint(replicaPort) })
	for _, s := range []*server{a, b} {
		waitHealth(t, s, 200)
	}
	p.run(4, 800)
	settle(t, "broker redis, pubsub redis: failover to a replica that lagged", p, trackers)
	expectOldEpochRefused(t, a, stream, trackers[0])
}

// TestFaultsJetStreamSnapshotRestart: the NATS server is restarted from a
// copy of its JetStream store taken earlier, behind what subscribers have
// seen.
func TestFaultsJetStreamSnapshotRestart(t *testing.T) {
	t.Parallel()
	port, dir := freePort(t), t.TempDir()
	cmd := startNATSJetStream(t, port, dir)
	args := []string{"--public", "--broker", "nats", "--nats_servers", fmt.Sprintf("nats://127.0.0.1:%d", port)}
	a, b := startServer(t, nil, args...), startServer(t, nil, args...)
	for _, s := range []*server{a, b} {
		waitHealth(t, s, 200)
	}
	stream := uniqueStream(t, "faults")
	trackers := pairTrackers(t, stream, a, b)
	p := &publisher{stream: stream, nodes: []*server{a, b}, accepted: map[int]bool{}}
	p.run(4, 400)
	// A snapshot: the store as a stopped server leaves it. A graceful stop
	// may stall, so it is waited for a bounded time, not for good.
	cmd.Process.Signal(os.Interrupt)
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-exited
		t.Fatal("nats-server did not exit within 30s of SIGINT")
	}
	snapshot := t.TempDir()
	copyDir(t, dir, snapshot)
	cmd = startNATSJetStream(t, port, dir)
	for _, s := range []*server{a, b} {
		waitHealth(t, s, 200)
	}
	p.run(4, 400)
	cmd.Process.Kill()
	cmd.Wait()
	startNATSJetStream(t, port, snapshot)
	for _, s := range []*server{a, b} {
		waitHealth(t, s, 200)
	}
	p.run(4, 800)
	settle(t, "broker nats (JetStream): NATS restarted from an older copy of its store", p, trackers)
	expectOldEpochRefused(t, a, stream, trackers[0])
}

// TestFaultsIdleExpiry: a stream without publications for ten history
// TTLs loses its state (memory: the stream is forgotten; Redis: its
// counter expires; JetStream: its messages age out); when publications
// start again, subscribers that stayed connected all along get them.
func TestFaultsIdleExpiry(t *testing.T) {
	cases := []struct {
		name  string
		start func(t *testing.T) []*server
	}{
		{"broker memory", func(t *testing.T) []*server {
			return []*server{startServer(t, nil, "--public", "--history_ttl", "1")}
		}},
		{"broker redis", func(t *testing.T) []*server {
			port := freePort(t)
			startRedisProcess(t, port, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
			args := []string{"--public", "--history_ttl", "1", "--broker", "redis", "--redis_url", fmt.Sprintf("redis://127.0.0.1:%d/0", port)}
			return []*server{startServer(t, nil, args...), startServer(t, nil, args...)}
		}},
		{"broker nats (JetStream)", func(t *testing.T) []*server {
			port := freePort(t)
			startNATSJetStream(t, port, t.TempDir())
			args := []string{"--public", "--history_ttl", "1", "--broker", "nats", "--nats_servers", fmt.Sprintf("nats://127.0.0.1:%d", port)}
			return []*server{startServer(t, nil, args...), startServer(t, nil, args...)}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			nodes := tc.start(t)
			for _, s := range nodes {
				waitHealth(t, s, 200)
			}
			stream := uniqueStream(t, "idle")
			var trackers []*tracker
			for i, s := range nodes {
				trackers = append(trackers,
					newTracker(t, fmt.Sprintf("ext on node %d", i), stream, []*server{s}, "actioncable-v1-ext-json", false),
					newTracker(t, fmt.Sprintf("plain on node %d", i), stream, []*server{s}, "actioncable-v1-json", false))
			}
			p := &publisher{stream: stream, nodes: nodes, accepted: map[int]bool{}}
			p.run(2, 10)
			waitForAll(t, p, trackers)
			last := trackers[0].position()
			// Idle until the broker no longer knows the position: a history
			// request from it is refused.
			deadline := time.Now().Add(60 * time.Second)
			for historyAnswer(t, nodes[0], stream, last.epoch, last.offset) != "reject_history" {
				if time.Now().After(deadline) {
					t.Fatal("the stream's state did not expire within 60 s")
				}
				time.Sleep(200 * time.Millisecond) // polling the broker's expiry
			}
			p.run(2, 10)
			settle(t, tc.name+": stream idle for ten history TTLs", p, trackers)
		})
	}
}

// position is a tracker's last (epoch, offset).
type position struct {
	epoch  string
	offset uint64
}

func (tr *tracker) position() position {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return position{tr.epoch, tr.offset}
}

// waitForAll waits until every tracker has every accepted publication.
func waitForAll(t *testing.T, p *publisher, trackers []*tracker) {
	t.Helper()
	p.mu.Lock()
	var accepted []int
	for n := range p.accepted {
		accepted = append(accepted, n)
	}
	p.mu.Unlock()
	for _, tr := range trackers {
		waitUntil(t, tr.name+" to have every publication", func() bool { return len(tr.missing(accepted, 1)) == 0 })
	}
}

// historyAnswer subscribes a new client to stream asking history from
// (epoch, offset) and returns the type of the answer: confirm_history or
// reject_history.
func historyAnswer(t *testing.T, s *server, stream, epoch string, offset uint64) string {
	t.Helper()
	c := dialWS(t, s, dialOpts{})
	defer c.conn.Close()
	c.welcome()
	id := identifier(stream)
	c.send(fmt.Sprintf(`{"command":"subscribe","identifier":%s,"history":{"streams":{%s:{"epoch":%q,"offset":%d}}}}`, quoted(id), quoted(stream), epoch, offset))
	for {
		f := c.next(10 * time.Second)
		for _, answer := range []string{"confirm_history", "reject_history"} {
			if strings.HasPrefix(f, `{"type":"`+answer+`"`) {
				return answer
			}
		}
	}
}

// expectOldEpochRefused checks that a client holding the position
// tracker had before the fault (its first epoch) is refused history.
func expectOldEpochRefused(t *testing.T, s *server, stream string, tr *tracker) {
	t.Helper()
	tr.mu.Lock()
	first := tr.firstEpoch
	tr.mu.Unlock()
	if first == "" {
		t.Fatal("the tracker saw no epoch")
	}
	if got := historyAnswer(t, s, stream, first, 1); got != "reject_history" {
		t.Errorf("history from the epoch before the fault: %s", got)
	}
}

// copyDir copies the files under src into dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestJetStreamStoreLostSeenAtOnce: NATS comes back without its JetStream
// store. A client holding a position of the lost epoch is refused history
// at once, and a client restoring a session cached in the lost store gets
// a fresh session at once: neither waits for the broker's timeout (5 s).
func TestJetStreamStoreLostSeenAtOnce(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	cmd := startNATSJetStream(t, port, t.TempDir())
	s := startServer(t, nil, "--public", "--broker", "nats", "--nats_servers", fmt.Sprintf("nats://127.0.0.1:%d", port))
	waitHealth(t, s, 200)
	stream := uniqueStream(t, "lost")
	c := dialWS(t, s, dialOpts{})
	sid := c.welcome()
	c.subscribe(stream)
	publish(t, s, fmt.Sprintf(`{"stream":%q,"data":"1"}`, stream))
	b := c.nextBroadcast()
	// The session is cached when its connection goes.
	c.conn.Close()
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	waitUntil(t, "the session to be cached", func() bool {
		s, err := js.Stream(context.Background(), "KV_cablehub_sessions")
		return err == nil && s.CachedInfo().State.Msgs > 0
	})
	cmd.Process.Kill()
	cmd.Wait()
	startNATSJetStream(t, port, t.TempDir())
	waitHealth(t, s, 200)

	began := time.Now()
	if got := historyAnswer(t, s, stream, b.Epoch, b.Offset); got != "reject_history" {
		t.Errorf("history from the lost epoch: %s", got)
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Errorf("reject_history took %s", d)
	}
	began = time.Now()
	r := dialWS(t, s, dialOpts{query: "?sid=" + sid})
	if w := r.next(10 * time.Second); strings.Contains(w, `"restored":true`) || !strings.HasPrefix(w, `{"type":"welcome"`) {
		t.Errorf("restore of a session of the lost store: %s", w)
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Errorf("the welcome took %s\n%s", d, s.Logs())
	}
}

// natsCluster runs three nats-servers clustered with JetStream (each in a
// store of its own) and returns their client ports and processes.
func natsCluster(t *testing.T) ([]int, []*exec.Cmd) {
	t.Helper()
	ports := []int{freePort(t), freePort(t), freePort(t)}
	routes := []int{freePort(t), freePort(t), freePort(t)}
	var all []string
	for _, r := range routes {
		all = append(all, fmt.Sprintf("nats://127.0.0.1:%d", r))
	}
	cmds := make([]*exec.Cmd, 3)
	for i := range ports {
		cmd := exec.Command(serviceBinary(t, "nats-server"), "-js", "-sd", t.TempDir(), "-a", "127.0.0.1", "-p", fmt.Sprint(ports[i]),
			"-n", fmt.Sprintf("n%d", i), "--cluster_name", "cablehub-test", "--cluster", all[i], "--routes", strings.Join(all, ","))
		if err := cmd.Start(); err != nil {
			t.Fatalf("nats-server: %v", err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		cmds[i] = cmd
	}
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", ports[0]), nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	waitUntil(t, "the JetStream cluster to elect its leader", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := js.AccountInfo(ctx)
		return err == nil
	})
	return ports, cmds
}

// TestFaultsJetStreamFailover: a JetStream cluster of three servers loses
// the server leading the history stream; the stream's replicas elect
// another leader and nothing acknowledged is lost.
func TestFaultsJetStreamFailover(t *testing.T) {
	t.Parallel()
	ports, cmds := natsCluster(t)
	// Each node lists every server, as docs/cluster.md says to: a node
	// that knew of one only could create the stream before the client
	// learnt of the others, with fewer replicas.
	all := fmt.Sprintf("nats://127.0.0.1:%d,nats://127.0.0.1:%d,nats://127.0.0.1:%d", ports[0], ports[1], ports[2])
	node := func() *server {
		return startServer(t, nil, "--public", "--broker", "nats", "--nats_servers", all)
	}
	a, b := node(), node()
	for _, s := range []*server{a, b} {
		waitHealth(t, s, 200)
	}
	stream := uniqueStream(t, "faults")
	trackers := pairTrackers(t, stream, a, b)
	p := &publisher{stream: stream, nodes: []*server{a, b}, accepted: map[int]bool{}}
	p.run(4, 400)

	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d,nats://127.0.0.1:%d,nats://127.0.0.1:%d", ports[0], ports[1], ports[2]))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	info, err := js.Stream(context.Background(), "cablehub_history")
	if err != nil {
		t.Fatal(err)
	}
	ci := info.CachedInfo()
	if ci.Config.Replicas != 3 || ci.Cluster == nil || ci.Cluster.Leader == "" {
		t.Fatalf("history stream: %d replicas, cluster %+v", ci.Config.Replicas, ci.Cluster)
	}
	leader := ci.Cluster.Leader
	var killed int
	fmt.Sscanf(leader, "n%d", &killed)
	// The leader dies while four publishers are busy.
	underLoad(t, p, 100, func() { p.run(4, 800) }, func() {
		cmds[killed].Process.Kill()
		cmds[killed].Wait()
	})
	waitUntil(t, "another leader of the history stream", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s, err := js.Stream(ctx, "cablehub_history")
		return err == nil && s.CachedInfo().Cluster != nil && s.CachedInfo().Cluster.Leader != "" && s.CachedInfo().Cluster.Leader != leader
	})
	p.run(4, 800)
	settle(t, fmt.Sprintf("broker nats (JetStream cluster of 3, R3): the history stream's leader (%s) killed", leader), p, trackers)
}

// TestFaultsMemoryRestart: the memory broker lives in its node; a node
// restarted on the same address is another process with another epoch,
// so reconnecting clients holding positions of the old one are told
// (reject_history) rather than served offsets that mean something else.
func TestFaultsMemoryRestart(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	args := []string{"--public", "--port", fmt.Sprint(port)}
	s := startServer(t, nil, args...)
	stream := uniqueStream(t, "faults")
	trackers := []*tracker{
		newTracker(t, "ext (reconnects)", stream, []*server{s}, "actioncable-v1-ext-json", true),
		newTracker(t, "ext 2 (reconnects)", stream, []*server{s}, "actioncable-v1-ext-json", true),
	}
	p := &publisher{stream: stream, nodes: []*server{s}, accepted: map[int]bool{}}
	p.run(4, 400)
	p.markLoss()
	s.cmd.Process.Kill()
	<-s.done
	restarted := startServer(t, nil, args...)
	for _, tr := range trackers {
		waitUntil(t, tr.name+" to be told of the lost history", func() bool {
			tr.mu.Lock()
			defer tr.mu.Unlock()
			return tr.rejects > 0
		})
	}
	p.nodes = []*server{restarted}
	p.run(4, 400)
	settle(t, "broker memory, one node restarted", p, trackers)
}
