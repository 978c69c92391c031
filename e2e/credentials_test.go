package e2e

import (
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// credentialSecrets are the passwords and tokens the credential tests put
// in URLs; none may ever be shown.
var credentialSecrets = []string{"rpcPASS1", "natsPASS2", "natsTOKEN3", "redisPASS4", "sentinelPASS5", "redisPASS6", "badPASS7"}

// noCredentials fails t for every secret what shows.
func noCredentials(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range credentialSecrets {
		if strings.Contains(text, s) {
			t.Errorf("%s shows the credential %s:\n%s", what, s, text)
		}
	}
}

// Credentials in --rpc_host, --redis_url, --redis_sentinels and
// --nats_servers, given as flags and as variables, of servers that are
// not there: neither the log (startup, the dependencies' errors while they
// are retried, shutdown), nor /health, nor --print-config shows a password
// or token; --print-config=secrets does (the values got through), and a
// startup error that quotes a URL masks it too.
func TestCredentialsNeverShown(t *testing.T) {
	closed := strconv.Itoa(freePort(t))
	local := "127.0.0.1:" + closed
	sentinel := []string{"--broadcast_adapter", "redis,nats", "--debug",
		"--redis_url", "redis://:redisPASS4@mymaster/0", "--redis_sentinels", "redis://:sentinelPASS5@" + local + "," + local,
		"--nats_servers", "nats://natsuser:natsPASS2@" + local + ",nats://natsTOKEN3@" + local}
	sentinelEnv := []string{"ANYCABLE_RPC_HOST=http://rpcuser:rpcPASS1@" + local + "/rpc"}
	single := []string{"--broker", "redis", "--debug", "--redis_url", "redis://user:redisPASS6@" + local + "/0",
		"--rpc_host", "http://rpcuser:rpcPASS1@" + local + "/rpc"}

	for name, run := range map[string]struct {
		env  []string
		args []string
		log  string // a line that says the dependency's errors were logged
	}{
		"sentinel, NATS, HTTP RPC from the environment": {sentinelEnv, sentinel, "Redis broadcast channel unavailable"},
		"single Redis, HTTP RPC":                        {nil, single, "Redis unavailable"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, printed, _ := runCLI(t, run.env, append(run.args, "--print-config")...)
			noCredentials(t, "--print-config", printed)
			_, clear, _ := runCLI(t, run.env, append(run.args, "--print-config=secrets")...)
			if !strings.Contains(clear, "rpcPASS1") {
				t.Errorf("--print-config=secrets lacks the RPC host's password:\n%s", clear)
			}

			s := startServer(t, run.env, run.args...)
			waitLog(t, s, run.log)
			health := do(t, "GET", "http://"+s.Main+"/health", "")
			if !strings.Contains(health.Body, `"rpc":{`) || !strings.Contains(health.Body, "xxxxx@") {
				t.Errorf("/health lacks the masked RPC host: %s", health.Body)
			}
			noCredentials(t, "/health", health.Body)
			s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.done:
			case <-time.After(15 * time.Second):
				t.Fatal("the server did not stop")
			}
			noCredentials(t, "the log", s.Logs())
		})
	}

	t.Run("startup error", func(t *testing.T) {
		t.Parallel()
		code, stdout, stderr := runCLI(t, nil, "--broker", "redis", "--redis_url", "redis://:badPASS7@127.0.0.1:notaport")
		if code != 1 || !strings.Contains(stderr, "--redis_url") {
			t.Fatalf("exit %d, stderr %q, want 1 and an error naming --redis_url", code, stderr)
		}
		noCredentials(t, "the startup error", stderr+stdout)
	})
}
