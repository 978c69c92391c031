package e2e

import (
	"bufio"
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
