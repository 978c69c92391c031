package runner

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cablehub/cablehub/server/config"
)

// flagNames lists every flag --help documents, so that the tests below
// cover a flag added later without being told of it.
func flagNames(t *testing.T) []string {
	t.Helper()
	var help bytes.Buffer
	if _, err := config.Parse([]string{"--help"}, func(string) string { return "" }, &help); err != config.ErrHelp {
		t.Fatalf("--help: %v", err)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^  --([a-z0-9_-]+) \(`).FindAllStringSubmatch(help.String(), -1) {
		names = append(names, m[1])
	}
	if len(names) < 50 {
		t.Fatalf("only %d flags in --help", len(names))
	}
	return names
}

// TestNoFlagShowsURLCredentials runs the server with every flag in turn set
// to URLs with credentials (of servers that are not there, so that their
// errors are logged and reported too), with every back end that takes a
// URL in use: the RPC back end, Redis and NATS through the broadcast
// adapters, the embedded NATS server for its own flags. Neither the log
// (at debug level) nor /health nor a startup error may show a password or
// token. Flags that refuse such a value are skipped; the URL flags must
// not be.
func TestNoFlagShowsURLCredentials(t *testing.T) {
	closed := strconv.Itoa(freePort(t))
	forms := []struct{ value, secret string }{
		{"redis://user:pw-redis@127.0.0.1:" + closed + "/1", "pw-redis"},
		{"nats://pw-token@127.0.0.1:" + closed, "pw-token"},
		{":pw-bare@127.0.0.1:" + closed, "pw-bare"},
		{"http://user:pw-http@127.0.0.1:" + closed + "/rpc", "pw-http"},
	}
	// The shared Redis answers at once, where a Redis that is not there
	// would hold each start for the cluster probe's second.
	base := []string{"--broadcast_adapter", "http,redis,nats", "--broadcast_key", "bkey", "--log_level", "debug",
		"--redis_url", "redis://127.0.0.1:6379", "--nats_servers", "nats://127.0.0.1:" + closed,
		"--rpc_host", "http://127.0.0.1:" + closed + "/rpc"}
	served := map[string]bool{}
	for _, name := range flagNames(t) {
		args := base
		if strings.HasPrefix(name, "enats_") {
			args = append(args, "--embed_nats", "--enats_addr", "nats://127.0.0.1:"+strconv.Itoa(freePort(t)))
		}
		for _, f := range forms {
			if showsCredentials(t, append(args, "--"+name+"="+f.value), f.secret) {
				served[name] = true
			}
		}
	}
	for _, name := range []string{"rpc_host", "redis_url", "redis_sentinels", "nats_servers", "enats_cluster_routes", "node_id"} {
		if !served[name] {
			t.Errorf("--%s never got as far as serving: the test does not reach it", name)
		}
	}
}

// showsCredentials starts a runner with args, asks /health, stops it, and
// fails t where secret shows; it reports whether the runner served.
func showsCredentials(t *testing.T, args []string, secret string) bool {
	t.Helper()
	cfg, err := config.Parse(append([]string{"--host", "127.0.0.1", "--port", "0"}, args...), func(string) string { return "" }, io.Discard)
	if err != nil {
		return false
	}
	flag := args[len(args)-1]
	logs := newLogLines()
	check := func(what, s string) {
		if strings.Contains(s, secret) {
			t.Errorf("%s: %s shows the credential: %s", flag, what, s)
		}
	}
	r, err := New(cfg, slog.New(logs))
	if err == nil {
		if err = r.Start(context.Background()); err != nil {
			r.deps.close()
		}
	}
	if err != nil {
		check("the startup error", err.Error())
		check("the log", strings.Join(logs.get(), "\n"))
		return false
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + r.MainAddr + cfg.Server.HealthPath)
	if err != nil {
		t.Errorf("%s: /health: %v", flag, err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		check("/health", string(body))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r.Shutdown(ctx)
	check("the log", strings.Join(logs.get(), "\n"))
	return true
}
