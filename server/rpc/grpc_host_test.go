package rpc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	anycablepb "github.com/cablehub/cablehub/gen/anycable"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
)

func TestParseGRPCHost(t *testing.T) {
	valid := map[string]string{
		"":                                 "dns:///localhost:50051",
		"localhost:50051":                  "dns:///localhost:50051",
		"127.0.0.1:9000":                   "dns:///127.0.0.1:9000",
		"[::1]:9000":                       "dns:///[::1]:9000",
		"rpc.internal:50051":               "dns:///rpc.internal:50051",
		"dns:///rpc.internal:50051":        "dns:///rpc.internal:50051",
		"dns://8.8.8.8/rpc.internal:50051": "dns://8.8.8.8/rpc.internal:50051",
		"grpc://127.0.0.1:50051":           "dns:///127.0.0.1:50051",
		"grpc://127.0.0.1:50051/":          "dns:///127.0.0.1:50051",
	}
	for host, want := range valid {
		got, err := parseGRPCHost(host)
		if err != nil || got.target != want || got.resolver != nil {
			t.Errorf("parseGRPCHost(%q) = %+v, %v; want target %q", host, got, err, want)
		}
	}
	list, err := parseGRPCHost("grpc-list://127.0.0.1:1,127.0.0.1:2")
	if err != nil || list.resolver == nil || !strings.HasSuffix(list.target, ":///list") {
		t.Errorf("grpc-list: %+v, %v", list, err)
	}
	invalid := []string{
		"localhost", "localhost:", ":50051", "localhost:http", "localhost:70000",
		"http://localhost:50051", "unix:///tmp/sock", "dns:localhost:50051", "dns:///localhost",
		"grpc://localhost", "grpc-list://", "grpc-list://127.0.0.1:1,", "grpc-list://a:1,b",
		"host with space:1",
	}
	for _, host := range invalid {
		if _, err := parseGRPCHost(host); err == nil || !strings.Contains(err.Error(), `"`+host+`"`) {
			t.Errorf("parseGRPCHost(%q) error = %v; want an error naming the value", host, err)
		}
		if _, err := NewGRPC(GRPCOptions{Host: host}, nil); err == nil {
			t.Errorf("NewGRPC accepted host %q", host)
		}
	}
}

func TestGRPCHostForms(t *testing.T) {
	addr := startBackend(t, &backend{})
	for _, host := range []string{addr, "dns:///" + addr, "grpc://" + addr, "grpc-list://" + addr} {
		t.Run(host, func(t *testing.T) {
			g := newTestGRPC(t, GRPCOptions{Host: host}, nil)
			resp, err := g.Connect(context.Background(), "s", &anycablepb.ConnectionRequest{})
			if err != nil || resp.GetStatus() != anycablepb.Status_SUCCESS {
				t.Fatalf("Connect via %q = %v, %v", host, resp, err)
			}
		})
	}
}

// TestGRPCListSpreadsCalls: a static list is balanced round-robin, so both
// back ends get calls.
func TestGRPCListSpreadsCalls(t *testing.T) {
	b1, b2 := &backend{}, &backend{}
	host := "grpc-list://" + startBackend(t, b1) + "," + startBackend(t, b2)
	g := newTestGRPC(t, GRPCOptions{Host: host}, nil)
	deadline := time.Now().Add(10 * time.Second)
	calls := 0
	for b1.calls.Load() == 0 || b2.calls.Load() == 0 || calls < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("after %d calls: back ends saw %d and %d", calls, b1.calls.Load(), b2.calls.Load())
		}
		if _, err := g.Command(context.Background(), "s", &anycablepb.CommandMessage{}); err != nil {
			t.Fatal(err)
		}
		calls++
	}
	if b1.calls.Load()+b2.calls.Load() != int64(calls) {
		t.Errorf("%d calls, back ends saw %d + %d", calls, b1.calls.Load(), b2.calls.Load())
	}
}

// selfSigned makes a certificate for 127.0.0.1 and returns it with its PEM.
func selfSigned(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "cablehub rpc test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert, string(certPEM)
}

func TestGRPCTLS(t *testing.T) {
	cert, caPEM := selfSigned(t)
	addr := startBackend(t, &backend{}, grpc.Creds(credentials.NewServerTLSFromCert(&cert)))
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, []byte(caPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	budget := 500 * time.Millisecond
	cases := []struct {
		name string
		opts GRPCOptions
		ok   bool
	}{
		{"root CA as PEM text", GRPCOptions{TLSRootCA: caPEM}, true},
		{"root CA as file, TLS implied", GRPCOptions{TLSRootCA: caFile}, true},
		{"root CA with EnableTLS", GRPCOptions{EnableTLS: true, TLSRootCA: caFile}, true},
		{"verification off", GRPCOptions{EnableTLS: true, TLSSkipVerify: true}, true},
		{"system roots only", GRPCOptions{EnableTLS: true}, false},
		{"plaintext", GRPCOptions{}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Host = addr
			c.opts.CommandTimeout = budget
			g := newTestGRPC(t, c.opts, nil)
			start := time.Now()
			resp, err := g.Connect(context.Background(), "s", &anycablepb.ConnectionRequest{})
			if c.ok && (err != nil || resp.GetStatus() != anycablepb.Status_SUCCESS) {
				t.Fatalf("Connect = %v, %v; want SUCCESS", resp, err)
			}
			if !c.ok {
				if err == nil {
					t.Fatal("Connect succeeded; want a TLS failure")
				}
				if cd := codeOf(err); cd != codes.Unavailable && cd != codes.DeadlineExceeded {
					t.Errorf("err = %v; want Unavailable or DeadlineExceeded", err)
				}
				if el := time.Since(start); el > budget+2*time.Second {
					t.Errorf("failure took %v, budget %v", el, budget)
				}
			}
		})
	}
}

func TestGRPCBadRootCA(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.pem")
	if _, err := NewGRPC(GRPCOptions{TLSRootCA: missing}, nil); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing CA file: err = %v, want one naming %s", err, missing)
	}
	if _, err := NewGRPC(GRPCOptions{TLSRootCA: "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n"}, nil); err == nil {
		t.Error("garbage PEM accepted")
	}
}
