package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the cablehub binary built once for the package by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cablehub-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "cablehub")
	build := exec.Command("go", "build", "-race", "-o", binary, "github.com/cablehub/cablehub/cmd/cablehub")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building cablehub:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is one cablehub process started by a test.
type server struct {
	t    *testing.T
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs bytes.Buffer
	done chan struct{}
	// Main is host:port of the main listener; API and GRPC are where those
	// are served ("" when not served); Epoch is the memory broker's epoch;
	// all read from the startup log.
	Main, API, GRPC, Epoch string
}

var (
	healthLine = regexp.MustCompile(`Handle health requests at https?://([^/\s"]+)/`)
	apiLine    = regexp.MustCompile(`Handle API requests at https?://([^/\s"]+)/`)
	grpcLine   = regexp.MustCompile(`Handle gRPC API requests at ([^\s"]+) `)
	epochLine  = regexp.MustCompile(`Using in-memory broker \(epoch: ([^,]+),`)
)

// startServer runs cablehub on 127.0.0.1 with a random main port plus args,
// with no ANYCABLE_* variables but env, and waits until it has logged its
// listeners. The process is stopped when the test ends.
func startServer(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	return startServerIn(t, "", env, args...)
}

// startServerIn is startServer with dir as the working directory ("" for
// the test's), where ./anycable.toml is looked for.
func startServerIn(t *testing.T, dir string, env []string, args ...string) *server {
	t.Helper()
	s := &server{t: t, done: make(chan struct{})}
	full := append([]string{"--host", "127.0.0.1", "--port", "0"}, args...)
	s.cmd = exec.Command(binary, full...)
	s.cmd.Dir = dir
	s.cmd.Env = append(cleanEnv(), env...)
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stderr = s.cmd.Stdout
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			s.mu.Lock()
			s.logs.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			select {
			case lines <- sc.Text():
			default:
			}
		}
		s.cmd.Wait()
	}()
	// Disarmed after the server's stop (cleanups run last first), so a
	// stop that hangs is caught too.
	watchdog := time.AfterFunc(hangAfter, func() { hung(t.Name()) })
	t.Cleanup(func() { watchdog.Stop() })
	t.Cleanup(s.stop)

	deadline := time.After(20 * time.Second)
	for s.Main == "" {
		select {
		case line := <-lines:
			if m := healthLine.FindStringSubmatch(line); m != nil {
				s.Main = m[1]
			}
		case <-s.done:
			t.Fatalf("cablehub exited during startup:\n%s", s.Logs())
		case <-deadline:
			t.Fatalf("cablehub did not start in time:\n%s", s.Logs())
		}
	}
	// The health line is the last startup line, so the API and gRPC lines,
	// if any, are already in the log.
	logs := s.Logs()
	if m := apiLine.FindStringSubmatch(logs); m != nil {
		s.API = m[1]
	}
	if m := grpcLine.FindStringSubmatch(logs); m != nil {
		s.GRPC = m[1]
	}
	if m := epochLine.FindStringSubmatch(logs); m != nil {
		s.Epoch = m[1]
	}
	return s
}

// hangAfter is how long a test may hold a server: every test ends within a
// minute, so one still running after this is stuck. The whole run would
// otherwise wait for go test's -timeout, whose report the end of a long
// output may not show.
const hangAfter = 5 * time.Minute

// hung ends the run on a stuck test: every goroutine's stack, then, last,
// the test's name.
func hung(name string) {
	pprof.Lookup("goroutine").WriteTo(os.Stderr, 2)
	fmt.Fprintf(os.Stderr, "\nFAIL: %s still holds a server %s after starting it: stuck (stacks above)\n", name, hangAfter)
	os.Exit(2)
}

// Logs returns what the process has printed so far.
func (s *server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

func (s *server) stop() {
	if s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		s.t.Errorf("cablehub did not stop on SIGTERM within 10s")
	}
}

// cleanEnv is the test's environment without variables cablehub reads.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ANYCABLE_") || strings.HasPrefix(kv, "PORT=") || strings.HasPrefix(kv, "REDIS_URL=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// freePort returns a port that was free a moment ago, for flags that must
// name a port (--api_port, --grpc_port) and services the tests start
// (redis-server, nats-server). It never returns a port twice in a run:
// two parallel tests given the same port would each start a service on
// it, one failing to bind, and both talk to (and kill) the other's.
func freePort(t *testing.T) int {
	t.Helper()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if _, taken := portsGiven.LoadOrStore(port, true); !taken {
			return port
		}
	}
}

// portsGiven are the ports freePort has returned in this run.
var portsGiven sync.Map

// response is what a test looks at in an HTTP answer.
type response struct {
	Status int
	Header http.Header
	Body   string
}

// do sends one HTTP/1.1 request; headers are "Name: value" strings.
func do(t *testing.T, method, url, body string, headers ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ": ")
		req.Header.Set(name, value)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

// httpClient is for requests made without do, bounded as do's are: a
// server that never answers fails the test instead of hanging it.
var httpClient = &http.Client{Timeout: 10 * time.Second}

// stamp is the tail the memory broker adds to a broadcast of stream at
// offset: `,"stream_id":..,"epoch":..,"offset":..`.
func (s *server) stamp(stream string, offset int) string {
	return fmt.Sprintf(`,"stream_id":%q,"epoch":%q,"offset":%d`, stream, s.Epoch, offset)
}
