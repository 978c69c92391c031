package rpc

import (
	"errors"
	"sync"
	"time"
)

// Defaults of the HTTP transport's circuit breaker (spec B.4, AnyCable's
// "httprpc" two-step breaker).
const (
	DefaultBreakerWindow       = 10 * time.Second
	DefaultBreakerMinRequests  = 10
	DefaultBreakerFailureRatio = 0.8
	DefaultBreakerOpenFor      = 5 * time.Second
	DefaultBreakerProbes       = 5
)

// errBreakerOpen is what allow returns while the breaker refuses requests:
// open, or half-open with all its probes already handed out.
var errBreakerOpen = errors.New("http rpc is temporarily unavailable")

// BreakerOptions configure the circuit breaker in front of the HTTP
// back end. Zero values take the defaults of spec B.4; the fields exist so
// that tests can shrink the windows.
type BreakerOptions struct {
	// Window is how long the closed breaker's counts live: they restart
	// every Window (10 s).
	Window time.Duration
	// MinRequests is the number of requests within one window below which
	// the breaker never trips (10).
	MinRequests int
	// FailureRatio is the share of transport failures among the window's
	// requests at or above which it trips (0.8).
	FailureRatio float64
	// OpenFor is how long a tripped breaker fails every call before it
	// lets probes through (5 s).
	OpenFor time.Duration
	// Probes is how many requests the half-open breaker lets through; as
	// many consecutive successes close it, any failure opens it again (5).
	Probes int
	// Disabled turns the breaker off: every request is allowed.
	Disabled bool
	// Now is the clock (time.Now).
	Now func() time.Time
}

func (o BreakerOptions) withDefaults() BreakerOptions {
	if o.Window <= 0 {
		o.Window = DefaultBreakerWindow
	}
	if o.MinRequests <= 0 {
		o.MinRequests = DefaultBreakerMinRequests
	}
	if o.FailureRatio <= 0 || o.FailureRatio > 1 {
		o.FailureRatio = DefaultBreakerFailureRatio
	}
	if o.OpenFor <= 0 {
		o.OpenFor = DefaultBreakerOpenFor
	}
	if o.Probes <= 0 {
		o.Probes = DefaultBreakerProbes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

type breakerState int

const (
	breakerClosed breakerState = iota
	breakerOpen
	breakerHalfOpen
)

func (s breakerState) String() string {
	switch s {
	case breakerClosed:
		return "closed"
	case breakerOpen:
		return "open"
	default:
		return "half-open"
	}
}

// outcome is how one request ended, as far as the breaker is concerned.
type outcome int

const (
	// outcomeSuccess: the back end answered, whatever the HTTP status
	// (a 500 is the application's failure, not the transport's).
	outcomeSuccess outcome = iota
	// outcomeFailure: no answer (connection refused or reset, TLS
	// failure, timeout).
	outcomeFailure
	// outcomeIgnored: the caller gave up (its context was cancelled);
	// says nothing about the back end.
	outcomeIgnored
)

// breaker is a two-step circuit breaker with the semantics of
// sony/gobreaker, which AnyCable uses: counts of the closed state restart
// every window; a failure that brings the window to ≥ MinRequests requests
// with ≥ FailureRatio failures opens it; after OpenFor it is half-open and
// lets Probes requests through, closing after that many consecutive
// successes and opening again on any failure. Results of requests allowed
// in an earlier generation (before a state change) are ignored.
type breaker struct {
	opts BreakerOptions

	mu         sync.Mutex
	state      breakerState
	generation uint64
	expiry     time.Time // end of the closed window or of the open state
	requests   int
	failures   int
	successes  int // consecutive, half-open
}

func newBreaker(opts BreakerOptions) *breaker {
	b := &breaker{opts: opts.withDefaults()}
	b.toState(breakerClosed, b.opts.Now())
	return b
}

// allow asks to make one request. It returns errBreakerOpen when the
// request must not be made, else a done function that must be called
// exactly once with the request's outcome.
func (b *breaker) allow() (done func(outcome), err error) {
	if b.opts.Disabled {
		return func(outcome) {}, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.opts.Now()
	b.advance(now)
	switch b.state {
	case breakerOpen:
		return nil, errBreakerOpen
	case breakerHalfOpen:
		if b.requests >= b.opts.Probes {
			return nil, errBreakerOpen
		}
	}
	b.requests++
	gen := b.generation
	var once sync.Once
	return func(o outcome) { once.Do(func() { b.record(gen, o) }) }, nil
}

// currentState reports the state at the current time (for tests and logs).
func (b *breaker) currentState() breakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(b.opts.Now())
	return b.state
}

func (b *breaker) record(gen uint64, o outcome) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.opts.Now()
	b.advance(now)
	if gen != b.generation {
		return
	}
	switch o {
	case outcomeIgnored:
		b.requests--
	case outcomeSuccess:
		if b.state == breakerHalfOpen {
			b.successes++
			if b.successes >= b.opts.Probes {
				b.toState(breakerClosed, now)
			}
		}
	case outcomeFailure:
		b.failures++
		switch b.state {
		case breakerHalfOpen:
			b.toState(breakerOpen, now)
		case breakerClosed:
			if b.requests >= b.opts.MinRequests &&
				float64(b.failures) >= b.opts.FailureRatio*float64(b.requests) {
				b.toState(breakerOpen, now)
			}
		}
	}
}

// advance applies the passage of time: a closed window that ended starts a
// new generation, an open state that ended becomes half-open.
func (b *breaker) advance(now time.Time) {
	if now.Before(b.expiry) {
		return
	}
	switch b.state {
	case breakerClosed:
		b.toState(breakerClosed, now)
	case breakerOpen:
		b.toState(breakerHalfOpen, now)
	}
}

func (b *breaker) toState(s breakerState, now time.Time) {
	b.state = s
	b.generation++
	b.requests, b.failures, b.successes = 0, 0, 0
	switch s {
	case breakerClosed:
		b.expiry = now.Add(b.opts.Window)
	case breakerOpen:
		b.expiry = now.Add(b.opts.OpenFor)
	default:
		b.expiry = time.Time{}.Add(1<<63 - 1) // half-open has no expiry
	}
}
