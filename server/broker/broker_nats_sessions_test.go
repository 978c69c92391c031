package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// natsServerProcess runs the nats-server binary (the NATS version
// deployments run, not the embedded one) with JetStream in a new store.
func natsServerProcess(t *testing.T, port int) *exec.Cmd {
	t.Helper()
	if testing.Short() {
		t.Skip("needs nats-server (make test runs it)")
	}
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nats-server", "/usr/local/bin/nats-server"} {
			if _, err2 := exec.LookPath(p); err2 == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	cmd := exec.Command(bin, "-js", "-sd", t.TempDir(), "-a", "127.0.0.1", "-p", fmt.Sprint(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// A NATS server restarted without its store has no sessions bucket: a
// restore finds no session at once (NATS 2.9 does not answer reads of a
// bucket it lacks, so a handle kept from before would wait out the
// deadline), and caching works again.
func TestNATSSessionsAfterStoreLost(t *testing.T) {
	port := freeTCPPort(t)
	cmd := natsServerProcess(t, port)
	var conn *nats.Conn
	waitFor(t, "nats-server to answer", func() bool {
		var err error
		conn, err = nats.Connect(fmt.Sprint("nats://127.0.0.1:", port), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond), nats.ReconnectBufSize(-1))
		return err == nil
	})
	t.Cleanup(conn.Close)
	b, err := NewNATS(conn, MemoryOptions{SessionsTTL: time.Minute}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := b.CacheSession(ctx, "sid", []byte("x")); err != nil {
		t.Fatal(err)
	}
	before := conn.ConnectedServerId()
	cmd.Process.Kill()
	cmd.Wait()
	natsServerProcess(t, port)
	waitFor(t, "the reconnect", func() bool { return conn.IsConnected() && conn.ConnectedServerId() != before })
	waitFor(t, "JetStream", func() bool { return b.Healthy(ctx) == nil })
	deadline, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := b.RestoreSession(deadline, "sid"); !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("restore of a session of the lost store: %v", err)
	}
	if err := b.CacheSession(deadline, "again", []byte("y")); err != nil {
		t.Fatal(err)
	}
	if got, err := b.RestoreSession(deadline, "again"); err != nil || string(got) != "y" {
		t.Errorf("restore after the store was lost: %q %v", got, err)
	}
}
