package config

import (
	"log/slog"
	"strings"
	"testing"
)

// TestNotices asserts nothing given is ignored silently: each unknown
// variable or file key is a WARN naming it (with the likely intended
// name), an AnyCable setting Cablehub does not support is a WARN saying
// so, and harmless leftovers are one INFO line per kind.
func TestNotices(t *testing.T) {
	file := writeFile(t, "anycable.toml", `
rpc_host = "top-level:1"
[rpc]
hots = "typo:1"
host = "ok:1"
[streams]
cable_ready = true
[ws]
read_buffer_size = 1024
[bogus]
x = 1
[metrics]
http = "/metrics"
tags.env = "prod"
`)
	env := []string{
		"ANYCABLE_RPC_HOTS=x", "ANYCABLE_SSE=true", "ANYCABLE_SSE_PATH=/events", "ANYCABLE_WEBSOCKET_URL=wss://x/cable",
		"ANYCABLE_DISABLE_TELEMETRY=true", "ANYCABLE_PORT=9000", "PORT=9001", "HOME=/root", "ANYCABLE_HTTP_BROADCAST_URL=http://x",
	}
	c := mustLoad(t, file, env)
	want := []struct {
		level slog.Level
		parts []string
	}{
		{slog.LevelWarn, []string{"unknown key rpc_host in " + file, "did you mean [rpc] host, the key of --rpc_host?"}},
		{slog.LevelWarn, []string{"unknown key [rpc] hots in " + file, "did you mean [rpc] host?"}},
		{slog.LevelWarn, []string{"[streams] cable_ready in " + file + " is AnyCable's --cable_ready setting; Cablehub does not support it"}},
		{slog.LevelWarn, []string{"unknown table [bogus] in " + file}},
		{slog.LevelInfo, []string{file + ": ignored AnyCable settings that Cablehub does not have, each at a value that asks for nothing: [ws] read_buffer_size"}},
		{slog.LevelInfo, []string{"ANYCABLE_DISABLE_TELEMETRY is ignored: Cablehub sends no telemetry"}},
		{slog.LevelWarn, []string{"unknown variable ANYCABLE_RPC_HOTS", "did you mean ANYCABLE_RPC_HOST?"}},
		{slog.LevelInfo, []string{"ignored ANYCABLE_HTTP_BROADCAST_URL, ANYCABLE_WEBSOCKET_URL: settings of the anycable gem"}},
	}
	if len(c.Loaded.Notices) != len(want) {
		t.Errorf("%d notices, want %d:\n%s", len(c.Loaded.Notices), len(want), noticeLines(c.Loaded.Notices))
	}
	for i, w := range want {
		if i >= len(c.Loaded.Notices) {
			break
		}
		n := c.Loaded.Notices[i]
		for _, part := range w.parts {
			if n.Level != w.level || !strings.Contains(n.Msg, part) {
				t.Errorf("notice %d: %s %q, want %s with %q", i, n.Level, n.Msg, w.level, part)
			}
		}
	}
	if c.RPC.Host != "ok:1" || c.Server.Port != 9000 || c.Metrics.Path != "/metrics" {
		t.Errorf("known settings: %q %d %q", c.RPC.Host, c.Server.Port, c.Metrics.Path)
	}
}

func noticeLines(ns []Notice) string {
	var b strings.Builder
	for _, n := range ns {
		b.WriteString(n.Level.String() + " " + n.Msg + "\n")
	}
	return b.String()
}

// TestNoNoticesForAnAnyCablePrintedFile asserts that a file holding
// every key AnyCable's --print-config writes, at AnyCable's defaults,
// gets no WARN: none of its keys is unknown, and the settings Cablehub
// lacks ask for nothing at those values.
func TestNoNoticesForAnAnyCablePrintedFile(t *testing.T) {
	c := mustLoad(t, "testdata/anycable-defaults.toml", nil)
	for _, n := range c.Loaded.Notices {
		if n.Level >= slog.LevelWarn && !strings.Contains(n.Msg, notYet) {
			t.Errorf("%s %s", n.Level, n.Msg)
		}
	}
	if c.Server.Port != 8080 || c.RPC.Host != "localhost:50051" || c.Cluster.RedisURL != "redis://localhost:6379" {
		t.Errorf("%+v", c)
	}
}

func TestNearest(t *testing.T) {
	candidates := []string{"ANYCABLE_RPC_HOST", "ANYCABLE_REDIS_URL", "ANYCABLE_PORT"}
	for in, want := range map[string]string{
		"ANYCABLE_RPC_HOTS": "ANYCABLE_RPC_HOST", "ANYCABLE_REDIS_UR": "ANYCABLE_REDIS_URL",
		"ANYCABLE_PROT": "ANYCABLE_PORT", "ANYCABLE_SOMETHING_ELSE": "",
	} {
		if got := nearest(in, candidates); got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
}

// An AnyCable flag Cablehub does not support is a WARN on the command
// line as in the environment and the file, not a refusal; bare booleans
// are taken as AnyCable takes them; at AnyCable's default it is one INFO
// line. A flag no one knows still fails.
func TestAnyCableFlagsOnTheCommandLine(t *testing.T) {
	c := mustLoad(t, "", nil, "--http_broadcast_cors", "--read_buffer_size", "4096", "--enats_debug=false", "--port", "9100")
	got := noticeLines(c.Loaded.Notices)
	for _, want := range []string{
		"WARN --read_buffer_size is AnyCable's setting; Cablehub does not support it: its WebSocket buffer sizes are fixed\n",
		"WARN --http_broadcast_cors is AnyCable's setting; Cablehub does not support it: not implemented yet\n",
		"INFO ignored AnyCable flags that Cablehub does not have, each at a value that asks for nothing: --enats_debug\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("notices lack %q:\n%s", want, got)
		}
	}
	if c.Server.Port != 9100 {
		t.Errorf("port %d", c.Server.Port)
	}
	if _, err := loadWith(t, "", nil, "--http_broadcast_corz"); err == nil || !strings.Contains(err.Error(), "unknown flag --http_broadcast_corz") {
		t.Errorf("unknown flag: %v", err)
	}
}
