package runner

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate named cn and its key.
func writeCert(t *testing.T, certPath, keyPath, cn string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
}

func servedName(t *testing.T, c *certificates) string {
	t.Helper()
	leaf, err := x509.ParseCertificate(c.current.Load().Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.Subject.CommonName
}

// TestCertificatesReloadOnSIGHUP: SIGHUP reloads the files even when they
// look unchanged to the periodic check; a reload that fails keeps the
// certificate in use.
func TestCertificatesReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeCert(t, certPath, keyPath, "first")
	c, err := loadCertificates(certPath, keyPath, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	writeCert(t, certPath, keyPath, "second")
	c.mu.Lock()
	c.stamp = c.fileStamp() // as if the check could not tell the files changed
	c.mu.Unlock()
	c.reload(false) // the periodic check
	if got := servedName(t, c); got != "first" {
		t.Fatalf("reloaded without a change or a signal: %s", got)
	}
	// The test's own interest in SIGHUP keeps a signal sent before watch
	// asks for it from ending the test process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.watch(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for servedName(t, c) != "second" {
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP did not reload the certificate")
		}
		syscall.Kill(os.Getpid(), syscall.SIGHUP)
		time.Sleep(50 * time.Millisecond)
	}

	os.WriteFile(keyPath, []byte("not a key"), 0o600)
	c.reload(true)
	if got := servedName(t, c); got != "second" {
		t.Fatalf("a failed reload changed the certificate: %s", got)
	}
}

// TestChooseHTTP1: HTTP/1.1 for every client that speaks it, HTTP/2 for
// those that speak only it (gRPC clients).
func TestChooseHTTP1(t *testing.T) {
	for _, c := range []struct {
		offered []string
		want    bool
	}{
		{nil, true},
		{[]string{"h2", "http/1.1"}, true},
		{[]string{"http/1.1"}, true},
		{[]string{"h2"}, false},
	} {
		if got := chooseHTTP1(c.offered); got != c.want {
			t.Errorf("%q: %v", c.offered, got)
		}
	}
}
