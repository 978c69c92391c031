package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDeadlineRedisStopped runs the Redis broker against a private
// redis-server that is then stopped (SIGSTOP: connections stay open,
// nothing answers, as with a Redis stuck on a slow disk or a network that
// drops packets). A publish and a presence read must answer 501 with the
// contract's JSON error saying Redis did not answer in time, well within
// the HTTP client's own 10 s limit, rather than hang; once Redis runs
// again (SIGCONT) publishes answer 201 and reach subscribers.
func TestDeadlineRedisStopped(t *testing.T) {
	port := freePort(t)
	redis := startRedis(t, port)
	// Runs before startRedis's cleanup kills it: a stopped process would
	// hold the test's other cleanups' Redis calls.
	t.Cleanup(func() { redis.Process.Signal(syscall.SIGCONT) })
	s := startServer(t, nil, "--public", "--broker", "redis",
		"--redis_url", fmt.Sprintf("redis://127.0.0.1:%d/0", port), "--publish_timeout", "500ms")
	stream := uniqueStream(t, "deadline")
	pub := func(data string) response {
		return do(t, "POST", "http://"+s.Main+"/api/publish", fmt.Sprintf(`{"stream":%q,"data":%q}`, stream, data))
	}
	c := dialWS(t, s, dialOpts{})
	c.welcome()
	c.subscribe(stream)
	if r := pub("before"); r.Status != 201 {
		t.Fatalf("publish with Redis up: %d %s", r.Status, r.Body)
	}

	if err := redis.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, redis.Process.Pid)
	// Each answer must come near the deadline: 2.5 s leaves 2 s of slack,
	// and is below go-redis's own 3 s read timeout, which is what a call
	// that ignored the deadline would wait for.
	const bound = 2500 * time.Millisecond
	timed := func(what string, call func() response) response {
		start := time.Now()
		r := call()
		if d := time.Since(start); d > bound {
			t.Errorf("%s took %v with a 500ms deadline", what, d)
		}
		return r
	}
	for i := range 3 { // a pooled connection, then new ones
		r := timed("a publish", func() response { return pub(fmt.Sprint("stopped ", i)) })
		assertJSONError(t, r, 501, "did not answer within 500ms")
	}
	presence := timed("a presence read", func() response {
		return do(t, "GET", "http://"+s.Main+"/api/presence/"+stream+"/users", "")
	})
	assertJSONError(t, presence, 501, "did not answer within 500ms")

	if err := redis.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := pub("after")
		if r.Status == 201 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("publishes did not recover once Redis ran again: %d %s", r.Status, r.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// "before" came first; a publication answered 501 may still arrive
	// (Redis had it in its socket buffer when it stopped): 501 means "not
	// confirmed", not "not sent".
	for {
		f := c.next(10 * time.Second)
		if strings.Contains(f, `"message":"after"`) {
			return
		}
		if !strings.Contains(f, `"message":"before"`) && !strings.Contains(f, `"message":"stopped `) {
			t.Fatalf("unexpected frame %s", f)
		}
	}
}

// TestDeadlineNATSStopped does the same with the NATS pub/sub: a stopped
// nats-server keeps the connection open, so nats.go still takes publishes
// into its buffer; a publish must not be answered 201 until the server
// confirms it, so it answers 501 at the deadline, and 201 again once the
// server runs.
func TestDeadlineNATSStopped(t *testing.T) {
	port := freePort(t)
	nats := exec.Command(serviceBinary(t, "nats-server"), "-a", "127.0.0.1", "-p", fmt.Sprint(port))
	if err := nats.Start(); err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	t.Cleanup(func() { nats.Process.Kill(); nats.Wait() })
	t.Cleanup(func() { nats.Process.Signal(syscall.SIGCONT) })
	s := startServer(t, nil, "--public", "--broker", "none", "--pubsub", "nats",
		"--nats_servers", fmt.Sprintf("nats://127.0.0.1:%d", port), "--publish_timeout", "500ms")
	waitHealth(t, s, 200)
	pub := func() response { return do(t, "POST", "http://"+s.Main+"/api/publish", okPub) }
	if r := pub(); r.Status != 201 {
		t.Fatalf("publish with NATS up: %d %s", r.Status, r.Body)
	}
	if err := nats.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitStopped(t, nats.Process.Pid)
	assertJSONError(t, pub(), 501, "did not answer within 500ms")
	if err := nats.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for r := pub(); r.Status != 201; r = pub() {
		if time.Now().After(deadline) {
			t.Fatalf("publishes did not recover once NATS ran again: %d %s", r.Status, r.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitStopped waits until the kernel has stopped process pid (state T in
// /proc/<pid>/stat): a signal is delivered asynchronously, and a busy
// machine could let the process answer one more request before it stops.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		// pid (comm) state ...: the state follows the last ')'.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'T' {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d did not stop: %s", pid, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
