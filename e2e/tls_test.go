package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
)

// testCA is a certificate authority made with openssl for one test, and
// the server certificates it signs.
type testCA struct {
	t        *testing.T
	dir      string
	key, crt string
	pool     *x509.CertPool
}

func openssl(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newTestCA makes a CA named name in a directory of the test's.
func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	dir := t.TempDir()
	ca := &testCA{t: t, dir: dir, key: filepath.Join(dir, "ca.key"), crt: filepath.Join(dir, "ca.crt")}
	openssl(t, dir, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
		"-keyout", ca.key, "-out", ca.crt, "-subj", "/CN="+name, "-days", "2")
	pem, err := os.ReadFile(ca.crt)
	if err != nil {
		t.Fatal(err)
	}
	ca.pool = x509.NewCertPool()
	ca.pool.AppendCertsFromPEM(pem)
	return ca
}

// issue writes a certificate for 127.0.0.1 and localhost, and its key, to
// certPath and keyPath (replacing them in one rename each, as certificate
// managers do).
func (ca *testCA) issue(certPath, keyPath string) {
	t := ca.t
	t.Helper()
	dir := t.TempDir()
	ext := filepath.Join(dir, "ext.cnf")
	if err := os.WriteFile(ext, []byte("subjectAltName=IP:127.0.0.1,DNS:localhost\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	openssl(t, dir, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
		"-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=127.0.0.1")
	openssl(t, dir, "x509", "-req", "-in", "tls.csr", "-CA", ca.crt, "-CAkey", ca.key, "-CAcreateserial",
		"-out", "tls.crt", "-days", "2", "-extfile", ext)
	for _, f := range [][2]string{{"tls.key", keyPath}, {"tls.crt", certPath}} {
		if err := os.Rename(filepath.Join(dir, f[0]), f[1]); err != nil {
			t.Fatal(err)
		}
	}
}

// startTLSServer runs cablehub with a certificate of ca's and args.
func startTLSServer(t *testing.T, ca *testCA, args ...string) (s *server, certPath, keyPath string) {
	t.Helper()
	dir := t.TempDir()
	certPath, keyPath = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca.issue(certPath, keyPath)
	s = startServer(t, nil, append([]string{"--ssl_cert", certPath, "--ssl_key", keyPath}, args...)...)
	return s, certPath, keyPath
}

// httpsClient trusts pool only.
func httpsClient(pool *x509.CertPool) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true,
	}}
}

func dialWSS(t *testing.T, s *server, pool *x509.CertPool) *wsClient {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"actioncable-v1-ext-json"}, HandshakeTimeout: 10 * time.Second,
		TLSClientConfig: &tls.Config{RootCAs: pool}}
	conn, resp, err := d.Dial("wss://"+s.Main+"/cable", nil)
	if err != nil {
		t.Fatalf("wss dial: %v", err)
	}
	c := &wsClient{t: t, conn: conn, resp: resp, frames: make(chan string, 1000), closed: make(chan *websocket.CloseError, 1)}
	t.Cleanup(func() { conn.Close() })
	go c.read()
	return c
}

func httpsPublish(t *testing.T, client *http.Client, s *server, stream, data string) {
	t.Helper()
	resp, err := client.Post("https://"+s.Main+"/api/publish", "application/json", strings.NewReader(fmt.Sprintf(`{"stream":%q,"data":%q}`, stream, data)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("publish over https: %d", resp.StatusCode)
	}
}

// TestTLS: with --ssl_cert and --ssl_key the main port serves wss://,
// the REST API, health and Server-Sent Events over HTTPS, and gRPC to
// clients with TLS credentials; the startup lines say https and wss;
// plain HTTP gets Go's 400 and TLS 1.1 is refused.
func TestTLS(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "Cablehub Test CA")
	s, _, _ := startTLSServer(t, ca, "--public", "--sse")
	// The SSE line follows the health line startServer waits for.
	waitUntil(t, "the startup lines", func() bool { return strings.Contains(s.Logs(), "Handle SSE requests") })
	logs := s.Logs()
	for _, want := range []string{
		"Handle WebSocket connections at https://" + s.Main + "/cable (clients connect to wss://" + s.Main + "/cable)",
		"Handle health requests at https://" + s.Main + "/health",
		"Handle SSE requests at https://" + s.Main + "/events",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("startup log lacks %q:\n%s", want, logs)
		}
	}
	client := httpsClient(ca.pool)

	c := dialWSS(t, s, ca.pool)
	c.welcome()
	id := quoted(c.subscribe("secure"))
	httpsPublish(t, client, s, "secure", "over tls")
	if f := c.next(5 * time.Second); !strings.HasPrefix(f, `{"identifier":`+id+`,"message":"over tls"`) {
		t.Fatalf("wss frame %s", f)
	}

	resp, err := client.Get("https://" + s.Main + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Proto != "HTTP/1.1" {
		t.Errorf("/health over https: %d %s", resp.StatusCode, resp.Proto)
	}

	// Server-Sent Events: the stream's first events arrive over TLS.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+s.Main+"/events?stream=secure", nil)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); resp.StatusCode != 200 || err != nil || !strings.HasPrefix(line, "event: welcome") {
		t.Fatalf("SSE over https: %d %q %v", resp.StatusCode, line, err)
	}

	// gRPC with TLS credentials, on the same port.
	conn, err := grpc.NewClient(s.Main, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: ca.pool})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	gctx, gcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer gcancel()
	if _, err := cablehubv1.NewCableServiceClient(conn).Publish(gctx, onePub("secure", "over grpc")); err != nil {
		t.Fatalf("gRPC over TLS: %v", err)
	}
	if f := c.next(5 * time.Second); !strings.HasPrefix(f, `{"identifier":`+id+`,"message":"over grpc"`) {
		t.Fatalf("wss frame %s", f)
	}

	// Plain HTTP on the TLS port.
	nc, err := net.DialTimeout("tcp", s.Main, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(nc, "GET /health HTTP/1.1\r\nHost: %s\r\n\r\n", s.Main)
	if got, _ := io.ReadAll(nc); string(got) != "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n" {
		t.Errorf("plain HTTP on the TLS port: %q", got)
	}

	// TLS 1.1 is refused; TLS 1.2 is accepted.
	if tc, err := tls.Dial("tcp", s.Main, &tls.Config{RootCAs: ca.pool, MaxVersion: tls.VersionTLS11}); err == nil {
		tc.Close()
		t.Error("TLS 1.1 handshake accepted")
	}
	tc, err := tls.Dial("tcp", s.Main, &tls.Config{RootCAs: ca.pool, MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS 1.2: %v", err)
	}
	tc.Close()
}

// TestTLSCertificateReload: a certificate replaced on disk (by a new CA's,
// here) is served to new connections without a restart, while a wss://
// connection opened before keeps receiving.
func TestTLSCertificateReload(t *testing.T) {
	t.Parallel()
	first := newTestCA(t, "First CA")
	s, certPath, keyPath := startTLSServer(t, first, "--public")
	c := dialWSS(t, s, first.pool)
	c.welcome()
	id := quoted(c.subscribe("rotating"))

	second := newTestCA(t, "Second CA")
	second.issue(certPath, keyPath)
	deadline := time.Now().Add(20 * time.Second)
	for {
		tc, err := tls.Dial("tcp", s.Main, &tls.Config{RootCAs: second.pool})
		if err == nil {
			tc.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new certificate was not served: %v\n%s", err, s.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(s.Logs(), "Reloaded the TLS certificate from "+certPath) {
		t.Errorf("no reload line:\n%s", s.Logs())
	}
	httpsPublish(t, httpsClient(second.pool), s, "rotating", "after the swap")
	if f := c.next(5 * time.Second); !strings.HasPrefix(f, `{"identifier":`+id+`,"message":"after the swap"`) {
		t.Fatalf("the connection opened before the swap: %s", f)
	}
}

// TestTLSSettingsErrors: one of the pair, or files that cannot be read,
// stop the server with a line naming the flags.
func TestTLSSettingsErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		env  []string
		want string
	}{
		{[]string{"ANYCABLE_SSL_CERT=/etc/cert.pem"}, "--ssl_cert and --ssl_key go together"},
		{[]string{"ANYCABLE_SSL_CERT=/nonexistent.crt", "ANYCABLE_SSL_KEY=/nonexistent.key"}, "--ssl_cert/--ssl_key: cannot load the TLS certificate: open /nonexistent.crt: no such file or directory"},
	} {
		code, _, stderr := runCLI(t, c.env, "--port", "0")
		if code != 1 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %s", c.env, code, stderr)
		}
	}
}

// TestTLSDedicatedPorts: --api_port, --grpc_port and --metrics_port serve
// TLS with the same certificate.
func TestTLSDedicatedPorts(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "Ports CA")
	apiPort, grpcPort, metricsPort := freePort(t), freePort(t), freePort(t)
	s, _, _ := startTLSServer(t, ca, "--public", "--api_port", fmt.Sprint(apiPort), "--grpc_port", fmt.Sprint(grpcPort),
		"--metrics_http", "/metrics", "--metrics_port", fmt.Sprint(metricsPort))
	client := httpsClient(ca.pool)
	for _, url := range []string{
		fmt.Sprintf("https://127.0.0.1:%d/api/publish", apiPort),
		fmt.Sprintf("https://127.0.0.1:%d/metrics", metricsPort),
	} {
		var resp *http.Response
		var err error
		if strings.HasSuffix(url, "/publish") {
			resp, err = client.Post(url, "application/json", strings.NewReader(`{"stream":"ports","data":"x"}`))
		} else {
			resp, err = client.Get(url)
		}
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Errorf("%s: %d", url, resp.StatusCode)
		}
	}
	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", grpcPort), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: ca.pool})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cablehubv1.NewCableServiceClient(conn).Publish(ctx, onePub("ports", "over grpc")); err != nil {
		t.Fatalf("gRPC over TLS on --grpc_port: %v", err)
	}
	if !strings.Contains(s.Logs(), "(no authorization, TLS, dedicated listener)") {
		t.Errorf("gRPC line:\n%s", s.Logs())
	}
}
