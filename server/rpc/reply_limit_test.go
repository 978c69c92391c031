package rpc

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	anycablepb "github.com/cablehub/cablehub/gen/anycable"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// hugeReplyServer is a hostile HTTP RPC back end: it answers every call
// with a 200 whose body is size bytes of one JSON reply, streamed in 32
// KiB writes from one buffer (announcing the length when announce is
// set), and counts what it managed to write. done is closed by each
// handler when it returns.
func hugeReplyServer(t *testing.T, size int, announce bool) (srv *httptest.Server, written *atomic.Int64, done chan struct{}) {
	t.Helper()
	written = &atomic.Int64{}
	done = make(chan struct{}, 16)
	chunk := []byte(strings.Repeat("x", 32<<10))
	head := []byte(`{"status":1,"transmissions":["`)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { done <- struct{}{} }()
		w.Header().Set("Content-Type", "application/json")
		if announce {
			w.Header().Set("Content-Length", fmt.Sprint(size))
		}
		n, err := w.Write(head)
		written.Add(int64(n))
		for left := size - len(head); left > 0 && err == nil; left -= len(chunk) {
			n, err = w.Write(chunk[:min(len(chunk), left)])
			written.Add(int64(n))
		}
	}))
	t.Cleanup(srv.Close)
	return srv, written, done
}

// TestHTTPHugeReplyBounded: a back end answering a 60 MB Connect reply
// (as a hostile one did, taking the server to 1.68 GB) fails the call at
// the default limit, the same as gRPC's (4 MiB), once, not retried, and
// the reply is neither read past the limit (the back end gets to write
// the limit plus what the sockets' buffers take) nor buffered: the call
// allocates a few times the limit, not the reply.
func TestHTTPHugeReplyBounded(t *testing.T) {
	const size = 60 << 20
	const slack = 24 << 20 // the loopback sockets' send and receive buffers
	for _, announce := range []bool{false, true} {
		t.Run(fmt.Sprintf("announced=%v", announce), func(t *testing.T) {
			srv, written, done := hugeReplyServer(t, size, announce)
			h := newTestHTTP(t, HTTPOptions{URL: srv.URL})
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := h.Connect(ctxT(t), "s", &anycablepb.ConnectionRequest{})
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			if status.Code(err) != codes.Unknown || !strings.Contains(err.Error(), "--rpc_max_call_recv_size") {
				t.Errorf("err = %v, want Unknown naming --rpc_max_call_recv_size", err)
			}
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("the back end was still writing 10 s after the call failed (%d bytes)", written.Load())
			}
			if n := written.Load(); n > DefaultHTTPMaxResponseBytes+slack {
				t.Errorf("the back end wrote %d bytes of a %d-byte reply: it was read past the %d-byte limit", n, size, DefaultHTTPMaxResponseBytes)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 3*DefaultHTTPMaxResponseBytes {
				t.Errorf("the call allocated %d bytes for a reply refused at %d", alloc, DefaultHTTPMaxResponseBytes)
			}
			select {
			case <-done:
				t.Error("the call was retried")
			case <-time.After(100 * time.Millisecond):
			}
			if elapsed > 5*time.Second {
				t.Errorf("the call took %v", elapsed)
			}
		})
	}
}

// TestGRPCReplyTooLargeNotRetried: a gRPC reply over the receive limit
// fails with RESOURCE_EXHAUSTED at once: the back end is asked once, not
// again and again until the budget runs out as for an overloaded one.
func TestGRPCReplyTooLargeNotRetried(t *testing.T) {
	b := &backend{connect: func(context.Context, *anycablepb.ConnectionRequest) (*anycablepb.ConnectionResponse, error) {
		return &anycablepb.ConnectionResponse{Status: anycablepb.Status_SUCCESS, Transmissions: []string{strings.Repeat("x", 5<<20)}}, nil
	}}
	g := newTestGRPC(t, GRPCOptions{Host: startBackend(t, b)}, nil)
	start := time.Now()
	_, err := g.Connect(context.Background(), "s", &anycablepb.ConnectionRequest{})
	if c := codeOf(err); c != codes.ResourceExhausted || !strings.Contains(err.Error(), "larger than max") {
		t.Fatalf("err = %v (code %v), want ResourceExhausted for the size", err, c)
	}
	if n := b.calls.Load(); n != 1 {
		t.Errorf("the back end was called %d times, want 1", n)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the call took %v", d)
	}
}
