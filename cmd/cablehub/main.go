// Command cablehub runs a Cablehub server: WebSocket clients speaking the
// Action Cable protocols, and the publish/presence API over gRPC and REST.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cablehub/cablehub/server/config"
	"github.com/cablehub/cablehub/server/redact"
	"github.com/cablehub/cablehub/server/runner"
)

func main() {
	os.Exit(run(os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

func run(args, environ []string, stdout, stderr io.Writer) int {
	for _, a := range args {
		if a == "--version" || a == "-version" || a == "-v" {
			fmt.Fprintf(stdout, "cablehub %s\n", runner.Version)
			return 0
		}
	}
	healthcheck := slices.Contains(args, "--healthcheck")
	if healthcheck {
		args = slices.DeleteFunc(slices.Clone(args), func(a string) bool { return a == "--healthcheck" })
	}
	cfg, err := config.Load(config.Input{Args: args, Environ: environ, Search: config.DefaultSearch(), Out: stdout})
	if errors.Is(err, config.ErrHelp) || errors.Is(err, config.ErrPrinted) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "cablehub: %v\n", err)
		return 1
	}
	if healthcheck {
		return checkHealth(cfg, stderr)
	}
	log := newLogger(cfg, stdout)
	// go-redis logs every failed dial on its own; Cablehub reports Redis
	// outages itself, once per backoff step, so its messages go to debug.
	redis.SetLogger(redisLogger{log.With("context", "redis")})

	// Signals are caught from here on: one arriving while the server
	// starts (it is logged as ready before Start returns) shuts it down
	// once started, instead of killing it unannounced.
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(signals)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := runner.New(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "cablehub: %v\n", err)
		return 1
	}
	if err := r.Start(ctx); err != nil {
		fmt.Fprintf(stderr, "cablehub: %v\n", err)
		return 1
	}

	select {
	case <-signals:
	case err := <-r.Errors():
		log.Error("listener failed", "error", err)
		return 1
	}
	log.Info(fmt.Sprintf("Shutting down... (hit Ctrl-C to stop immediately or wait for up to %s for graceful shutdown)", cfg.Server.ShutdownTimeout))
	shutdownCtx, stop := context.WithTimeout(ctx, cfg.Server.ShutdownTimeout)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- r.Shutdown(shutdownCtx) }()
	select {
	case err := <-done:
		if err != nil {
			log.Warn("shutdown did not finish cleanly", "error", err)
		}
		log.Info("Stopped")
		return 0
	case <-signals:
		log.Warn("Immediate termination requested. Stopped")
		return 1
	}
}

// checkHealth asks the health endpoint of a server running with cfg on
// this host and exits 0 when it answers 200: a container health check for
// images without curl.
func checkHealth(cfg *config.Config, stderr io.Writer) int {
	client := &http.Client{Timeout: 3 * time.Second}
	scheme := "http"
	if cfg.TLS.Enabled() {
		// The server's own port on loopback: its certificate names the
		// public host, not 127.0.0.1, and proves nothing here.
		scheme = "https"
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	}
	url := fmt.Sprintf("%s://127.0.0.1:%d%s", scheme, cfg.Server.Port, cfg.Server.HealthPath)
	resp, err := client.Get(url)
	if err != nil {
		fmt.Fprintf(stderr, "cablehub: health check: %v\n", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "cablehub: health check: %s answered %d\n", url, resp.StatusCode)
		return 1
	}
	return 0
}

// redisLogger routes go-redis's internal messages to slog at debug level.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(format, v...))
}

// newLogger is the process's logger: every line, the libraries' included,
// has the credentials of the URLs it quotes masked (redact.Handler).
func newLogger(cfg *config.Config, out io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(redact.Handler(slog.NewJSONHandler(out, opts)))
	}
	return slog.New(redact.Handler(slog.NewTextHandler(out, opts)))
}
