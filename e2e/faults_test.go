package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The fault-injection suite: numbered publications through several nodes,
// subscribers that keep their position the way @anycable/core does, and a
// fault in the middle. Each subscriber must end up with every publication
// that was answered 201 exactly once, in order within an epoch, unless it
// was told it cannot (reject_history).

// tracker is one subscriber of a stream. With recover set it reconnects
// after losing its connection (to the next node in its list), restoring its
// session by sid or subscribing anew, and asks for history from the last
// (epoch, offset) it saw.
type tracker struct {
	t       *testing.T
	name    string
	stream  string
	id      string
	nodes   []*server
	proto   string
	recover bool

	mu       sync.Mutex
	counts   map[int]int
	epoch    string
	offset   uint64
	sid      string
	disorder int // offsets that went back within one epoch
	epochs   int // epoch changes seen after a first position: the broker lost its data
	// firstEpoch is the epoch of the first stamped publication seen.
	firstEpoch string
	rejects    int // reject_history answers and stream_gap disconnects: the client was told
	conn       *websocket.Conn
	done       bool
}

func newTracker(t *testing.T, name, stream string, nodes []*server, proto string, recover bool) *tracker {
	tr := &tracker{t: t, name: name, stream: stream, id: identifier(stream), nodes: nodes, proto: proto, recover: recover, counts: map[int]int{}}
	if !tr.connect(0) {
		t.Fatalf("%s: cannot connect", name)
	}
	t.Cleanup(tr.stop)
	return tr
}

// frame is what the tracker reads of a server message.
type frame struct {
	Type        string          `json:"type"`
	Reason      string          `json:"reason"`
	Identifier  string          `json:"identifier"`
	Message     json.RawMessage `json:"message"`
	Epoch       string          `json:"epoch"`
	Offset      uint64          `json:"offset"`
	SID         string          `json:"sid"`
	Restored    bool            `json:"restored"`
	RestoredIDs []string        `json:"restored_ids"`
}

// connect dials nodes[i%len], restoring the previous session if any, and
// starts reading. It reports false when the node did not answer.
func (tr *tracker) connect(i int) bool {
	tr.mu.Lock()
	sid := tr.sid
	tr.mu.Unlock()
	node := tr.nodes[i%len(tr.nodes)]
	url := "ws://" + node.Main + "/cable"
	if sid != "" {
		url += "?sid=" + sid
	}
	d := websocket.Dialer{Subprotocols: []string{tr.proto}, HandshakeTimeout: 5 * time.Second}
	conn, _, err := d.Dial(url, nil)
	if err != nil {
		return false
	}
	var w frame
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := conn.ReadJSON(&w); err != nil || w.Type != "welcome" {
		conn.Close()
		return false
	}
	conn.SetReadDeadline(time.Time{})
	tr.mu.Lock()
	tr.conn, tr.sid = conn, w.SID
	history := ""
	if tr.epoch != "" {
		history = fmt.Sprintf(`{"streams":{%s:{"epoch":%q,"offset":%d}}}`, quoted(tr.stream), tr.epoch, tr.offset)
	}
	tr.mu.Unlock()
	switch {
	case slices.Contains(w.RestoredIDs, tr.id) && history != "":
		conn.WriteMessage(websocket.TextMessage, []byte(historyCmd(tr.id, history)))
	case history != "":
		conn.WriteMessage(websocket.TextMessage, []byte(`{"command":"subscribe","identifier":`+quoted(tr.id)+`,"history":`+history+`}`))
	default:
		conn.WriteMessage(websocket.TextMessage, []byte(subscribeCmd(tr.id)))
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		var c frame
		if err := conn.ReadJSON(&c); err != nil || c.Type != "confirm_subscription" {
			tr.t.Errorf("%s: subscribe: %+v %v", tr.name, c, err)
		}
		conn.SetReadDeadline(time.Time{})
	}
	go tr.read(conn, i)
	return true
}

func (tr *tracker) read(conn *websocket.Conn, i int) {
	for {
		var f frame
		if err := conn.ReadJSON(&f); err != nil {
			break
		}
		tr.handle(&f)
	}
	if tr.stopped() || !tr.recover {
		return
	}
	deadline := time.Now().Add(30 * time.Second)
	for next := i + 1; time.Now().Before(deadline); next++ {
		if tr.stopped() {
			return // the test ended (its servers may stop first)
		}
		if tr.connect(next) {
			return
		}
		time.Sleep(100 * time.Millisecond) // between reconnect attempts, as clients back off
	}
	if !tr.stopped() {
		tr.t.Errorf("%s: could not reconnect", tr.name)
	}
}

// stopped reports whether the tracker was stopped (its test ended).
func (tr *tracker) stopped() bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.done
}

func (tr *tracker) handle(f *frame) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	switch {
	case f.Type == "reject_history", f.Type == "disconnect" && f.Reason == "stream_gap":
		tr.rejects++
	case f.Type == "" && f.Identifier == tr.id && len(f.Message) > 0:
		var n int
		if err := json.Unmarshal(f.Message, &n); err != nil {
			tr.t.Errorf("%s: not a numbered message: %s", tr.name, f.Message)
			return
		}
		tr.counts[n]++
		if f.Epoch != "" {
			if f.Epoch == tr.epoch && f.Offset <= tr.offset {
				tr.disorder++
			}
			if tr.epoch != "" && f.Epoch != tr.epoch {
				tr.epochs++
			}
			if tr.firstEpoch == "" {
				tr.firstEpoch = f.Epoch
			}
			tr.epoch, tr.offset = f.Epoch, f.Offset
		}
	}
}

// missing lists up to max accepted numbers the tracker lacks.
func (tr *tracker) missing(accepted []int, max int) []int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []int
	for _, n := range accepted {
		if tr.counts[n] == 0 && len(out) < max {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

func (tr *tracker) stop() {
	tr.mu.Lock()
	tr.done = true
	c := tr.conn
	tr.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// pairTrackers subscribes to stream an extended-protocol client on each of
// two nodes (recovering on the other one when its node goes) and a plain
// client on b.
func pairTrackers(t *testing.T, stream string, a, b *server) []*tracker {
	return []*tracker{
		newTracker(t, "ext on A", stream, []*server{a, b}, "actioncable-v1-ext-json", true),
		newTracker(t, "ext on B", stream, []*server{b, a}, "actioncable-v1-ext-json", true),
		newTracker(t, "plain on B", stream, []*server{b}, "actioncable-v1-json", false),
	}
}

// publisher sends numbered publications to a stream through nodes in turn
// and records which were accepted (201).
type publisher struct {
	stream   string
	nodes    []*server
	next     atomic.Int64
	mu       sync.Mutex
	accepted map[int]bool
	sent     int
	// beforeLoss holds what was accepted before the shared service lost
	// its data: a subscriber that sees the epoch change has been told that
	// of these it may miss the ones published last.
	beforeLoss map[int]bool
	// unsent counts publications given up because their run overran
	// publishRunLimit; settle fails the test on any.
	unsent int
}

// publishRunLimit bounds one run. A run takes seconds; with a server that
// stops answering, each call waits for the client's 10 s timeout, and a
// worker's hundreds of calls would hold the test past go test's -timeout.
const publishRunLimit = 2 * time.Minute

// markLoss records that the shared service is about to lose its data.
func (p *publisher) markLoss() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.beforeLoss = map[int]bool{}
	for n := range p.accepted {
		p.beforeLoss[n] = true
	}
}

func (p *publisher) publish(count int, deadline time.Time) {
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range count {
		if time.Now().After(deadline) {
			p.mu.Lock()
			p.unsent += count - i
			p.mu.Unlock()
			return
		}
		n := int(p.next.Add(1))
		node := p.nodes[n%len(p.nodes)]
		body := fmt.Sprintf(`{"stream":%q,"data":"%d"}`, p.stream, n)
		resp, err := client.Post("http://"+node.Main+"/api/publish", "application/json", strings.NewReader(body))
		ok := err == nil && resp.StatusCode == 201
		if err == nil {
			resp.Body.Close()
		}
		p.mu.Lock()
		p.sent++
		if ok {
			p.accepted[n] = true
		}
		p.mu.Unlock()
	}
}

// run publishes count numbered publications from workers goroutines,
// giving up those not sent within publishRunLimit.
func (p *publisher) run(workers, count int) {
	deadline := time.Now().Add(publishRunLimit)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() { defer wg.Done(); p.publish(count/workers, deadline) }()
	}
	wg.Wait()
}

// acceptedCount is how many publications were accepted so far.
func (p *publisher) acceptedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.accepted)
}

// underLoad runs load in the background, calls fault once load has got
// `after` more publications accepted by p (the fault strikes while
// publishers are busy), and returns once load is done.
func underLoad(t *testing.T, p *publisher, after int, load, fault func()) {
	t.Helper()
	done := make(chan struct{})
	base := p.acceptedCount()
	go func() { defer close(done); load() }()
	waitUntil(t, fmt.Sprintf("%d more accepted publications", after), func() bool { return p.acceptedCount() >= base+after })
	fault()
	<-done
}

// settle waits until every tracker has every accepted publication (or a
// deadline passes), then checks and logs each: missing, duplicated, out of
// order.
func settle(t *testing.T, setup string, p *publisher, trackers []*tracker) {
	t.Helper()
	p.mu.Lock()
	accepted := make([]int, 0, len(p.accepted))
	for n := range p.accepted {
		accepted = append(accepted, n)
	}
	sent, unsent := p.sent, p.unsent
	p.mu.Unlock()
	if unsent > 0 {
		t.Errorf("%s: %d publications not sent: a run took over %s (the server stopped answering?)", setup, unsent, publishRunLimit)
	}
	if len(accepted) == 0 {
		t.Fatalf("%s: nothing was accepted", setup)
	}
	p.mu.Lock()
	beforeLoss := p.beforeLoss
	p.mu.Unlock()
	missing := func(tr *tracker) (miss, dup int) {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		for _, n := range accepted {
			if tr.counts[n] == 0 && !(tr.epochs > 0 && beforeLoss[n]) {
				miss++
			}
		}
		for _, c := range tr.counts {
			if c > 1 {
				dup += c - 1
			}
		}
		return miss, dup
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, tr := range trackers {
		told := time.Now().Add(5 * time.Second) // a client told of a loss waits less
		for time.Now().Before(deadline) {
			tr.mu.Lock()
			rejected := tr.rejects > 0
			tr.mu.Unlock()
			if miss, _ := missing(tr); miss == 0 || (rejected && time.Now().After(told)) {
				break
			}
			time.Sleep(50 * time.Millisecond) // polling the tracker's counts
		}
		miss, dup := missing(tr)
		tr.mu.Lock()
		disorder, rejects, epochs := tr.disorder, tr.rejects, tr.epochs
		tr.mu.Unlock()
		t.Logf("%s | %s: sent %d, accepted %d, missing %d, duplicated %d, out of order %d, told (reject_history/stream_gap) %d, epoch changes %d",
			setup, tr.name, sent, len(accepted), miss, dup, disorder, rejects, epochs)
		if (miss > 0 && rejects == 0) || dup > 0 || disorder > 0 {
			t.Errorf("%s | %s: %d missing (%v), %d duplicated, %d out of order", setup, tr.name, miss, tr.missing(accepted, 10), dup, disorder)
		}
	}
}

// TestFaultsRedisCluster runs the faults the Redis broker with Redis
// pub/sub survives: two nodes publishing, and a node killed (-9) while its
// clients are subscribed (they reconnect to the other node and recover).
func TestFaultsRedisCluster(t *testing.T) {
	const setup = "broker redis, pubsub redis"
	t.Run("two publishing nodes", func(t *testing.T) {
		a, b := redisCluster(t, 13)
		stream := uniqueStream(t, "faults")
		nodes := []*server{a, b}
		trackers := pairTrackers(t, stream, a, b)
		p := &publisher{stream: stream, nodes: nodes, accepted: map[int]bool{}}
		p.run(8, 2000)
		settle(t, setup+", two publishing nodes", p, trackers)
	})
	t.Run("node killed", func(t *testing.T) {
		a, b := redisCluster(t, 13)
		stream := uniqueStream(t, "faults")
		trackers := pairTrackers(t, stream, a, b)
		p := &publisher{stream: stream, nodes: []*server{b}, accepted: map[int]bool{}}
		p.run(4, 600)
		a.cmd.Process.Kill()
		p.run(4, 600)
		settle(t, setup+", node killed", p, trackers)
	})
}

// TestFaultsClientKilled: on one node (memory broker), subscribers whose
// sockets are cut reconnect, restore and recover what they missed.
func TestFaultsClientKilled(t *testing.T) {
	s := startServer(t, nil, "--public")
	stream := uniqueStream(t, "faults")
	trackers := []*tracker{
		newTracker(t, "ext, cut", stream, []*server{s}, "actioncable-v1-ext-json", true),
		newTracker(t, "plain", stream, []*server{s}, "actioncable-v1-json", false),
	}
	p := &publisher{stream: stream, nodes: []*server{s}, accepted: map[int]bool{}}
	p.run(4, 400)
	trackers[0].mu.Lock()
	trackers[0].conn.UnderlyingConn().Close()
	trackers[0].mu.Unlock()
	p.run(4, 400)
	settle(t, "broker memory, one node, client cut", p, trackers)
}

// TestFaultsRedisRestart: Redis restarts without persistence (its data,
// epoch included, lost) while two nodes publish and subscribers stay
// connected. Publications answered 501 while it is down are not accepted;
// every accepted one reaches every subscriber: the nodes start a new epoch,
// and what a node missed while it re-subscribed is caught up from history.
func TestFaultsRedisRestart(t *testing.T) {
	port := freePort(t)
	proc := startRedis(t, port)
	args := []string{"--public", "--broker", "redis", "--redis_url", fmt.Sprintf("redis://127.0.0.1:%d/0", port)}
	a, b := startServer(t, nil, args...), startServer(t, nil, args...)
	stream := uniqueStream(t, "faults")
	trackers := pairTrackers(t, stream, a, b)
	p := &publisher{stream: stream, nodes: []*server{a, b}, accepted: map[int]bool{}}
	p.run(4, 400)
	p.markLoss()
	proc.Process.Kill()
	proc.Wait()
	waitHealth(t, a, 503)
	p.run(2, 4) // answered 501: not accepted
	startRedis(t, port)
	// Publish while the nodes reconnect, through both.
	p.run(4, 800)
	waitHealth(t, a, 200)
	waitHealth(t, b, 200)
	p.run(4, 400)
	settle(t, "broker redis, pubsub redis, Redis restarted without its data", p, trackers)
}

// clusterSetup starts two nodes sharing a broker and pub/sub on services of
// the test's own, and can restart the service they share (its data kept
// or not, as the setup says).
type clusterSetup struct {
	name  string
	start func(t *testing.T) (a, b *server, restart func())
}

// natsService runs a nats-server of the test's own (with JetStream and a
// store that survives restarts when js is set) and restarts it on the same
// port.
func natsService(t *testing.T, js bool) (url string, restart func()) {
	t.Helper()
	port := freePort(t)
	dir := t.TempDir()
	start := func() *exec.Cmd {
		if js {
			return startNATSJetStream(t, port, dir)
		}
		cmd := exec.Command(serviceBinary(t, "nats-server"), "-a", "127.0.0.1", "-p", fmt.Sprint(port))
		if err := cmd.Start(); err != nil {
			t.Fatalf("nats-server: %v", err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	cmd := start()
	return fmt.Sprintf("nats://127.0.0.1:%d", port), func() {
		cmd.Process.Kill()
		cmd.Wait()
		cmd = start()
	}
}

var faultSetups = []clusterSetup{
	{"broker redis, pubsub nats", func(t *testing.T) (*server, *server, func()) {
		nats, restart := natsService(t, false)
		if out, err := exec.Command("redis-cli", "-n", "14", "flushdb").CombinedOutput(); err != nil {
			t.Fatalf("flushdb: %v %s", err, out)
		}
		args := []string{"--public", "--broker", "redis", "--redis_url", redisURL(t, 14), "--pubsub", "nats", "--nats_servers", nats}
		return startServer(t, nil, args...), startServer(t, nil, args...), restart
	}},
	{"broker nats (JetStream)", func(t *testing.T) (*server, *server, func()) {
		nats, restart := natsService(t, true)
		args := []string{"--public", "--broker", "nats", "--nats_servers", nats}
		return startServer(t, nil, args...), startServer(t, nil, args...), restart
	}},
}

// TestFaultsNATSSetups: for each NATS setup, two nodes publishing to one
// stream, a node killed, and NATS restarted, with subscribers on both
// nodes.
func TestFaultsNATSSetups(t *testing.T) {
	for _, setup := range faultSetups {
		t.Run(setup.name, func(t *testing.T) {
			a, b, restart := setup.start(t)
			for _, s := range []*server{a, b} {
				waitHealth(t, s, 200)
			}
			stream := uniqueStream(t, "faults")
			trackers := pairTrackers(t, stream, a, b)
			p := &publisher{stream: stream, nodes: []*server{a, b}, accepted: map[int]bool{}}
			p.run(8, 1600) // two publishing nodes
			restart()
			waitHealth(t, b, 200)
			p.nodes = []*server{b}
			p.run(4, 400) // after NATS came back
			a.cmd.Process.Kill()
			p.run(4, 400) // after node A died
			settle(t, setup.name+": two publishing nodes, NATS restarted, node killed", p, trackers)
		})
	}
}

// TestFaultsDataLoss: the shared service loses its data mid-run (a new
// epoch starts) while two nodes publish and subscribers stay connected:
// every accepted publication still reaches every subscriber once.
func TestFaultsDataLoss(t *testing.T) {
	cases := []struct {
		name  string
		start func(t *testing.T) (a, b *server, lose func())
	}{
		{"broker redis, pubsub redis: FLUSHALL", func(t *testing.T) (*server, *server, func()) {
			a, b := redisCluster(t, 13)
			return a, b, func() {
				if out, err := exec.Command("redis-cli", "-n", "13", "flushdb").CombinedOutput(); err != nil {
					t.Fatalf("flushdb: %v %s", err, out)
				}
			}
		}},
		{"broker redis, pubsub nats: Redis restarted without its data", func(t *testing.T) (*server, *server, func()) {
			port := freePort(t)
			proc := startRedis(t, port)
			nats, _ := natsService(t, false)
			args := []string{"--public", "--broker", "redis", "--redis_url", fmt.Sprintf("redis://127.0.0.1:%d/0", port), "--pubsub", "nats", "--nats_servers", nats}
			a, b := startServer(t, nil, args...), startServer(t, nil, args...)
			return a, b, func() {
				proc.Process.Kill()
				proc.Wait()
				startRedis(t, port)
			}
		}},
		{"broker nats: NATS restarted without its store", func(t *testing.T) (*server, *server, func()) {
			port := freePort(t)
			dir := t.TempDir()
			cmd := startNATSJetStream(t, port, dir)
			args := []string{"--public", "--broker", "nats", "--nats_servers", fmt.Sprintf("nats://127.0.0.1:%d", port)}
			a, b := startServer(t, nil, args...), startServer(t, nil, args...)
			return a, b, func() {
				cmd.Process.Kill()
				cmd.Wait()
				startNATSJetStream(t, port, t.TempDir())
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b, lose := tc.start(t)
			for _, s := range []*server{a, b} {
				waitHealth(t, s, 200)
			}
			stream := uniqueStream(t, "faults")
			trackers := pairTrackers(t, stream, a, b)
			p := &publisher{stream: stream, nodes: []*server{a, b}, accepted: map[int]bool{}}
			p.run(4, 800)
			p.markLoss()
			lose()
			for _, s := range []*server{a, b} {
				waitHealth(t, s, 200)
			}
			p.run(4, 800)
			settle(t, tc.name, p, trackers)
			if t.Failed() {
				t.Logf("node A:\n%s\nnode B:\n%s", a.Logs(), b.Logs())
			}
		})
	}
}

// TestFaultsEmbeddedJetStream: the JetStream broker on the NATS server
// embedded in node A: two publishing nodes, then node B killed (its
// clients move to A and recover).
func TestFaultsEmbeddedJetStream(t *testing.T) {
	a, b := jetstreamCluster(t)
	stream := uniqueStream(t, "faults")
	trackers := []*tracker{
		newTracker(t, "ext on A", stream, []*server{a}, "actioncable-v1-ext-json", true),
		newTracker(t, "ext on B (killed)", stream, []*server{b, a}, "actioncable-v1-ext-json", true),
		newTracker(t, "plain on A", stream, []*server{a}, "actioncable-v1-json", false),
	}
	p := &publisher{stream: stream, nodes: []*server{a, b}, accepted: map[int]bool{}}
	p.run(8, 1600)
	b.cmd.Process.Kill()
	p.nodes = []*server{a}
	p.run(4, 400)
	settle(t, "broker nats, embedded in node A: two publishing nodes, node B killed", p, trackers)
}
