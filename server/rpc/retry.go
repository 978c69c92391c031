package rpc

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// AnyCable's defaults of the retry policy.
const (
	// DefaultCommandTimeout is AnyCable's command_timeout: the budget of a
	// whole call, retries and their delays included.
	DefaultCommandTimeout = 3000 * time.Millisecond
	// DefaultExhaustedBase is the retry base for codes.ResourceExhausted.
	DefaultExhaustedBase = 10 * time.Millisecond
	// DefaultUnavailableBase is the retry base for codes.Unavailable.
	DefaultUnavailableBase = 100 * time.Millisecond
)

// maxShift caps the exponent so base<<attempt cannot overflow; the budget
// ends the loop long before that matters.
const maxShift = 20

// RetryPolicy is AnyCable's retry and timeout policy (see Retry for how
// it is applied). The zero value is AnyCable's default for gRPC.
type RetryPolicy struct {
	// CommandTimeout bounds the whole call including retries and their
	// delays; 0 means DefaultCommandTimeout.
	CommandTimeout time.Duration
	// RequestTimeout bounds each attempt; 0 means no per-attempt limit
	// (gRPC's default; HTTP RPC passes its own, see httpRequestTimeout).
	// An attempt that runs out gets codes.DeadlineExceeded, which is not
	// retried.
	RequestTimeout time.Duration
	// ExhaustedBase and UnavailableBase are the delay bases; 0 means the
	// defaults (10 ms, 100 ms). Tests shrink them.
	ExhaustedBase   time.Duration
	UnavailableBase time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.CommandTimeout <= 0 {
		p.CommandTimeout = DefaultCommandTimeout
	}
	if p.ExhaustedBase <= 0 {
		p.ExhaustedBase = DefaultExhaustedBase
	}
	if p.UnavailableBase <= 0 {
		p.UnavailableBase = DefaultUnavailableBase
	}
	return p
}

// base returns the delay base for a retryable code and 0 for every other.
func (p RetryPolicy) base(c codes.Code) time.Duration {
	switch c {
	case codes.ResourceExhausted:
		return p.ExhaustedBase
	case codes.Unavailable:
		return p.UnavailableBase
	}
	return 0
}

// Retry runs attempt until it succeeds, fails with a code other than
// ResourceExhausted/Unavailable, or the budget (CommandTimeout, from now)
// cannot fit another delay. The n-th consecutive retry of one kind waits
// 2^n × base (n from 0, so 10, 20, 40 ms … for exhausted and 100, 200,
// 400 ms … for unavailable); n restarts at 0 when the code changes, as in
// AnyCable. Each attempt gets a context bounded by the budget and, when set,
// by RequestTimeout.
//
// Unlike AnyCable, which sleeps past its budget and tries once more, Retry
// gives up as soon as the next delay would end after the budget and returns
// the last error: an outage costs the caller less than the budget and the
// call never outlives it. onRetry (may be nil) is called before each delay.
//
// The returned error is nil or a status error: the attempt's own (a non-status
// error becomes codes.Unknown, a bare context error its status equivalent),
// or codes.Canceled/DeadlineExceeded when ctx ends during a delay.
func Retry(ctx context.Context, p RetryPolicy, attempt func(context.Context) error,
	onRetry func(code codes.Code, delay time.Duration)) error {
	p = p.withDefaults()
	ctx, cancel := context.WithTimeout(ctx, p.CommandTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()

	lastCode, n := codes.OK, 0
	for {
		err := runAttempt(ctx, p.RequestTimeout, attempt)
		if err == nil {
			return nil
		}
		code := status.Code(err)
		base := p.base(code)
		if base == 0 || errors.As(err, new(finalError)) {
			return err
		}
		if code != lastCode {
			lastCode, n = code, 0
		}
		delay := base << min(n, maxShift)
		if time.Until(deadline) <= delay {
			return err
		}
		if onRetry != nil {
			onRetry(code, delay)
		}
		if !sleep(ctx, delay) {
			return status.FromContextError(ctx.Err()).Err()
		}
		n++
	}
}

func runAttempt(ctx context.Context, timeout time.Duration, attempt func(context.Context) error) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return asStatus(attempt(ctx))
}

// asStatus turns any error into a status error (nil stays nil).
func asStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return status.FromContextError(err).Err()
	}
	return status.Error(codes.Unknown, err.Error())
}

// finalError marks an attempt's error as one not to retry, whatever its
// code; its status is the wrapped error's.
type finalError struct{ error }

func (f finalError) GRPCStatus() *status.Status {
	s, _ := status.FromError(f.error)
	return s
}

func (f finalError) Unwrap() error { return f.error }

// sleep waits d or until ctx ends; it reports whether the full d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
