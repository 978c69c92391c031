package redisconn

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestUniversalSingleAndCluster(t *testing.T) {
	u, info, err := Universal(Options{URL: "redis://user:pw@r1:6380/3"})
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode != ModeSingle || !reflect.DeepEqual(u.Addrs, []string{"r1:6380"}) || u.Username != "user" || u.Password != "pw" || u.DB != 3 || u.TLSConfig != nil {
		t.Errorf("single: %+v %+v", info, u)
	}
	if _, ok := redis.NewUniversalClient(u).(*redis.Client); !ok {
		t.Error("one URL must make a single-server client")
	}
	// AnyCable's cluster form: several URLs, comma-separated, the scheme
	// optional, a trailing slash tolerated.
	u, info, err = Universal(Options{URL: "redis://:pw@n1:7000/, n2:7001,redis://n3:7002"})
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode != ModeCluster || !reflect.DeepEqual(u.Addrs, []string{"n1:7000", "n2:7001", "n3:7002"}) || u.Password != "pw" {
		t.Errorf("cluster: %+v %+v", info, u)
	}
	if !IsCluster(redis.NewUniversalClient(u)) {
		t.Error("several URLs must make a cluster client")
	}
	if _, _, err := Universal(Options{URL: "redis://n1:7000/2,redis://n2:7001/2"}); err == nil || !strings.Contains(err.Error(), "database 0 only") {
		t.Errorf("a cluster with a database: %v", err)
	}
	if _, _, err := Universal(Options{URL: "http://x"}); err == nil || !strings.Contains(err.Error(), "--redis_url") {
		t.Errorf("a bad URL must name the flag: %v", err)
	}
}

// With Sentinels, --redis_url's host is the master's name and its
// credentials and database are the data nodes'; the first Sentinel's are
// the Sentinels', as in AnyCable.
func TestUniversalSentinel(t *testing.T) {
	u, info, err := Universal(Options{URL: "redis://app:secret@mymaster/2", Sentinels: "redis://:spw@s1:26379,s2:26380"})
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode != ModeSentinel || info.Master != "mymaster" || u.MasterName != "mymaster" || !reflect.DeepEqual(u.Addrs, []string{"s1:26379", "s2:26380"}) ||
		u.Username != "app" || u.Password != "secret" || u.DB != 2 || u.SentinelPassword != "spw" {
		t.Errorf("sentinel: %+v %+v", info, u)
	}
	if got := info.Describe(); got != "Redis Sentinel master mymaster via s1:26379,s2:26380 (TLS: off)" {
		t.Errorf("describe: %s", got)
	}
	if _, _, err := Universal(Options{URL: "redis://mymaster", Sentinels: " , "}); err == nil {
		t.Error("an empty Sentinel list must be an error")
	}
}

func TestUniversalTLS(t *testing.T) {
	// AnyCable's default: TLS without verification.
	u, info, err := Universal(Options{URL: "rediss://r1:6380"})
	if err != nil {
		t.Fatal(err)
	}
	if !info.TLS || info.Verified || u.TLSConfig == nil || !u.TLSConfig.InsecureSkipVerify || u.TLSConfig.ServerName != "" {
		t.Errorf("rediss default: %+v", info)
	}
	if got := info.Describe(); got != "Redis server r1:6380 (TLS: on, certificate not verified)" {
		t.Errorf("describe: %s", got)
	}
	dir := t.TempDir()
	caPath, certPath, keyPath := writeCert(t, dir)
	u, info, err = Universal(Options{URL: "rediss://r1:6380", TLSVerify: true, CACertPath: caPath, ClientCertPath: certPath, ClientKeyPath: keyPath})
	if err != nil {
		t.Fatal(err)
	}
	if !info.Verified || u.TLSConfig.InsecureSkipVerify || u.TLSConfig.RootCAs == nil || len(u.TLSConfig.Certificates) != 1 {
		t.Errorf("verified with CA and client certificate: %+v", info)
	}
	if _, _, err := Universal(Options{URL: "rediss://r1", CACertPath: filepath.Join(dir, "missing.pem")}); err == nil || !strings.Contains(err.Error(), "--redis_tls_ca_cert_path") {
		t.Errorf("a missing CA file: %v", err)
	}
	if _, _, err := Universal(Options{URL: "rediss://r1", CACertPath: keyPath}); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("a CA file without a certificate: %v", err)
	}
	// TLS settings without rediss:// leave the connection plain.
	if _, info, _ = Universal(Options{URL: "redis://r1", TLSVerify: true}); info.TLS {
		t.Error("redis:// must stay plain")
	}
}

// Connect asks a single URL's server whether it is a cluster node: the
// local Redis is not.
func TestConnectProbesSingleServer(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis")
	}
	client, info, err := Connect(context.Background(), Options{URL: "redis://127.0.0.1:6379", DialTimeout: time.Second}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := client.Ping(context.Background()).Err(); err != nil {
		t.Skipf("no Redis on 127.0.0.1:6379: %v", err)
	}
	if !info.Probed || info.Mode != ModeSingle || IsCluster(client) || Describe(client) != "127.0.0.1:6379" {
		t.Errorf("%+v %s", info, Describe(client))
	}
	// A server that does not answer is used as a single one, unprobed.
	down, info, err := Connect(context.Background(), Options{URL: "redis://127.0.0.1:1", DialTimeout: time.Second}, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	if info.Probed || info.Mode != ModeSingle {
		t.Errorf("unreachable: %+v", info)
	}
}

// writeCert writes a self-signed CA certificate (also used as the client
// certificate) and its key.
func writeCert(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, cert, key
}
