package redact

import (
	"bytes"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

// TestCredentials covers the forms the settings take (one URL, lists,
// scheme or none, password or token) and the texts that quote them.
func TestCredentials(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"redis://localhost:6379", "redis://localhost:6379"},
		{"redis://:s3cr3t@r:6379/1", "redis://:xxxxx@r:6379/1"},
		{"redis://user:s3cr3t@r:6379", "redis://user:xxxxx@r:6379"},
		{"rediss://user:s3cr3t@r:6379", "rediss://user:xxxxx@r:6379"},
		{"nats://t0k3n@n:4222", "nats://xxxxx@n:4222"},
		{"nats://a:s3cr3t@n1:4222,nats://t0k3n@n2:4222", "nats://a:xxxxx@n1:4222,nats://xxxxx@n2:4222"},
		{"nats://n1:4222, nats://a:s3cr3t@n2:4222", "nats://n1:4222, nats://a:xxxxx@n2:4222"},
		{":s3cr3t@sentinel:26379,sentinel2:26379", ":xxxxx@sentinel:26379,sentinel2:26379"},
		{"sentinel:26379,:s3cr3t@sentinel2:26379", "sentinel:26379,:xxxxx@sentinel2:26379"},
		{"user:s3cr3t@host:50051", "user:xxxxx@host:50051"},
		{"http://user:s3cr3t@app/rpc?x=1", "http://user:xxxxx@app/rpc?x=1"},
		{"dns://user:s3cr3t@8.8.8.8/app:50051", "dns://user:xxxxx@8.8.8.8/app:50051"},
		// Unescaped '@' and ',' in a password: masked whole.
		{"redis://:s3@cr3t@r:6379", "redis://:xxxxx@r:6379"},
		{"http://user:s3,cr3t@app/rpc", "http://user:xxxxx@app/rpc"},
		// Quoted in messages and errors.
		{`invalid value "redis://:s3cr3t@r:x" for --redis_url: parse "redis://:s3cr3t@r:x": invalid port`,
			`invalid value "redis://:xxxxx@r:x" for --redis_url: parse "redis://:xxxxx@r:x": invalid port`},
		{`invalid value ":s3cr3t@s:1" for --redis_sentinels`, `invalid value ":xxxxx@s:1" for --redis_sentinels`},
		{"RPC controller initialized: http://u:s3cr3t@app/rpc (concurrency: 28)", "RPC controller initialized: http://u:xxxxx@app/rpc (concurrency: 28)"},
		{`{"host":"http://u:s3cr3t@app/rpc","reachable":false}`, `{"host":"http://u:xxxxx@app/rpc","reachable":false}`},
		{"Using NATS pub/sub at nats://t0k3n@n:4222 (servers: nats://n:4222)", "Using NATS pub/sub at nats://xxxxx@n:4222 (servers: nats://n:4222)"},
		// Already masked: unchanged.
		{"redis://:xxxxx@r:6379", "redis://:xxxxx@r:6379"},
		{"http://user:***@app/rpc", "http://user:xxxxx@app/rpc"},
		{"redis://@r:6379", "redis://@r:6379"},
		{"no credentials here", "no credentials here"},
	} {
		got := Credentials(c.in)
		if got != c.want {
			t.Errorf("Credentials(%q)\n = %q\nwant %q", c.in, got, c.want)
		}
		if strings.Contains(got, "s3cr3t") || strings.Contains(got, "t0k3n") || strings.Contains(got, "cr3t") {
			t.Errorf("Credentials(%q) shows a credential: %q", c.in, got)
		}
		if again := Credentials(got); again != got {
			t.Errorf("Credentials is not idempotent on %q: %q", got, again)
		}
	}
}

// TestLogHandler: a record's message, string attributes, errors, other
// values, groups and WithAttrs attributes are masked, in text and JSON.
func TestLogHandler(t *testing.T) {
	u, _ := url.Parse("nats://t0k3n@n:4222")
	for name, newInner := range map[string]func(*bytes.Buffer) slog.Handler{
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var b bytes.Buffer
		log := Logger(slog.New(newInner(&b)))
		if Logger(log) != log {
			t.Errorf("%s: Logger wraps a masked logger again", name)
		}
		log.With("url", "redis://:s3cr3t@r:1").WithGroup("g").Info("connecting to http://u:s3cr3t@app/rpc",
			"error", errors.New(`dial "redis://:s3cr3t@r:1": refused`), "server", u,
			"list", []string{"a", "nats://u:s3cr3t@n:1"}, slog.Group("inner", "sentinel", ":s3cr3t@s:1"))
		log.Info("plain line", "n", 1)
		log.Info("only the message: nats://t0k3n@n:4222", "n", 1)
		out := b.String()
		if strings.Contains(out, "s3cr3t") || strings.Contains(out, "t0k3n") {
			t.Errorf("%s: the log shows a credential:\n%s", name, out)
		}
		if strings.Count(out, Mask) != 7 || !strings.Contains(out, "plain line") {
			t.Errorf("%s: want 7 masks and the plain line:\n%s", name, out)
		}
	}
}
