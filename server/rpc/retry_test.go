package rpc

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// script returns an attempt function answering with codes in order, then
// success; it records how many attempts ran.
func script(seq []codes.Code, n *int) func(context.Context) error {
	return func(context.Context) error {
		i := *n
		*n++
		if i < len(seq) {
			return status.Error(seq[i], "scripted")
		}
		return nil
	}
}

// TestRetryDelays: 2^n × base, with n restarting when the code changes.
func TestRetryDelays(t *testing.T) {
	seq := []codes.Code{
		codes.ResourceExhausted, codes.ResourceExhausted, codes.ResourceExhausted,
		codes.Unavailable, codes.Unavailable,
		codes.ResourceExhausted,
	}
	var delays []time.Duration
	n := 0
	p := RetryPolicy{ExhaustedBase: time.Millisecond, UnavailableBase: 3 * time.Millisecond}
	err := Retry(context.Background(), p, script(seq, &n), func(_ codes.Code, d time.Duration) {
		delays = append(delays, d)
	})
	if err != nil {
		t.Fatal(err)
	}
	ms := time.Millisecond
	want := []time.Duration{1 * ms, 2 * ms, 4 * ms, 3 * ms, 6 * ms, 1 * ms}
	if !slices.Equal(delays, want) || n != len(seq)+1 {
		t.Errorf("delays %v after %d attempts; want %v after %d", delays, n, want, len(seq)+1)
	}
}

func TestRetryDefaults(t *testing.T) {
	p := RetryPolicy{}.withDefaults()
	if p.CommandTimeout != 3*time.Second || p.RequestTimeout != 0 ||
		p.ExhaustedBase != 10*time.Millisecond || p.UnavailableBase != 100*time.Millisecond {
		t.Errorf("defaults = %+v", p)
	}
}

// TestRetryStopsWhenDelayDoesNotFit: with a 50 ms budget and a 100 ms base,
// the first Unavailable is final (no sleep that would outlive the budget).
func TestRetryStopsWhenDelayDoesNotFit(t *testing.T) {
	n := 0
	p := RetryPolicy{CommandTimeout: 50 * time.Millisecond}
	err := Retry(context.Background(), p, script([]codes.Code{codes.Unavailable, codes.Unavailable}, &n), nil)
	if status.Code(err) != codes.Unavailable || n != 1 {
		t.Errorf("err %v after %d attempts; want Unavailable after 1", err, n)
	}
}

func TestRetryErrorConversion(t *testing.T) {
	cases := map[error]codes.Code{
		errors.New("plain"):      codes.Unknown,
		context.Canceled:         codes.Canceled,
		context.DeadlineExceeded: codes.DeadlineExceeded,
	}
	for in, want := range cases {
		err := Retry(context.Background(), RetryPolicy{}, func(context.Context) error { return in }, nil)
		if _, ok := status.FromError(err); !ok || status.Code(err) != want {
			t.Errorf("%v became %v, want status %v", in, err, want)
		}
	}
}

func TestRetryCanceledDuringDelay(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := RetryPolicy{UnavailableBase: time.Second, CommandTimeout: time.Minute}
	err := Retry(ctx, p, func(context.Context) error { return status.Error(codes.Unavailable, "x") },
		func(codes.Code, time.Duration) { cancel() })
	if status.Code(err) != codes.Canceled {
		t.Errorf("err = %v, want Canceled", err)
	}
}

func TestLimiter(t *testing.T) {
	if c := NewLimiter(0).Cap(); c != DefaultConcurrency {
		t.Errorf("NewLimiter(0).Cap() = %d", c)
	}
	if c := NewLimiter(-3).Cap(); c != DefaultConcurrency {
		t.Errorf("NewLimiter(-3).Cap() = %d", c)
	}
	l := NewLimiter(1)
	if err := l.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() { got <- l.Acquire(ctx) }()
	cancel()
	if err := <-got; status.Code(err) != codes.Canceled {
		t.Errorf("waiting Acquire after cancel = %v, want Canceled", err)
	}
	l.Release()
	if err := l.Acquire(context.Background()); err != nil {
		t.Fatalf("slot not free after Release: %v", err)
	}
	l.Release()
}

// TestInvokerNilMetricsAndLog: the hook and the logger are optional, and a
// non-positive concurrency is reverted with AnyCable's warning.
func TestInvokerNilMetricsAndLog(t *testing.T) {
	in := NewInvoker(0, RetryPolicy{}, nil, nil)
	if err := in.Invoke(context.Background(), MethodCommand, "s", func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	in = NewInvoker(-1, RetryPolicy{}, nil, logs.logger())
	if in.Concurrency() != DefaultConcurrency || logs.count("RPC concurrency must be positive, reverted to the default value") != 1 {
		t.Errorf("concurrency %d, logs %q", in.Concurrency(), logs.buf.String())
	}
}

// TestInvokerReachability: Unavailable marks the back end down, any answer
// marks it up again, each transition logged once.
func TestInvokerReachability(t *testing.T) {
	var logs logBuffer
	in := NewInvoker(1, RetryPolicy{CommandTimeout: 10 * time.Millisecond}, nil, logs.logger())
	if !in.Reachable() {
		t.Fatal("a fresh Invoker must count as reachable")
	}
	down := func(context.Context) error { return status.Error(codes.Unavailable, "refused") }
	for range 5 {
		_ = in.Invoke(context.Background(), MethodConnect, "s", down)
	}
	if in.Reachable() || logs.count("RPC back end unreachable") != 1 {
		t.Errorf("reachable %v, logs %q", in.Reachable(), logs.buf.String())
	}
	answered := func(context.Context) error { return status.Error(codes.Internal, "answered") }
	_ = in.Invoke(context.Background(), MethodConnect, "s", answered)
	if !in.Reachable() || logs.count("RPC back end reachable again") != 1 {
		t.Errorf("reachable %v, logs %q", in.Reachable(), logs.buf.String())
	}
}
