package rpc

import (
	"context"
	"maps"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	anycablepb "github.com/cablehub/cablehub/gen/anycable"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"
)

func codeOf(err error) codes.Code { return status.Code(err) }

// stats are the totals and peaks a recorder keeps.
type stats struct {
	pending     int
	peakPending int
	inFlight    int
	peakFlight  int
	retries     map[codes.Code]int
	done        map[codes.Code]int
}

// recorder is a Metrics implementation that keeps stats.
type recorder struct {
	mu sync.Mutex
	s  stats
}

func newRecorder() *recorder {
	return &recorder{s: stats{retries: map[codes.Code]int{}, done: map[codes.Code]int{}}}
}

func (r *recorder) Pending(d int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.pending += d
	r.s.peakPending = max(r.s.peakPending, r.s.pending)
}

func (r *recorder) InFlight(d int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.inFlight += d
	r.s.peakFlight = max(r.s.peakFlight, r.s.inFlight)
}

func (r *recorder) Retry(_ string, c codes.Code) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.retries[c]++
}

func (r *recorder) Done(_ string, c codes.Code, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.done[c]++
}

func (r *recorder) snapshot() stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	cp := r.s
	cp.retries = maps.Clone(r.s.retries)
	cp.done = maps.Clone(r.s.done)
	return cp
}

func TestGRPCResourceExhaustedRetriedThenSuccess(t *testing.T) {
	var n atomic.Int64
	b := &backend{connect: func(context.Context, *anycablepb.ConnectionRequest) (*anycablepb.ConnectionResponse, error) {
		if n.Add(1) <= 3 {
			return nil, status.Error(codes.ResourceExhausted, "busy")
		}
		return &anycablepb.ConnectionResponse{Status: anycablepb.Status_SUCCESS, Identifiers: "id"}, nil
	}}
	m := newRecorder()
	g := newTestGRPC(t, GRPCOptions{Host: startBackend(t, b), Metrics: m}, nil)
	resp, err := g.Connect(context.Background(), "s", &anycablepb.ConnectionRequest{})
	if err != nil || resp.GetIdentifiers() != "id" {
		t.Fatalf("Connect = %v, %v; want success after retries", resp, err)
	}
	if got := b.calls.Load(); got != 4 {
		t.Errorf("server saw %d attempts, want 4", got)
	}
	s := m.snapshot()
	if s.retries[codes.ResourceExhausted] != 3 || s.done[codes.OK] != 1 {
		t.Errorf("metrics retries %v done %v; want 3 exhausted retries, 1 OK call", s.retries, s.done)
	}
}

func TestGRPCUnavailableRetriedUntilBudget(t *testing.T) {
	b := &backend{command: func(context.Context, *anycablepb.CommandMessage) (*anycablepb.CommandResponse, error) {
		return nil, status.Error(codes.Unavailable, "down")
	}}
	budget := time.Second
	g := newTestGRPC(t, GRPCOptions{Host: startBackend(t, b), CommandTimeout: budget}, nil)
	start := time.Now()
	_, err := g.Command(context.Background(), "s", &anycablepb.CommandMessage{})
	elapsed := time.Since(start)
	if codeOf(err) != codes.Unavailable {
		t.Fatalf("err = %v, want Unavailable", err)
	}
	// 100 + 200 + 400 ms of delays fit in 1 s, 800 more would not.
	if got := b.calls.Load(); got < 3 {
		t.Errorf("server saw %d attempts, want at least 3", got)
	}
	if elapsed > budget+2*time.Second {
		t.Errorf("gave up after %v, budget %v", elapsed, budget)
	}
}

func TestGRPCOtherCodesNotRetried(t *testing.T) {
	for _, c := range []codes.Code{codes.Internal, codes.Unauthenticated, codes.InvalidArgument, codes.Unknown, codes.Unimplemented} {
		t.Run(c.String(), func(t *testing.T) {
			b := &backend{disconnect: func(context.Context, *anycablepb.DisconnectRequest) (*anycablepb.DisconnectResponse, error) {
				return nil, status.Error(c, "no")
			}}
			m := newRecorder()
			g := newTestGRPC(t, GRPCOptions{Host: startBackend(t, b), Metrics: m}, nil)
			_, err := g.Disconnect(context.Background(), "s", &anycablepb.DisconnectRequest{})
			if codeOf(err) != c {
				t.Fatalf("err = %v, want %v", err, c)
			}
			if got := b.calls.Load(); got != 1 {
				t.Errorf("server saw %d attempts, want 1", got)
			}
			if s := m.snapshot(); len(s.retries) != 0 || s.done[c] != 1 {
				t.Errorf("metrics retries %v done %v", s.retries, s.done)
			}
		})
	}
}

// blockUntilDone is a handler slower than any test budget: it gives up
// only when the call's deadline (propagated by gRPC) has passed.
func blockUntilDone(ctx context.Context, _ *anycablepb.ConnectionRequest) (*anycablepb.ConnectionResponse, error) {
	select {
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	case <-time.After(20 * time.Second):
		return &anycablepb.ConnectionResponse{Status: anycablepb.Status_SUCCESS}, nil
	}
}

func TestGRPCRequestTimeoutNotRetried(t *testing.T) {
	b := &backend{connect: blockUntilDone}
	g := newTestGRPC(t, GRPCOptions{Host: startBackend(t, b), RequestTimeout: 200 * time.Millisecond}, nil)
	start := time.Now()
	_, err := g.Connect(context.Background(), "s", &anycablepb.ConnectionRequest{})
	if codeOf(err) != codes.DeadlineExceeded {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if got := b.calls.Load(); got != 1 {
		t.Errorf("server saw %d attempts, want 1", got)
	}
	if el := time.Since(start); el > 2500*time.Millisecond {
		t.Errorf("took %v with a 200 ms request timeout and a 3 s budget", el)
	}
}

func TestGRPCSlowHandlerBoundedByBudget(t *testing.T) {
	b := &backend{connect: blockUntilDone}
	budget := 400 * time.Millisecond
	g := newTestGRPC(t, GRPCOptions{Host: startBackend(t, b), CommandTimeout: budget}, nil)
	start := time.Now()
	_, err := g.Connect(context.Background(), "s", &anycablepb.ConnectionRequest{})
	if codeOf(err) != codes.DeadlineExceeded {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if el := time.Since(start); el > budget+2*time.Second {
		t.Errorf("returned after %v, budget %v", el, budget)
	}
}

// freeAddr returns a 127.0.0.1 address nothing listens on (just closed).
func freeAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	return addr
}

// TestGRPCUnreachableNoHangLogOncePerStep: calls to a dead back end fail
// within the budget, and a burst of them logs the outage once, not per call.
func TestGRPCUnreachableNoHangLogOncePerStep(t *testing.T) {
	var logs logBuffer
	budget := 300 * time.Millisecond
	g := newTestGRPC(t, GRPCOptions{Host: freeAddr(t), CommandTimeout: budget}, logs.logger())
	const calls = 8
	start := time.Now()
	for i := range calls {
		callStart := time.Now()
		_, err := g.Connect(context.Background(), "s", &anycablepb.ConnectionRequest{})
		if c := codeOf(err); c != codes.Unavailable && c != codes.DeadlineExceeded {
			t.Fatalf("call %d: err = %v, want Unavailable or DeadlineExceeded", i, err)
		}
		if el := time.Since(callStart); el > budget+2*time.Second {
			t.Fatalf("call %d hung for %v (budget %v)", i, el, budget)
		}
	}
	elapsed := time.Since(start)
	if g.Reachable() {
		t.Error("Reachable() = true after failed calls")
	}
	warns := logs.count(`msg="RPC back end unreachable"`) + logs.count(`msg="RPC back end still unreachable"`)
	// One line at the start, then at most one per step of 1 s, 2 s, 4 s …
	limit := 1
	for step := time.Second; step <= elapsed; step *= 2 {
		limit++
	}
	if warns < 1 || warns > limit {
		t.Errorf("%d unreachable log lines for %d calls over %v, want 1..%d", warns, calls, elapsed, limit)
	}
	if n := logs.count("level=INFO msg=\"RPC retry"); n != 0 {
		t.Errorf("%d retries logged at INFO", n)
	}
}

func TestGRPCConcurrencyLimit(t *testing.T) {
	b := &backend{connect: func(context.Context, *anycablepb.ConnectionRequest) (*anycablepb.ConnectionResponse, error) {
		time.Sleep(150 * time.Millisecond) // a slow back end, so calls overlap
		return &anycablepb.ConnectionResponse{Status: anycablepb.Status_SUCCESS}, nil
	}}
	m := newRecorder()
	g := newTestGRPC(t, GRPCOptions{Host: startBackend(t, b), Concurrency: 2, Metrics: m, CommandTimeout: 20 * time.Second}, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 5 {
		wg.Go(func() {
			_, err := g.Connect(context.Background(), "s", &anycablepb.ConnectionRequest{})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if p := b.peak.Load(); p > 2 || p < 1 {
		t.Errorf("server saw %d calls in flight at once, limit 2", p)
	}
	s := m.snapshot()
	if s.peakFlight > 2 || s.pending != 0 || s.inFlight != 0 || s.done[codes.OK] != 5 {
		t.Errorf("metrics: peak in flight %d, pending %d, in flight %d, done %v", s.peakFlight, s.pending, s.inFlight, s.done)
	}
	if s.peakPending < 1 {
		t.Errorf("no call was reported pending (peak %d) with 5 calls and 2 slots", s.peakPending)
	}
}

// TestGRPCWaitingForSlotHonoursContext: a call waiting for a slot gives up
// when its context ends and never reaches the back end.
func TestGRPCWaitingForSlotHonoursContext(t *testing.T) {
	entered := make(chan struct{}, 1)
	b := &backend{connect: func(ctx context.Context, _ *anycablepb.ConnectionRequest) (*anycablepb.ConnectionResponse, error) {
		entered <- struct{}{}
		<-ctx.Done()
		return nil, status.Error(codes.Canceled, "done")
	}}
	g := newTestGRPC(t, GRPCOptions{Host: startBackend(t, b), Concurrency: 1, CommandTimeout: 20 * time.Second}, nil)
	holdCtx, stopHold := context.WithCancel(context.Background())
	held := make(chan error, 1)
	go func() {
		_, err := g.Connect(holdCtx, "holder", &anycablepb.ConnectionRequest{})
		held <- err
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := g.Command(ctx, "waiter", &anycablepb.CommandMessage{})
	if codeOf(err) != codes.DeadlineExceeded {
		t.Errorf("waiting call: err = %v, want DeadlineExceeded", err)
	}
	stopHold()
	if err := <-held; codeOf(err) != codes.Canceled {
		t.Errorf("holder: err = %v, want Canceled", err)
	}
	if got := b.calls.Load(); got != 1 {
		t.Errorf("server saw %d calls, want 1 (the waiter must not reach it)", got)
	}
}

// While the connection to a back end that is down is in
// TRANSIENT_FAILURE, calls fail at once with "grpc connection is not
// ready" and no retry, as in AnyCable, instead of each spending the
// budget.
func TestGRPCNotReadyFailsFast(t *testing.T) {
	m := &countingMetrics{}
	g := newTestGRPC(t, GRPCOptions{Host: freeAddr(t), CommandTimeout: time.Second, Metrics: m}, nil)
	deadline := time.Now().Add(10 * time.Second)
	for g.conn.GetState() != connectivity.TransientFailure {
		if time.Now().After(deadline) {
			t.Fatalf("connection state %v, never TRANSIENT_FAILURE", g.conn.GetState())
		}
		g.Connect(context.Background(), "s", &anycablepb.ConnectionRequest{})
	}
	retries := m.retries.Load()
	_, err := g.Connect(context.Background(), "s", &anycablepb.ConnectionRequest{})
	if codeOf(err) != codes.Unavailable || !strings.Contains(err.Error(), "grpc connection is not ready") {
		t.Fatalf("err = %v, want Unavailable: grpc connection is not ready", err)
	}
	if n := m.retries.Load() - retries; n != 0 {
		t.Fatalf("%d retries for a call on a connection in TRANSIENT_FAILURE", n)
	}
}
