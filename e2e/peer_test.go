package e2e

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// peer is a third-party process a test talks to, such as an RPC back end:
// its stdout lines are kept and can be waited for, its stderr is shown
// with them when the test fails, and it gets SIGTERM when the test ends
// (and is killed if it has not exited 10 s later).
type peer struct {
	name string

	mu      sync.Mutex
	lines   []string
	stderr  strings.Builder
	changed chan struct{} // closed and replaced on every new line
}

// startPeer starts cmd (not yet started) as the test's peer called name.
func startPeer(t *testing.T, name string, cmd *exec.Cmd) *peer {
	t.Helper()
	p := &peer{name: name, changed: make(chan struct{})}
	cmd.Stderr = writerFunc(func(b []byte) (int, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.stderr.Write(b)
	})
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// Wait also waits for the copy of stderr, which a process the peer
	// left behind could hold open for good: bound that wait.
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.add(sc.Text())
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s stderr:\n%s\nstdout:\n%s", name, p.stderrText(), strings.Join(p.snapshot(), "\n"))
		}
	})
	return p
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func (p *peer) add(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines = append(p.lines, line)
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *peer) snapshot() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

func (p *peer) stderrText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// waitLine returns the first stdout line matching match, failing the test
// when none has appeared within timeout.
func (p *peer) waitLine(t *testing.T, timeout time.Duration, match func(string) bool) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		changed := p.changed
		for _, l := range p.lines {
			if match(l) {
				p.mu.Unlock()
				return l
			}
		}
		p.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("the %s printed no matching line within %s; stdout so far:\n%s\nstderr:\n%s",
				p.name, timeout, strings.Join(p.snapshot(), "\n"), p.stderrText())
			return ""
		}
	}
}

// appPeer is an RPC back end (e2e/rpcapp, e2e/rpcapp_ruby) that learns
// where Cablehub's REST API is from a "cablehub <url> <key>" line on its
// stdin, so it can start before the Cablehub that calls it.
type appPeer struct {
	*peer
	stdin io.Writer
	ack   string // what its acknowledging line starts with
}

// startAppPeer starts cmd (not yet started) as an RPC back end that
// acknowledges its configuration with "<ack> <url>".
func startAppPeer(t *testing.T, name, ack string, cmd *exec.Cmd) *appPeer {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	return &appPeer{peer: startPeer(t, name, cmd), stdin: stdin, ack: ack}
}

// configure tells the app to broadcast and disconnect through the REST
// API at apiURL (such as http://127.0.0.1:8080/api) with the bearer token
// key, and waits until it has taken it.
func (p *appPeer) configure(t *testing.T, apiURL, key string) {
	t.Helper()
	if _, err := fmt.Fprintf(p.stdin, "cablehub %s %s\n", apiURL, key); err != nil {
		t.Fatalf("configuring the %s: %v", p.name, err)
	}
	p.waitLine(t, 10*time.Second, func(l string) bool { return l == p.ack+" "+apiURL })
}
