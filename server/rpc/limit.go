package rpc

import (
	"context"

	"google.golang.org/grpc/status"
)

// DefaultConcurrency is AnyCable's --rpc_concurrency default.
const DefaultConcurrency = 28

// Limiter is the counting semaphore shared by Connect, Command and
// Disconnect of one client (--rpc_concurrency): at most N calls are
// at the back end at once, extra calls wait in Acquire.
type Limiter struct {
	slots chan struct{}
}

// NewLimiter returns a Limiter with n slots; n ≤ 0 means
// DefaultConcurrency (AnyCable reverts non-positive values to the default;
// the caller logs that, see NormalizeConcurrency).
func NewLimiter(n int) *Limiter {
	n, _ = NormalizeConcurrency(n)
	return &Limiter{slots: make(chan struct{}, n)}
}

// NormalizeConcurrency maps n ≤ 0 to DefaultConcurrency; reverted reports
// that it did, so the caller can log AnyCable's warning.
func NormalizeConcurrency(n int) (effective int, reverted bool) {
	if n <= 0 {
		return DefaultConcurrency, true
	}
	return n, false
}

// Cap is the number of slots.
func (l *Limiter) Cap() int { return cap(l.slots) }

// Acquire takes a slot, waiting as long as needed: like AnyCable the wait
// has no timeout of its own, but it ends when ctx does (the caller decides
// how long a session may wait). On success the caller must Release exactly
// once; on failure it returns ctx's error as a status error
// (codes.DeadlineExceeded or codes.Canceled) and holds nothing.
func (l *Limiter) Acquire(ctx context.Context) error {
	select {
	case l.slots <- struct{}{}:
		return nil
	default:
	}
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

// Release returns a slot taken by a successful Acquire.
func (l *Limiter) Release() { <-l.slots }
