package broker

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// startJetStream runs an embedded nats-server with JetStream in a temporary
// store for one test, so tests never depend on a NATS of the machine's.
func startJetStream(t testing.TB) *natsserver.Server {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
		JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded NATS did not start")
	}
	t.Cleanup(ns.Shutdown)
	return ns
}

// newTestNATS returns a JetStream broker on a fresh embedded server.
func newTestNATS(t testing.TB, opts MemoryOptions) (*NATS, *nats.Conn) {
	t.Helper()
	ns := startJetStream(t)
	conn, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	b, err := NewNATS(conn, opts, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return b, conn
}

// natsCase is the suite's case for the JetStream broker.
func natsCase(t *testing.T, opts MemoryOptions) suiteCase {
	b, _ := newTestNATS(t, opts)
	c := &clock{t: time.Now()}
	b.now = c.now
	return suiteCase{b: b, clock: c,
		epoch: func() string {
			e, err := b.Epoch(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			return e
		},
		expire: func() []PresenceLeft { return nil },
	}
}
