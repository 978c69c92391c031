package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// runCLI runs cablehub to completion (it must exit by itself) and returns
// its exit code and output.
func runCLI(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	return runCLIIn(t, "", env, args...)
}

// runCLIIn is runCLI with dir as the working directory ("" for the
// test's).
func runCLIIn(t *testing.T, dir string, env []string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

func TestInvalidConfigExitsWithOneLine(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"port out of range", nil, []string{"--port", "70000"}, "--port"},
		{"port not a number", nil, []string{"--port=abc"}, "--port"},
		{"env port", []string{"ANYCABLE_PORT=abc"}, nil, "ANYCABLE_PORT"},
		{"PORT env", []string{"PORT=-1"}, nil, "--port"},
		{"unknown broker", nil, []string{"--broker", "zookeeper"}, "--broker"},
		{"bad duration", nil, []string{"--presence_ttl", "soon"}, "--presence_ttl"},
		{"bad bool env", []string{"ANYCABLE_PUBLIC=maybe"}, nil, "--public"},
		{"unknown flag", nil, []string{"--nope"}, "--nope"},
		{"bad log level", nil, []string{"--log_level", "loud"}, "--log_level"},
		{"api_port equals port", nil, []string{"--port", "9000", "--api_port", "9000"}, "--api_port"},
		{"bad body size", nil, []string{"--api_max_body_size", "0"}, "--api_max_body_size"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, c.env, c.args...)
			if code != 1 {
				t.Fatalf("exit %d, want 1\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], c.want) {
				t.Errorf("stderr %q: want one line naming %s", stderr, c.want)
			}
		})
	}
}

func TestHelpGroupsFlags(t *testing.T) {
	t.Parallel()
	code, stdout, _ := runCLI(t, nil, "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"Server:", "WebSocket:", "Streams and JWT:", "API (REST and gRPC):", "Broker:", "Logging and metrics:", "--api_cors_hosts", "ANYCABLE_API_SECRET", "PORT"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

func TestPortTakenIsAClearError(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	port := s.Main[strings.LastIndex(s.Main, ":")+1:]
	code, _, stderr := runCLI(t, nil, "--host", "127.0.0.1", "--port", port)
	if code != 1 || !strings.Contains(stderr, "--port") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestJSONLogs(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public", "--log_format", "json")
	if !strings.Contains(s.Logs(), `"msg":"Handle API requests at http://`+s.Main+`/api (no authorization)"`) {
		t.Errorf("json log:\n%s", s.Logs())
	}
}
