package config

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// printed runs --print-config (mode "true" or "secrets") over a file,
// environment and flags, and returns the TOML.
func printed(t *testing.T, mode, file string, env []string, args ...string) string {
	t.Helper()
	if file != "" {
		args = append([]string{"--config-path", file}, args...)
	}
	var out bytes.Buffer
	_, err := Load(Input{Args: append(args, "--print-config="+mode), Environ: env, Out: &out})
	if !errors.Is(err, ErrPrinted) {
		t.Fatalf("--print-config: %v", err)
	}
	if _, err := toml.Decode(out.String(), &map[string]any{}); err != nil {
		t.Fatalf("printed configuration is not TOML: %v\n%s", err, out.String())
	}
	return out.String()
}

// roundTrips are configurations --print-config must reproduce.
func roundTrips(t *testing.T) map[string]func() (string, []string, []string) {
	var pairs [][2]string
	for _, fc := range fileCases {
		pairs = append(pairs, [2]string{fc.key, fc.value})
	}
	full := writeFile(t, "full.toml", tomlFile(pairs))
	return map[string]func() (string, []string, []string){
		"defaults":  func() (string, []string, []string) { return "", nil, nil },
		"every key": func() (string, []string, []string) { return full, nil, nil },
		"derived values": func() (string, []string, []string) {
			return "", nil, []string{"--secret=s3cr3t-derived", "--public", "--broker=nats", "--embed_nats", "--rpc_host=https://app/rpc"}
		},
		"file, environment and flags": func() (string, []string, []string) {
			return full, []string{"ANYCABLE_REDIS_URL=redis://:pa55@r:6379/1", "ANYCABLE_SECRET=env-secret", "ANYCABLE_NATS_SERVERS=nats://tok3n@n:4222",
				"ANYCABLE_PUSHER_WEBHOOK_URL=https://hook:w3bh00k@h.example/hook,https://h2.example/x"}, []string{"--ping_interval=1500ms", "--api_secret=flag-secret"}
		},
	}
}

// TestPrintConfigRoundTrip asserts the printed configuration, with
// secrets, loads back (alone) to the same configuration; and that the
// masked print hides every secret and loads back to the same
// configuration once the secrets come from the environment.
func TestPrintConfigRoundTrip(t *testing.T) {
	for name, input := range roundTrips(t) {
		file, env, args := input()
		want := mustLoad(t, file, env, args...)
		want.Loaded = Loaded{}

		got := mustLoad(t, writeFile(t, "printed.toml", printed(t, "secrets", file, env, args...)), nil)
		if len(got.Loaded.Notices) > 0 {
			t.Errorf("%s: the printed file gets notices: %v", name, got.Loaded.Notices)
		}
		got.Loaded = Loaded{}
		got.Server.NodeID = want.Server.NodeID // random at each start unless given
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: round trip differs:\ngot  %+v\nwant %+v", name, got, want)
		}

		masked := printed(t, "true", file, env, args...)
		var secretEnv []string
		for k, v := range map[string]string{
			"ANYCABLE_SECRET": want.Server.Secret, "ANYCABLE_STREAMS_SECRET": want.Streams.Secret,
			"ANYCABLE_TURBO_STREAMS_SECRET": want.Streams.TurboSecret, "ANYCABLE_JWT_SECRET": want.JWT.Secret,
			"ANYCABLE_HTTP_RPC_SECRET": want.RPC.HTTPSecret, "ANYCABLE_API_SECRET": want.API.Secret,
			"ANYCABLE_BROADCAST_KEY": want.Broadcast.Key, "ANYCABLE_PUSHER_SECRET": want.Pusher.Secret,
			"ANYCABLE_ADMIN_PASSWORD": want.Admin.Password,
		} {
			if v != "" {
				secretEnv = append(secretEnv, k+"="+v)
				if strings.Contains(masked, `"`+v+`"`) {
					t.Errorf("%s: the masked print shows %s", name, k)
				}
			}
		}
		for k, v := range map[string]string{"ANYCABLE_REDIS_URL": want.Cluster.RedisURL, "ANYCABLE_NATS_SERVERS": want.Cluster.NATSServers,
			"ANYCABLE_PUSHER_WEBHOOK_URL": strings.Join(want.Pusher.WebhookURLs, ",")} {
			if strings.Contains(v, "@") {
				secretEnv = append(secretEnv, k+"="+v)
			}
		}
		for _, credential := range []string{"pa55", "tok3n", "w3bh00k"} {
			if strings.Contains(masked, credential) {
				t.Errorf("%s: the masked print shows the credential %s", name, credential)
			}
		}
		got = mustLoad(t, writeFile(t, "masked.toml", masked), secretEnv)
		got.Loaded = Loaded{}
		got.Server.NodeID = want.Server.NodeID // random at each start unless given
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: masked file plus secrets from the environment differs:\ngot  %+v\nwant %+v", name, got, want)
		}
	}
}

// TestPrintConfigShape asserts the printed file's layout: top-level keys,
// then AnyCable's tables in its order, each setting with its flag and
// variables, derived values shown as comments.
func TestPrintConfigShape(t *testing.T) {
	out := printed(t, "true", "", nil, "--secret=abc", "--rpc_host=http://app/rpc")
	for _, want := range []string{
		"# secret = \"********\" (masked)\n",
		"# application secret",
		"(--rpc_host, ANYCABLE_RPC_HOST)\nhost = \"http://app/rpc\"\n",
		"implementation = \"\"\n#   in effect: \"http\"\n",
		"[jwt]\n",
		"paths = [\"/cable\"]\n",
		"allowed_origins = \"\"\n",
		"http_path = \"\"\n",
		"request_timeout = 0\n",
		"ping_interval = 3\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("print lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "abc") {
		t.Errorf("the masked print shows the secret")
	}
	order := []string{"\npublic = ", "\n[server]", "\n[logging]", "\n[rpc]", "\n[broker]", "\n[jwt]", "\n[streams]", "\n[ws]", "\n[api]", "\n[redis]", "\n[nats]", "\n[metrics]", "\n[app]", "\n[disconnector]", "\n[embedded_nats]"}
	last := -1
	for _, s := range order {
		i := strings.Index(out, s)
		if i <= last {
			t.Errorf("%q is out of AnyCable's order", s)
		}
		last = i
	}
}
