package rpc

import (
	"errors"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"
)

// Defaults of the HTTP transport's circuit breaker: the values of
// AnyCable's HTTP RPC ("httprpc") breaker, so that a back end sees the
// same traffic behind either server.
const (
	DefaultBreakerWindow       = 10 * time.Second
	DefaultBreakerMinRequests  = 10
	DefaultBreakerFailureRatio = 0.8
	DefaultBreakerOpenFor      = 5 * time.Second
	DefaultBreakerProbes       = 5
)

// errBreakerOpen is what allow returns while the breaker refuses requests:
// open, or half-open with all its probes already handed out. Its text is
// AnyCable's, which callers see in the codes.Unavailable status.
var errBreakerOpen = errors.New("http rpc is temporarily unavailable")

// BreakerOptions configure the circuit breaker in front of the HTTP
// back end. Zero values take the defaults above (AnyCable's); the fields
// exist so that tests can shrink the windows.
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
	return o
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

// errOutcomeFailure and errOutcomeIgnored carry an outcome into
// gobreaker, which classifies a request by the error it reports: nil is a
// success, errOutcomeIgnored is excluded from the counts (IsExcluded),
// anything else is a failure.
var (
	errOutcomeFailure = errors.New("rpc: transport failure")
	errOutcomeIgnored = errors.New("rpc: request abandoned by its caller")
)

// breaker is AnyCable's two-step circuit breaker, sony/gobreaker's
// TwoStepCircuitBreaker with these settings: counts of the closed state
// restart every Window; a failure that brings the window to ≥ MinRequests
// requests (not counting ignored ones) with ≥ FailureRatio failures opens
// it; after OpenFor it is half-open and lets Probes requests through at
// once (an ignored one frees its place), closing after that many
// consecutive successes and opening again on any failure. Results of
// requests allowed before a state change or a new window are ignored. It
// logs nothing and has no metrics: a refused call is seen as the
// codes.Unavailable it fails with.
type breaker struct {
	disabled bool
	cb       *gobreaker.TwoStepCircuitBreaker[struct{}]
}

func newBreaker(opts BreakerOptions) *breaker {
	opts = opts.withDefaults()
	return &breaker{
		disabled: opts.Disabled,
		cb: gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
			Name:        "http rpc",
			MaxRequests: uint32(opts.Probes),
			Interval:    opts.Window,
			Timeout:     opts.OpenFor,
			ReadyToTrip: func(c gobreaker.Counts) bool {
				requests := c.Requests - c.TotalExclusions
				return requests >= uint32(opts.MinRequests) &&
					float64(c.TotalFailures) >= opts.FailureRatio*float64(requests)
			},
			IsExcluded: func(err error) bool { return err == errOutcomeIgnored },
		}),
	}
}

// allow asks to make one request. It returns errBreakerOpen when the
// request must not be made, else a done function to call with the
// request's outcome; calls after the first are no-ops, and a done never
// called keeps a half-open breaker's probe place taken.
func (b *breaker) allow() (done func(outcome), err error) {
	if b.disabled {
		return func(outcome) {}, nil
	}
	report, err := b.cb.Allow()
	if err != nil {
		// gobreaker.ErrOpenState or, half-open, ErrTooManyRequests.
		return nil, errBreakerOpen
	}
	var once sync.Once
	return func(o outcome) {
		once.Do(func() {
			switch o {
			case outcomeSuccess:
				report(nil)
			case outcomeFailure:
				report(errOutcomeFailure)
			default:
				report(errOutcomeIgnored)
			}
		})
	}, nil
}

// currentState reports the state at the current time, the passage of time
// applied (for tests).
func (b *breaker) currentState() gobreaker.State {
	return b.cb.State()
}
