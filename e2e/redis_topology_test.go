package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The Redis topologies AnyCable's flags describe, each run for real:
// Sentinel (redis-server --sentinel) and a three-master Redis Cluster,
// with two Cablehub nodes sharing the Redis broker and pub/sub.

// startRedisProcess runs redis-server (or, with --sentinel, a Sentinel)
// with args and waits until it answers PING on port. It runs in a
// directory of its own: a replica writes the RDB it receives there, and
// any redis-server started later loads a dump.rdb it finds in its working
// directory, which would hand the fault tests' "restarted without its
// data" Redis an old epoch.
func startRedisProcess(t *testing.T, port int, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(serviceBinary(t, "redis-server"), args...)
	cmd.Dir = t.TempDir()
	if err := cmd.Start(); err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitUntil(t, fmt.Sprintf("redis on port %d answers", port), func() bool {
		out, _ := exec.Command("redis-cli", "-p", fmt.Sprint(port), "ping").Output()
		return strings.TrimSpace(string(out)) == "PONG"
	})
	return cmd
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startSentinel runs a Sentinel watching the master on masterPort under
// the name mymaster, and returns its port.
func startSentinel(t *testing.T, masterPort int) int {
	t.Helper()
	port := freePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor mymaster 127.0.0.1 %d 1\nsentinel down-after-milliseconds mymaster 2000\nsentinel failover-timeout mymaster 10000\n", port, dir, masterPort)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	startRedisProcess(t, port, conf, "--sentinel")
	return port
}

func masterPortOf(t *testing.T, sentinelPort int) string {
	out := redisCLI(t, sentinelPort, "sentinel", "get-master-addr-by-name", "mymaster")
	lines := strings.Fields(out)
	if len(lines) != 2 {
		return ""
	}
	return lines[1]
}

// Two nodes find the master through Sentinel, share its broker, and follow
// a failover to the replica.
func TestRedisSentinel(t *testing.T) {
	t.Parallel()
	masterPort, replicaPort := freePort(t), freePort(t)
	base := []string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}
	startRedisProcess(t, masterPort, append([]string{"--port", fmt.Sprint(masterPort)}, base...)...)
	startRedisProcess(t, replicaPort, append([]string{"--port", fmt.Sprint(replicaPort), "--replicaof", "127.0.0.1", fmt.Sprint(masterPort)}, base...)...)
	sentinel := startSentinel(t, masterPort)

	args := []string{"--public", "--broker", "redis", "--redis_url", "redis://mymaster/0", "--redis_sentinels", fmt.Sprintf("127.0.0.1:%d", sentinel)}
	a := startServer(t, nil, args...)
	b := startServer(t, nil, args...)
	want := fmt.Sprintf(`msg="Connecting to Redis Sentinel master mymaster via 127.0.0.1:%d (TLS: off)" context=redis`, sentinel)
	if !strings.Contains(a.Logs(), want) || !strings.Contains(a.Logs(), "Using Redis broker at Sentinel master") {
		t.Errorf("log lacks %s:\n%s", want, a.Logs())
	}
	waitHealth(t, a, 200)
	_, client, id := restoreOnAnotherNode(t, a, b, a, uniqueStream(t, "feed"))

	// The replica takes over; the nodes follow without a restart.
	waitUntil(t, "the replica is in sync", func() bool {
		return strings.Contains(redisCLI(t, replicaPort, "info", "replication"), "master_link_status:up")
	})
	redisCLI(t, sentinel, "sentinel", "failover", "mymaster")
	waitUntil(t, "Sentinel names the replica as master", func() bool { return masterPortOf(t, sentinel) == fmt.Sprint(replicaPort) })
	stream := strings.TrimSuffix(strings.TrimPrefix(id, `{"channel":"$pubsub","stream_name":"`), `"}`)
	waitUntil(t, "a publish through node A reaches node B's client after the failover", func() bool {
		r := do(t, "POST", "http://"+a.Main+"/api/publish", fmt.Sprintf(`{"stream":%q,"data":"after failover"}`, stream))
		if r.Status != 201 {
			return false
		}
		// One timer for the whole drain, and a closed connection ends it:
		// a closed frames channel is always ready, so a timer made anew on
		// every pass would never fire and the loop would spin for good.
		wait := time.After(500 * time.Millisecond)
		for {
			select {
			case f, ok := <-client.frames:
				if !ok {
					t.Fatal("node B's client was disconnected during the failover")
				}
				if strings.Contains(f, `"message":"after failover"`) {
					return true
				}
			case <-wait:
				return false
			}
		}
	})
	if role := redisCLI(t, replicaPort, "role"); !strings.HasPrefix(role, "master") {
		t.Errorf("the replica did not become master: %s", role)
	}
}

// startRedisCluster runs three cluster-enabled servers, joins them into
// one cluster with every slot covered, and returns their ports.
func startRedisCluster(t *testing.T) []int {
	t.Helper()
	dir := t.TempDir()
	ports := []int{freePort(t), freePort(t), freePort(t)}
	var addrs []string
	for _, p := range ports {
		startRedisProcess(t, p, "--port", fmt.Sprint(p), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, fmt.Sprintf("nodes-%d.conf", p)), "--dir", dir)
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", p))
	}
	out, err := exec.Command("redis-cli", append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v %s", err, out)
	}
	for _, p := range ports {
		waitUntil(t, fmt.Sprintf("cluster node %d is ok", p), func() bool {
			return strings.Contains(redisCLI(t, p, "cluster", "info"), "cluster_state:ok")
		})
	}
	return ports
}

// Two nodes on a Redis Cluster: one lists two seed nodes, the other names
// a single node and finds out it is a cluster. Broadcasts, history and
// session restore work across them; presence too.
func TestRedisCluster(t *testing.T) {
	t.Parallel()
	ports := startRedisCluster(t)
	a := startServer(t, nil, "--public", "--broker", "redis", "--redis_url", fmt.Sprintf("redis://127.0.0.1:%d,127.0.0.1:%d", ports[0], ports[1]))
	b := startServer(t, nil, "--public", "--broker", "redis", "--redis_url", fmt.Sprintf("redis://127.0.0.1:%d", ports[2]), "--presence_ttl", "1")
	for s, seeds := range map[*server]string{a: fmt.Sprintf("127.0.0.1:%d,127.0.0.1:%d", ports[0], ports[1]), b: fmt.Sprintf("127.0.0.1:%d", ports[2])} {
		logs := s.Logs()
		for _, want := range []string{
			`msg="Connecting to Redis Cluster via ` + seeds + ` (TLS: off)" context=redis`,
			`msg="Redis Cluster: each stream's keys share a hash slot of the stream's own`,
		} {
			if !strings.Contains(logs, want) {
				t.Errorf("log lacks %s:\n%s", want, logs)
			}
		}
		waitHealth(t, s, 200)
	}
	restoreOnAnotherNode(t, a, b, b, uniqueStream(t, "feed"))

	// Presence through the other node, on streams whose names hash to
	// different slots, each stream's keys in its own.
	for _, name := range []string{"room-a", "room-b", "room-c"} {
		stream := uniqueStream(t, name)
		ca := dialWS(t, a, dialOpts{})
		ca.welcome()
		id := ca.subscribe(stream)
		ca.send(joinCmd(id, `{"id":"alice","info":{}}`))
		ca.expect(`{"type":"presence","identifier":` + quoted(id) + `,"message":{"id":"alice","info":{},"type":"join"}}`)
		if r := do(t, "GET", presenceURL(b, stream), ""); r.Body != `{"type":"info","total":1,"records":[{"id":"alice","info":{}}]}` {
			t.Errorf("presence of %s through node B: %s", stream, r.Body)
		}
	}
}

// writeTLSCert writes a self-signed certificate for 127.0.0.1, usable as
// the CA, the server's and the client's certificate, and its key.
func writeTLSCert(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	return cert, key
}

// rediss:// against a real TLS Redis that requires client certificates:
// without verification (AnyCable's default, with a WARN), verified with
// the CA, and refused (503 on /health) when the certificate cannot be
// verified.
func TestRedisTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, key := writeTLSCert(t, dir)
	port := freePort(t)
	cmd := exec.Command(serviceBinary(t, "redis-server"), "--port", "0", "--tls-port", fmt.Sprint(port), "--bind", "127.0.0.1", "--dir", dir,
		"--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", cert, "--tls-auth-clients", "yes", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitUntil(t, "TLS redis answers", func() bool {
		out, _ := exec.Command("redis-cli", "-p", fmt.Sprint(port), "--tls", "--cacert", cert, "--cert", cert, "--key", key, "ping").Output()
		return strings.TrimSpace(string(out)) == "PONG"
	})
	url := fmt.Sprintf("rediss://127.0.0.1:%d", port)
	client := []string{"--redis_tls_client_cert_path", cert, "--redis_tls_client_key_path", key}
	base := append([]string{"--public", "--broker", "redis", "--redis_url", url}, client...)

	unverified := startServer(t, nil, base...)
	for _, want := range []string{
		fmt.Sprintf(`msg="Connecting to Redis server 127.0.0.1:%d (TLS: on, certificate not verified)" context=redis`, port),
		`level=WARN msg="Redis TLS does not verify the server's certificate (--redis_tls_verify is off, as in AnyCable)`,
	} {
		if !strings.Contains(unverified.Logs(), want) {
			t.Errorf("log lacks %s:\n%s", want, unverified.Logs())
		}
	}
	verified := startServer(t, []string{"ANYCABLE_REDIS_TLS_CA_CERT_PATH=" + cert}, base...)
	if logs := verified.Logs(); !strings.Contains(logs, "(TLS: on, certificate verified)") || strings.Contains(logs, "does not verify") {
		t.Errorf("with the CA:\n%s", logs)
	}
	waitHealth(t, unverified, 200)
	waitHealth(t, verified, 200)
	restoreOnAnotherNode(t, unverified, verified, verified, uniqueStream(t, "feed"))

	// Verification against the system's CAs fails: the node runs, and
	// /health names Redis and the reason.
	strict := startServer(t, nil, append(base, "--redis_tls_verify")...)
	if r := waitHealth(t, strict, 503); !strings.Contains(r.Body, `"redis"`) || !strings.Contains(r.Body, "certificate") {
		t.Errorf("health with an unverifiable certificate: %s", r.Body)
	}
	// Without the client certificate the server refuses the handshake.
	noClient := startServer(t, nil, "--public", "--broker", "redis", "--redis_url", url)
	waitHealth(t, noClient, 503)
}
