package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	anycablepb "github.com/cablehub/cablehub/gen/anycable"
	"github.com/cablehub/cablehub/server/rpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// rpcAppDir holds the serverless-js back end (package.json pins
// @anycable/serverless-js 0.1.0, the lock pins the rest).
const rpcAppDir = "rpcapp"

// npmCI installs rpcapp's locked dependencies when node_modules is missing
// or older than the lock (npm rewrites node_modules/.package-lock.json on
// every install), so the test needs no separate step in make test. Tests
// running in parallel share one install: two npm ci in one directory
// would delete each other's files.
func npmCI(t *testing.T) {
	t.Helper()
	if out, err := rpcAppInstall(); err != nil {
		t.Fatalf("npm ci in e2e/%s: %v\n%s", rpcAppDir, err, out)
	}
}

// rpcAppInstall runs the install at most once per test binary.
var rpcAppInstall = sync.OnceValues(func() ([]byte, error) {
	lock, err := os.Stat(filepath.Join(rpcAppDir, "package-lock.json"))
	if err != nil {
		return nil, err
	}
	installed, err := os.Stat(filepath.Join(rpcAppDir, "node_modules", ".package-lock.json"))
	if err == nil && !installed.ModTime().Before(lock.ModTime()) {
		return nil, nil
	}
	// Bounded: npm retries a registry that does not answer for many
	// minutes, and its children could hold the output pipe after it is
	// killed.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = rpcAppDir
	cmd.WaitDelay = 10 * time.Second
	return cmd.CombinedOutput()
})

// startServerlessApp runs e2e/rpcapp/server.mjs under node (with the
// resolve hook serverless-js 0.1.0 needs) expecting the given key, and
// returns its base URL. Its request log is shown when the test fails.
func startServerlessApp(t *testing.T, key string) string {
	t.Helper()
	_, base := startServerlessPeer(t, key)
	return base
}

// startServerlessPeer is startServerlessApp that also returns the running
// app, to configure it.
func startServerlessPeer(t *testing.T, key string) (*appPeer, string) {
	t.Helper()
	cmd := exec.Command("node", "--import", "./register.mjs", "server.mjs")
	cmd.Dir = rpcAppDir
	cmd.Env = append(os.Environ(), "RPC_SECRET="+key)
	app := startAppPeer(t, "serverless-js app", "configured", cmd)
	line := app.waitLine(t, 30*time.Second, func(l string) bool { return strings.HasPrefix(l, "listening ") })
	return app, "http://127.0.0.1:" + strings.TrimPrefix(line, "listening ") + "/_anycable"
}

// TestRPCHTTPServerlessJS drives the third-party @anycable/serverless-js
// back end directly with server/rpc's HTTP client: the key derived from the
// application secret, connect (accepted and rejected), subscribe, an
// action, a rejected subscription, an application error, disconnect, and a
// wrong key.
func TestRPCHTTPServerlessJS(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed")
	}
	npmCI(t)
	const appSecret = "s3cr3t"
	base := startServerlessApp(t, rpc.DeriveSecret(appSecret))
	client, err := rpc.NewHTTP(rpc.HTTPOptions{URL: base, AppSecret: appSecret}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	env := &anycablepb.Env{
		Url:     "http://127.0.0.1:29410/cable?user=alice&mode=x",
		Headers: map[string]string{"REMOTE_ADDR": "127.0.0.1", "cookie": "_session=abc; theme=dark"},
	}
	conn, err := client.Connect(ctx, "YhOWV3bmwmmO3QT2Z95nj", &anycablepb.ConnectionRequest{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	if conn.GetStatus() != anycablepb.Status_SUCCESS || conn.GetIdentifiers() != `{"user":"alice"}` ||
		strings.Join(conn.GetTransmissions(), "|") != `{"type":"welcome","sid":"YhOWV3bmwmmO3QT2Z95nj"}` {
		t.Fatalf("connect = %v", conn)
	}

	// Identified by cookie instead of ?user=.
	byCookie, err := client.Connect(ctx, "s2", &anycablepb.ConnectionRequest{Env: &anycablepb.Env{
		Url: "http://h/cable", Headers: map[string]string{"cookie": "theme=dark; user=bob"}}})
	if err != nil || byCookie.GetStatus() != anycablepb.Status_SUCCESS || byCookie.GetIdentifiers() != `{"user":"bob"}` {
		t.Errorf("connect by cookie = %v, %v", byCookie, err)
	}

	rejected, err := client.Connect(ctx, "my-req-id-1", &anycablepb.ConnectionRequest{Env: &anycablepb.Env{Url: "http://h/cable"}})
	if err != nil {
		t.Fatal(err)
	}
	if rejected.GetStatus() != anycablepb.Status_FAILURE || rejected.GetErrorMsg() != "Auth failed" ||
		strings.Join(rejected.GetTransmissions(), "|") != `{"type":"disconnect","reason":"unauthorized"}` {
		t.Errorf("rejected connect = %v", rejected)
	}

	const chat = `{"channel":"chat","room":"42"}`
	command := func(cmd, identifier, data string) *anycablepb.CommandResponse {
		t.Helper()
		resp, err := client.Command(ctx, "YhOWV3bmwmmO3QT2Z95nj", &anycablepb.CommandMessage{
			Command: cmd, Identifier: identifier, ConnectionIdentifiers: conn.GetIdentifiers(), Data: data, Env: env})
		if err != nil {
			t.Fatalf("%s %s: %v", cmd, identifier, err)
		}
		return resp
	}
	sub := command("subscribe", chat, "")
	if sub.GetStatus() != anycablepb.Status_SUCCESS || strings.Join(sub.GetStreams(), ",") != "room:42" ||
		strings.Join(sub.GetTransmissions(), "|") != `{"identifier":"{\"channel\":\"chat\",\"room\":\"42\"}","type":"confirm_subscription"}` {
		t.Errorf("subscribe = %v", sub)
	}
	echo := command("message", chat, `{"action":"echo","x":1}`)
	if echo.GetStatus() != anycablepb.Status_SUCCESS ||
		strings.Join(echo.GetTransmissions(), "|") != `{"identifier":"{\"channel\":\"chat\",\"room\":\"42\"}","message":{"echo":{"x":1},"user":"alice"}}` {
		t.Errorf("echo = %v", echo)
	}
	noRoom := command("subscribe", `{"channel":"chat"}`, "")
	if noRoom.GetStatus() != anycablepb.Status_FAILURE ||
		strings.Join(noRoom.GetTransmissions(), "|") != `{"identifier":"{\"channel\":\"chat\"}","type":"reject_subscription"}` {
		t.Errorf("subscribe without room = %v", noRoom)
	}
	if unsub := command("unsubscribe", chat, ""); unsub.GetStatus() != anycablepb.Status_SUCCESS {
		t.Errorf("unsubscribe = %v", unsub)
	}

	// An exception in the application (unknown channel) is a 500: UNKNOWN.
	_, err = client.Command(ctx, "s", &anycablepb.CommandMessage{Command: "subscribe", Identifier: `{"channel":"nope"}`,
		ConnectionIdentifiers: conn.GetIdentifiers(), Env: env})
	if status.Code(err) != codes.Unknown {
		t.Errorf("unknown channel: %v, want Unknown", err)
	}

	disc, err := client.Disconnect(ctx, "YhOWV3bmwmmO3QT2Z95nj", &anycablepb.DisconnectRequest{
		Identifiers: conn.GetIdentifiers(), Subscriptions: []string{chat}, Env: env})
	if err != nil || disc.GetStatus() != anycablepb.Status_SUCCESS {
		t.Errorf("disconnect = %v, %v", disc, err)
	}

	for _, opts := range []rpc.HTTPOptions{{Secret: "wrong"}, {AppSecret: "other"}, {Secret: "none", AppSecret: appSecret}} {
		opts.URL = base
		bad, err := rpc.NewHTTP(opts, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		_, err = bad.Connect(ctx, "s", &anycablepb.ConnectionRequest{Env: env})
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s: %v, want Unauthenticated", describeKey(opts), err)
		}
		_ = bad.Close()
	}
}

func describeKey(o rpc.HTTPOptions) string {
	b, _ := json.Marshal(map[string]string{"secret": o.Secret, "app_secret": o.AppSecret})
	return fmt.Sprintf("key %s", b)
}
