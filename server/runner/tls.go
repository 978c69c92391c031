package runner

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// certCheckInterval is how often the certificate files are looked at for a
// change (a stat each): cert-manager and Let's Encrypt clients replace the
// files in place, without signalling the server.
const certCheckInterval = 2 * time.Second

// certificates is the server's TLS certificate (--ssl_cert, --ssl_key),
// reloaded without a restart when its files change or on SIGHUP:
// handshakes from then on present the new one, while connections already
// open keep theirs. A reload that fails (a half-written file, a key that
// does not match) keeps the certificate in use and is logged.
type certificates struct {
	certPath, keyPath string
	log               *slog.Logger
	current           atomic.Pointer[tls.Certificate]

	mu    sync.Mutex
	stamp string // the files' sizes and modification times when loaded
}

// loadCertificates reads the certificate and key, failing with an error
// naming the flags when they cannot be used.
func loadCertificates(certPath, keyPath string, log *slog.Logger) (*certificates, error) {
	c := &certificates{certPath: certPath, keyPath: keyPath, log: log.With("context", "tls")}
	if err := c.load(); err != nil {
		return nil, fmt.Errorf("--ssl_cert/--ssl_key: cannot load the TLS certificate: %w", err)
	}
	return c, nil
}

// load reads the files now; c.mu is held or c is not shared yet.
func (c *certificates) load() error {
	stamp := c.fileStamp()
	cert, err := tls.LoadX509KeyPair(c.certPath, c.keyPath)
	if err != nil {
		return err
	}
	c.current.Store(&cert)
	c.stamp = stamp
	return nil
}

// fileStamp identifies the files' current versions ("" while one cannot
// be read).
func (c *certificates) fileStamp() string {
	stamp := ""
	for _, p := range []string{c.certPath, c.keyPath} {
		fi, err := os.Stat(p)
		if err != nil {
			return ""
		}
		stamp += fmt.Sprintf("%d:%d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return stamp
}

// reload loads the files again when forced or when they changed since the
// last load.
func (c *certificates) reload(force bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !force && c.fileStamp() == c.stamp {
		return
	}
	if err := c.load(); err != nil {
		// Retried at the next check or signal: the new files may be
		// half written.
		c.stamp = ""
		c.log.Error("Cannot reload the TLS certificate; the one in use is kept", "error", err)
		return
	}
	c.log.Info("Reloaded the TLS certificate from " + c.certPath)
}

// watch reloads the certificate on SIGHUP and when its files change,
// until ctx ends.
func (c *certificates) watch(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	tick := time.NewTicker(certCheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			c.reload(true)
		case <-tick.C:
			c.reload(false)
		}
	}
}

// serverConfig is the listeners' TLS configuration: TLS 1.2 at least, the
// current certificate at each handshake, and ALPN chosen per client (see
// chooseProtocols).
func (c *certificates) serverConfig() *tls.Config {
	get := func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c.current.Load(), nil }
	h1 := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: get, NextProtos: []string{"http/1.1"}}
	h2 := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: get, NextProtos: []string{"h2"}}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: get,
		NextProtos:     []string{"h2", "http/1.1"},
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			if chooseHTTP1(hello.SupportedProtos) {
				return h1, nil
			}
			return h2, nil
		},
	}
}

// chooseHTTP1 is the ALPN choice: HTTP/1.1 for every client that speaks
// it, HTTP/2 only for those that speak nothing else (gRPC clients). A
// WebSocket needs HTTP/1.1 anyway (no RFC 8441), and the streamed answers
// (Server-Sent Events, Durable Streams) are served off the socket, which
// an HTTP/2 connection shares between requests; AnyCable picks h2 for
// browsers instead. A client that offers no ALPN speaks HTTP/1.1.
func chooseHTTP1(offered []string) bool {
	return len(offered) == 0 || slices.Contains(offered, "http/1.1")
}
