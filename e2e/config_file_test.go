package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// productionTOML is an anycable.toml as an AnyCable deployment writes it
// following AnyCable's documentation: top-level keys, then one table per
// component.
const productionTOML = `# AnyCable server configuration
secret = "prod-secret-123"
broadcast_adapters = ["http", "redis"]

[server]
host = "0.0.0.0"
port = 8081
health_path = "/up"
allowed_origins = "app.example.com,*.example.com"

[logging]
level = "info"
format = "json"

[rpc]
host = "rails:50051"
concurrency = 12
proxy_headers = ["cookie", "x-api-key"]
proxy_cookies = ["_app_session"]
request_timeout = 2000

[broker]
adapter = "memory"
history_limit = 50

[redis]
url = "redis://127.0.0.1:6379/9"

[http_broadcast]
port = 8090

[jwt]
param = "token"

[streams]
turbo = true
whisper = true

[ws]
paths = ["/cable", "/admin/cable"]

[metrics]
http = "/metrics"

[app]
ping_interval = 5
disconnect_mode = "always"
`

// writeTOML writes text as anycable.toml in a new directory and returns
// the directory.
func writeTOML(t *testing.T, text string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "anycable.toml"), []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// printConfig runs --print-config in dir and decodes the TOML it prints.
func printConfig(t *testing.T, dir string, env []string, args ...string) (string, map[string]any) {
	t.Helper()
	code, stdout, stderr := runCLIIn(t, dir, env, append(args, "--print-config")...)
	if code != 0 || stderr != "" {
		t.Fatalf("--print-config: exit %d: %s", code, stderr)
	}
	tree := map[string]any{}
	if _, err := toml.Decode(stdout, &tree); err != nil {
		t.Fatalf("--print-config printed no TOML: %v\n%s", err, stdout)
	}
	return stdout, tree
}

func tomlAt(tree map[string]any, path string) any {
	var v any = tree
	for _, part := range strings.Split(path, ".") {
		m, _ := v.(map[string]any)
		v = m[part]
	}
	return v
}

// TestAnyCableTomlInEffect starts from ./anycable.toml as AnyCable finds
// it, with ANYCABLE_* variables and a flag over it: --print-config shows
// each source winning where it should, and the server runs with it.
func TestAnyCableTomlInEffect(t *testing.T) {
	t.Parallel()
	dir := writeTOML(t, productionTOML)
	env := []string{"ANYCABLE_RPC_HOST=rails-env:50051", "ANYCABLE_RPC_HOTS=typo:1", "ANYCABLE_DISABLE_TELEMETRY=true"}
	out, tree := printConfig(t, dir, env, "--ping_interval", "7")
	for path, want := range map[string]any{
		"rpc.host":               "rails-env:50051", // the variable over the file
		"app.ping_interval":      int64(7),          // the flag over the file
		"server.port":            int64(8081),
		"server.health_path":     "/up",
		"server.allowed_origins": "app.example.com,*.example.com",
		"rpc.concurrency":        int64(12),
		"rpc.proxy_headers":      []any{"cookie", "x-api-key"},
		"rpc.proxy_cookies":      []any{"_app_session"},
		"rpc.request_timeout":    int64(2000),
		"redis.url":              "redis://127.0.0.1:6379/9",
		"broker.history_limit":   int64(50),
		"jwt.param":              "token",
		"streams.turbo":          true,
		"ws.paths":               []any{"/cable", "/admin/cable"},
		"metrics.http_path":      "/metrics",
		"app.disconnect_mode":    "always",
		"logging.format":         "json",
	} {
		if got := tomlAt(tree, path); !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", path, got, want)
		}
	}
	for _, want := range []string{
		"# Read from ./anycable.toml",
		"# secret = \"********\" (masked)",
		"# WARN: unknown variable ANYCABLE_RPC_HOTS: no Cablehub or AnyCable setting reads it; ignored (did you mean ANYCABLE_RPC_HOST?)",
		"# INFO: ANYCABLE_DISABLE_TELEMETRY is ignored",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("--print-config lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "prod-secret-123") {
		t.Error("--print-config shows the secret")
	}

	// The http broadcaster's default port (8090) may be taken on a busy
	// machine; which port it is does not matter here.
	env = append(env, fmt.Sprintf("ANYCABLE_HTTP_BROADCAST_PORT=%d", freePort(t)))
	s := startServerIn(t, dir, env)
	logs := s.Logs()
	for _, want := range []string{
		`"msg":"Using configuration from file: ./anycable.toml"`,
		`"level":"WARN","msg":"unknown variable ANYCABLE_RPC_HOTS`,
		`Handle WebSocket connections at http://` + s.Main + `/admin/cable`,
		`RPC controller initialized: rails-env:50051 (concurrency: 12`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("startup log lacks %q:\n%s", want, logs)
		}
	}
	resp, err := httpClient.Get("http://" + s.Main + "/up")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /up (the file's health_path): %d", resp.StatusCode)
	}
}

// TestUnknownSettingsWarnByName asserts misspelt or unsupported keys and
// variables are named at startup, and known ones are not.
func TestUnknownSettingsWarnByName(t *testing.T) {
	t.Parallel()
	dir := writeTOML(t, "rpc_host = \"x:1\"\n[rpc]\nhots = \"x:1\"\n[streams]\ncable_ready = true\n[bogus]\nkey = 1\n")
	s := startServerIn(t, dir, []string{"ANYCABLE_RPC_HOTS=x", "ANYCABLE_CABLE_READY_SECRET=k", "ANYCABLE_HISTORY_LIMIT=5"}, "--norpc", "--public")
	logs := s.Logs()
	for _, want := range []string{
		`unknown key rpc_host in ./anycable.toml: no Cablehub or AnyCable setting reads it; ignored (did you mean [rpc] host, the key of --rpc_host?)`,
		`unknown key [rpc] hots in ./anycable.toml: no Cablehub or AnyCable setting reads it; ignored (did you mean [rpc] host?)`,
		`[streams] cable_ready in ./anycable.toml is AnyCable's --cable_ready setting; Cablehub does not support it: CableReady streams are not implemented`,
		`unknown table [bogus] in ./anycable.toml`,
		`unknown variable ANYCABLE_RPC_HOTS`,
		`ANYCABLE_CABLE_READY_SECRET is AnyCable's --cable_ready_secret setting; Cablehub does not support it`,
	} {
		if !strings.Contains(logs, "level=WARN msg=\""+want) {
			t.Errorf("no WARN %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "ANYCABLE_HISTORY_LIMIT") {
		t.Errorf("a known variable was reported:\n%s", logs)
	}
}

// TestConfigFileErrors asserts a missing or malformed file is a one-line
// startup error naming it, and that the file switches have no variables.
func TestConfigFileErrors(t *testing.T) {
	t.Parallel()
	bad := writeTOML(t, "[rpc]\nhost = \"unterminated\n")
	cases := []struct {
		name, dir string
		args      []string
		want      string
	}{
		{"missing", "", []string{"--config-path", "/nonexistent/anycable.toml"}, "cannot read configuration file /nonexistent/anycable.toml: no such file or directory"},
		{"malformed", bad, nil, "cannot parse configuration file ./anycable.toml: toml: line 2"},
		{"bad value", writeTOML(t, "[broker]\nadapter = \"kafka\"\n"), nil, `invalid value "kafka" for [broker] adapter in ./anycable.toml (--broker): must be one of`},
	}
	for _, c := range cases {
		code, stdout, stderr := runCLIIn(t, c.dir, nil, c.args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != 1 || len(lines) != 1 || !strings.Contains(lines[0], c.want) {
			t.Errorf("%s: exit %d, stderr %q, stdout %q; want exit 1 and one line with %q", c.name, code, stderr, stdout, c.want)
		}
	}
	// AnyCable has no variable for --config-path; neither has Cablehub.
	_, tree := printConfig(t, "", []string{"ANYCABLE_CONFIG_PATH=" + filepath.Join(bad, "anycable.toml")})
	if tomlAt(tree, "rpc.host") != "localhost:50051" {
		t.Errorf("ANYCABLE_CONFIG_PATH was read: %v", tomlAt(tree, "rpc.host"))
	}
	// --ignore-config-path skips ./anycable.toml, even a malformed one.
	if code, _, stderr := runCLIIn(t, bad, nil, "--ignore-config-path", "--print-config"); code != 0 {
		t.Errorf("--ignore-config-path: exit %d: %s", code, stderr)
	}
}

// TestPrintConfigLoadsBack asserts what --print-config=secrets prints,
// used as the only configuration, prints the same again.
func TestPrintConfigLoadsBack(t *testing.T) {
	t.Parallel()
	env := []string{"ANYCABLE_REDIS_URL=redis://:pw@127.0.0.1:6379/4", "ANYCABLE_JWT_SECRET=jwt-secret"}
	args := []string{"--print-config=secrets", "--broker", "redis", "--api_port", "9999", "--headers", "Cookie,X-Tenant"}
	code, first, stderr := runCLIIn(t, writeTOML(t, productionTOML), env, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	code, second, stderr := runCLIIn(t, writeTOML(t, first), nil, "--print-config=secrets")
	if code != 0 {
		t.Fatalf("reloading: exit %d: %s", code, stderr)
	}
	if body(first) != body(second) {
		t.Errorf("the printed configuration does not load back to itself:\nfirst:\n%s\nsecond:\n%s", first, second)
	}
	if !strings.Contains(first, `url = "redis://:pw@127.0.0.1:6379/4"`) || !strings.Contains(first, `secret = "jwt-secret"`) {
		t.Errorf("=secrets must print secrets in clear:\n%s", first)
	}
}

// body is a printed configuration without its header comments (which
// name the sources).
func body(printed string) string {
	_, rest, _ := strings.Cut(printed, "\n\n")
	return rest
}

// TestAnyCablePrintedDefaultsLoadQuietly asserts a file of every key
// AnyCable's --print-config writes loads with no unknown-key warnings.
func TestAnyCablePrintedDefaultsLoadQuietly(t *testing.T) {
	t.Parallel()
	text, err := os.ReadFile(filepath.Join(repoRoot, "server", "config", "testdata", "anycable-defaults.toml"))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := printConfig(t, writeTOML(t, string(text)), nil)
	if strings.Contains(out, "# WARN: unknown") {
		t.Errorf("unknown keys in AnyCable's own file:\n%s", out)
	}
	if !strings.Contains(out, "[ws] read_buffer_size") {
		t.Errorf("the settings left at AnyCable's defaults are not noted:\n%s", out)
	}
}
