package rpc

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Reachability log steps: an unreachable back end is logged when it becomes
// unreachable, then again only after 1 s, 2 s, 4 s … (at most every minute)
// while it stays so, however many calls fail meanwhile.
const (
	reachFirstStep = time.Second
	reachMaxStep   = time.Minute
)

// Invoker is the call discipline shared by the transports: concurrency
// slot, retries, metrics and the reachability log around one attempt
// function. Safe for concurrent use.
type Invoker struct {
	limiter *Limiter
	policy  RetryPolicy
	metrics Metrics
	log     *slog.Logger
	reach   reachability
}

// NewInvoker builds an Invoker with concurrency slots (≤ 0 means
// DefaultConcurrency, logged as AnyCable does), the retry policy, an
// optional Metrics hook (nil records nothing) and a logger (nil discards).
func NewInvoker(concurrency int, policy RetryPolicy, m Metrics, log *slog.Logger) *Invoker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if _, reverted := NormalizeConcurrency(concurrency); reverted {
		log.Warn("RPC concurrency must be positive, reverted to the default value",
			"concurrency", concurrency, "default", DefaultConcurrency)
	}
	return &Invoker{
		limiter: NewLimiter(concurrency),
		policy:  policy.withDefaults(),
		metrics: orNop(m),
		log:     log,
		reach:   reachability{log: log},
	}
}

// Concurrency is the number of slots in use by this Invoker's limiter.
func (in *Invoker) Concurrency() int { return in.limiter.Cap() }

// Policy is the effective retry policy (defaults filled in).
func (in *Invoker) Policy() RetryPolicy { return in.policy }

// Reachable reports whether the back end answered the last attempt that
// reached a verdict: false after an Unavailable attempt, true again after
// any answer. It starts true, so a client that made no call yet (a server
// used standalone) counts as healthy.
func (in *Invoker) Reachable() bool { return !in.reach.down.Load() }

// Invoke waits for a slot (bounded only by ctx), then runs attempt under
// the retry policy, reporting to Metrics and logging per the package doc.
// attempt must honour its context and return nil, a status error, or an
// error that Retry converts (see Retry). The result is nil or a status
// error.
func (in *Invoker) Invoke(ctx context.Context, method, sid string, attempt func(context.Context) error) error {
	start := time.Now()
	in.metrics.Pending(1)
	err := in.limiter.Acquire(ctx)
	in.metrics.Pending(-1)
	if err != nil {
		in.metrics.Done(method, status.Code(err), time.Since(start))
		return err
	}
	in.metrics.InFlight(1)
	defer func() {
		// Report first: once released, the slot may be reported taken
		// by the next call, and in flight must never exceed the limit.
		in.metrics.InFlight(-1)
		in.limiter.Release()
	}()

	observed := func(ctx context.Context) error {
		err := asStatus(attempt(ctx))
		in.reach.observe(err)
		return err
	}
	onRetry := func(code codes.Code, delay time.Duration) {
		in.metrics.Retry(method, code)
		in.log.Debug("RPC retry", "method", method, "sid", sid, "code", code.String(), "delay", delay)
	}
	err = Retry(ctx, in.policy, observed, onRetry)
	in.metrics.Done(method, status.Code(err), time.Since(start))
	if err != nil {
		in.log.Debug("RPC call failed", "method", method, "sid", sid, "error", err)
	}
	return err
}

// reachability tracks whether the back end answers, logging transitions
// and, while it stays unreachable, one line per backoff step.
type reachability struct {
	log  *slog.Logger
	down atomic.Bool // read without the lock on the hot path

	mu    sync.Mutex
	since time.Time // when it became unreachable
	next  time.Time // earliest time of the next "still unreachable" line
	step  time.Duration
}

// observe classifies one attempt's result: Unavailable means unreachable;
// any answer from the back end (success or another code except the
// ambiguous DeadlineExceeded/Canceled) means reachable.
func (r *reachability) observe(err error) {
	code := status.Code(err)
	switch code {
	case codes.Unavailable:
		r.markDown(err)
	case codes.DeadlineExceeded, codes.Canceled:
	default:
		if r.down.Load() {
			r.markUp()
		}
	}
}

func (r *reachability) markDown(err error) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.down.Load() {
		r.down.Store(true)
		r.since, r.step = now, reachFirstStep
		r.next = now.Add(r.step)
		r.log.Warn("RPC back end unreachable", "error", err)
		return
	}
	if now.Before(r.next) {
		return
	}
	r.step = min(2*r.step, reachMaxStep)
	r.next = now.Add(r.step)
	r.log.Warn("RPC back end still unreachable", "for", now.Sub(r.since).Round(time.Millisecond), "error", err)
}

func (r *reachability) markUp() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.down.Load() {
		return
	}
	r.down.Store(false)
	r.log.Info("RPC back end reachable again", "after", time.Since(r.since).Round(time.Millisecond))
}
