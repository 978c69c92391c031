package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestVersionFlag(t *testing.T) {
	t.Parallel()
	for _, flag := range []string{"--version", "-v"} {
		code, stdout, stderr := runCLI(t, nil, flag)
		if code != 0 || !strings.HasPrefix(stdout, "cablehub ") || strings.Count(stdout, "\n") != 1 || stderr != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", flag, code, stdout, stderr)
		}
	}
}

// A WebSocket client on a wrong path is told where the endpoints are; the
// startup log gives the ws:// URL.
func TestWrongWebSocketPath(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public", "--path", "/cable,/ws")
	req, _ := http.NewRequest("GET", "http://"+s.Main+"/cabel", nil)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(string(body), "/cable, /ws") {
		t.Errorf("wrong path: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(s.Logs(), "(clients connect to ws://"+s.Main+"/cable)") {
		t.Errorf("no ws:// URL in the startup log:\n%s", s.Logs())
	}
	if r := do(t, "GET", "http://"+s.Main+"/api/presence/chat/1/users", ""); r.Status != 404 || !strings.Contains(r.Body, "%2F") {
		t.Errorf("presence with a raw slash: %d %s", r.Status, r.Body)
	}
}

// --healthcheck (the Docker image's health check) exits 0 while the server
// on that port is healthy, 1 when nothing answers.
func TestHealthcheckFlag(t *testing.T) {
	s := startServer(t, nil, "--public")
	_, port, _ := strings.Cut(s.Main, ":")
	if code, _, stderr := runCLI(t, nil, "--healthcheck", "--port", port); code != 0 {
		t.Errorf("healthy server: exit %d %s", code, stderr)
	}
	if code, _, stderr := runCLI(t, nil, "--healthcheck", "--port", fmt.Sprint(freePort(t))); code != 1 || !strings.Contains(stderr, "health check") {
		t.Errorf("no server: exit %d %q", code, stderr)
	}
}
