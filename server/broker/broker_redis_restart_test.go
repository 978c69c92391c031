package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cablehub/cablehub/server/protocol"
)

// redisProcess runs a redis-server of the test's own on a free port, with
// its working directory (where it saves and loads dump.rdb) in dir.
func redisProcess(t *testing.T, dir string, port int, args ...string) *exec.Cmd {
	t.Helper()
	if testing.Short() {
		t.Skip("needs redis-server (make test runs it)")
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	cmd := exec.Command(bin, append([]string{"--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}, args...)...)
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	client := redis.NewClient(&redis.Options{Addr: fmt.Sprint("127.0.0.1:", port)})
	defer client.Close()
	waitFor(t, "redis-server to answer", func() bool { return client.Ping(context.Background()).Err() == nil })
	return cmd
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Redis restarted from a snapshot holds the stream's counter as it was at
// the snapshot, behind what was stamped after it: the stream gets a new
// epoch, and the old one is refused, before and after the next stamp.
func TestRedisEpochAfterRestartFromSnapshot(t *testing.T) {
	ctx := context.Background()
	dir, port := t.TempDir(), freeTCPPort(t)
	proc := redisProcess(t, dir, port)
	client := redis.NewClient(&redis.Options{Addr: fmt.Sprint("127.0.0.1:", port), MaxRetries: -1})
	t.Cleanup(func() { client.Close() })
	r := NewRedis(client, "cablehub:", MemoryOptions{HistoryLimit: 100, HistoryTTL: time.Minute}, nil)
	stampN(t, r, "s", 3)
	if err := client.Save(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	seen := stampN(t, r, "s", 3)[2] // offset 6: not in the snapshot
	proc.Process.Kill()
	proc.Wait()
	redisProcess(t, dir, port, "--dbfilename", "dump.rdb")
	if n, _ := client.HGet(ctx, "cablehub:counter:s", "offset").Int(); n != 3 {
		t.Fatalf("the snapshot was not loaded: counter at %d", n)
	}
	for _, offset := range []uint64{seen.Offset, 2} {
		if _, err := r.HistoryFrom(ctx, "s", seen.Epoch, offset); !errors.Is(err, ErrHistoryUnavailable) {
			t.Errorf("history from offset %d of the epoch before the restart: %v", offset, err)
		}
	}
	if got, _ := r.HistorySince(ctx, "s", 0); len(got) != 0 {
		t.Errorf("history of the epoch before the restart served by time: %+v", got)
	}
	p := stampN(t, r, "s", 1)[0]
	if p.Epoch == seen.Epoch || p.Offset != 1 {
		t.Fatalf("first stamp after the restart: %+v (before: %+v)", p, seen)
	}
}

// A replica promoted while it lags (its master's last stamps never reached
// it) is another Redis process: the stream gets a new epoch there.
func TestRedisEpochAfterFailover(t *testing.T) {
	ctx := context.Background()
	mport, rport := freeTCPPort(t), freeTCPPort(t)
	redisProcess(t, t.TempDir(), mport, "--repl-diskless-sync-delay", "0")
	redisProcess(t, t.TempDir(), rport, "--replicaof", "127.0.0.1", fmt.Sprint(mport))
	master := redis.NewClient(&redis.Options{Addr: fmt.Sprint("127.0.0.1:", mport)})
	t.Cleanup(func() { master.Close() })
	rclient := redis.NewClient(&redis.Options{Addr: fmt.Sprint("127.0.0.1:", rport)})
	t.Cleanup(func() { rclient.Close() })
	r := NewRedis(master, "cablehub:", MemoryOptions{HistoryLimit: 100, HistoryTTL: time.Minute}, nil)
	stampN(t, r, "s", 3)
	waitFor(t, "the replica to have offset 3", func() bool {
		n, _ := rclient.HGet(ctx, "cablehub:counter:s", "offset").Int()
		return n == 3
	})
	// The replica is promoted while its master still takes stamps that it
	// never gets (a master cut off from its replica and its Sentinels).
	if err := rclient.Do(ctx, "REPLICAOF", "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}
	seen := stampN(t, r, "s", 2)[1]
	if n, _ := rclient.HGet(ctx, "cablehub:counter:s", "offset").Int(); n != 3 {
		t.Fatalf("the promoted replica does not lag: counter at %d", n)
	}
	promoted := NewRedis(rclient, "cablehub:", MemoryOptions{HistoryLimit: 100, HistoryTTL: time.Minute}, nil)
	if _, err := promoted.HistoryFrom(ctx, "s", seen.Epoch, 3); !errors.Is(err, ErrHistoryUnavailable) {
		t.Errorf("history of the old master's epoch on the promoted replica: %v", err)
	}
	p := protocol.Publication{Stream: "s", Data: "x"}
	if err := promoted.Stamp(ctx, &p); err != nil {
		t.Fatal(err)
	}
	if p.Epoch == seen.Epoch || p.Offset != 1 {
		t.Errorf("first stamp on the promoted replica: %+v (master was at %+v)", p, seen)
	}
}
