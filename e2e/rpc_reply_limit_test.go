package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// peakRSS is the process's peak resident memory (VmHWM), bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// TestHTTPRPCHugeReplies: an HTTP RPC back end answering every Connect
// with 60 MB (a hostile one took AnyCable-style unbounded reading to
// 1.68 GB) costs the server a few MiB per call in flight: each client is
// refused with close 1011 "Auth Error", the log says why, and the
// server's peak memory stays far below what the replies add up to.
func TestHTTPRPCHugeReplies(t *testing.T) {
	const clients = 12
	const size = 60 << 20
	var written atomic.Int64
	chunk := []byte(strings.Repeat("x", 32<<10))
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		n, err := w.Write([]byte(`{"status":1,"transmissions":["`))
		written.Add(int64(n))
		for left := size; left > 0 && err == nil; left -= len(chunk) {
			n, err = w.Write(chunk)
			written.Add(int64(n))
		}
	}))
	t.Cleanup(backend.Close)
	s := startServer(t, nil, "--rpc_host", backend.URL+"/anycable")
	before := peakRSS(t, s.cmd.Process.Pid)

	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dialWS(t, s, dialOpts{})
			c.expectClose(1011, "Auth Error")
		}()
	}
	wg.Wait()
	peak := peakRSS(t, s.cmd.Process.Pid)
	// Read whole, the replies would take clients × 60 MB at least.
	if grown := peak - before; grown > 300<<20 {
		t.Errorf("peak resident memory grew by %d MiB for %d refused replies", grown>>20, clients)
	}
	if w := written.Load(); w > clients*30<<20 {
		t.Errorf("the back end wrote %d MiB: the replies were read past the limit", w>>20)
	}
	waitWarned(t, s, "RPC connect failed", "--rpc_max_call_recv_size")
}

// TestHTTPRPCReplyLimitFlag: --rpc_max_call_recv_size bounds HTTP RPC
// replies as it bounds gRPC ones: a 600 kB welcome passes the default
// (4 MiB) and is refused under a 500000-byte limit.
func TestHTTPRPCReplyLimitFlag(t *testing.T) {
	welcome := `{"type":"welcome","pad":"` + strings.Repeat("p", 600_000) + `"}`
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":1,"identifiers":"{}","transmissions":[%q]}`, welcome)
	}))
	t.Cleanup(backend.Close)

	s := startServer(t, nil, "--rpc_host", backend.URL, "--ws_max_pending_size", "2000000")
	c := dialWS(t, s, dialOpts{})
	if got := c.next(5 * time.Second); got != welcome {
		t.Errorf("welcome of %d bytes, want the back end's %d", len(got), len(welcome))
	}

	small := startServer(t, nil, "--rpc_host", backend.URL, "--rpc_max_call_recv_size", "500000")
	c = dialWS(t, small, dialOpts{})
	c.expectClose(1011, "Auth Error")
	waitWarned(t, small, "RPC connect failed", "more than 500000 bytes")
}
