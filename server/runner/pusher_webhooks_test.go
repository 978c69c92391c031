package runner

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cablehub/cablehub/server/config"
)

// With --pusher_webhook_url the runner builds the webhooks, names their
// URLs (without credentials) at startup, starts them, and sends what they
// hold when it shuts down.
func TestPusherWebhooksWired(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
	}))
	defer hook.Close()
	url := strings.Replace(hook.URL, "://", "://u:hunter2@", 1) + "/hook?token=sekrit"
	cfg, err := config.Parse([]string{"--host", "127.0.0.1", "--port", "0", "--broker", "memory", "--norpc",
		"--pusher_app_id", "app-1", "--pusher_app_key", "key-1", "--pusher_secret", "psecret", "--pusher_webhook_url", url},
		func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	r, err := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if r.webhooks == nil {
		t.Fatal("no webhooks")
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// What the node would report; sent at shutdown at the latest.
	r.webhooks.Occupied("news")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 1 || !strings.Contains(bodies[0], `"events":[{"name":"channel_occupied","channel":"news"}]`) {
		t.Errorf("webhooks received %q", bodies)
	}
	if !strings.Contains(logs.String(), `msg="Send Pusher webhooks to `+hook.URL+`/hook" context=pusher`) {
		t.Errorf("no startup line for the webhooks:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "hunter2") || strings.Contains(logs.String(), "sekrit") {
		t.Errorf("the log shows the URL's credentials:\n%s", logs.String())
	}
}

func TestNoPusherWebhooksWithoutURL(t *testing.T) {
	r := start(t, "--broker", "memory", "--norpc", "--pusher_app_id", "app-1", "--pusher_app_key", "key-1", "--pusher_secret", "psecret")
	if r.webhooks != nil {
		t.Error("webhooks without --pusher_webhook_url")
	}
}

// The occupancy id is the same for every node of an app (its secret), and
// another app's differs; it does not show the secret.
func TestOccupancyID(t *testing.T) {
	cfg := func(secret string) *config.Config {
		c := config.Default()
		c.Pusher.Secret = secret
		return c
	}
	a, b, other := occupancyID(cfg("psecret")), occupancyID(cfg("psecret")), occupancyID(cfg("other"))
	if a != b || a == other || len(a) != 32 || strings.Contains(a, "psecret") {
		t.Errorf("ids %q, %q, %q", a, b, other)
	}
}
