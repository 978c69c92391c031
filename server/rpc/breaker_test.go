package rpc

import (
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
)

// testOpenFor is the open period of newTestBreaker's breakers: gobreaker
// reads the real clock, so the tests wait it out. Long enough that a check
// made right after tripping still sees the breaker open on a loaded machine.
const testOpenFor = 300 * time.Millisecond

// newTestBreaker is a breaker with the defaults but for OpenFor, and the
// given Window (0: the default 10 s, which no test outlasts).
func newTestBreaker(window time.Duration) *breaker {
	return newBreaker(BreakerOptions{Window: window, OpenFor: testOpenFor})
}

// waitOpenFor sleeps past the open period of a breaker that tripped
// before the call.
func waitOpenFor() { time.Sleep(testOpenFor + 10*time.Millisecond) }

// run makes one request with the given outcome, failing the test if the
// breaker refuses it.
func run(t *testing.T, b *breaker, o outcome) {
	t.Helper()
	done, err := b.allow()
	if err != nil {
		t.Fatalf("refused in state %v: %v", b.currentState(), err)
	}
	done(o)
}

func TestBreakerDefaults(t *testing.T) {
	o := BreakerOptions{}.withDefaults()
	if o.Window != 10*time.Second || o.MinRequests != 10 || o.FailureRatio != 0.8 || o.OpenFor != 5*time.Second || o.Probes != 5 {
		t.Errorf("defaults = %+v, want AnyCable's", o)
	}
}

func TestBreakerTripsAtRatioAndMinimum(t *testing.T) {
	b := newTestBreaker(0)
	// 9 failures: below the 10-request minimum.
	for range 9 {
		run(t, b, outcomeFailure)
	}
	if s := b.currentState(); s != gobreaker.StateClosed {
		t.Fatalf("after 9 failures: %v, want closed", s)
	}
	run(t, b, outcomeFailure) // 10 requests, 100 % failures
	if s := b.currentState(); s != gobreaker.StateOpen {
		t.Fatalf("after 10 failures: %v, want open", s)
	}
	if _, err := b.allow(); err != errBreakerOpen {
		t.Errorf("open breaker allowed a request (%v)", err)
	}
}

func TestBreakerBelowRatioStaysClosed(t *testing.T) {
	b := newTestBreaker(0)
	// 3 successes then 11 failures: 11/14 = 78.6 % < 80 %.
	for range 3 {
		run(t, b, outcomeSuccess)
	}
	for range 11 {
		run(t, b, outcomeFailure)
	}
	if s := b.currentState(); s != gobreaker.StateClosed {
		t.Fatalf("at 78.6 %% failures: %v, want closed", s)
	}
	run(t, b, outcomeFailure) // 12/15 = 80 %
	if s := b.currentState(); s != gobreaker.StateOpen {
		t.Fatalf("at 80 %% failures: %v, want open", s)
	}
}

func TestBreakerIgnoredNotCounted(t *testing.T) {
	b := newTestBreaker(0)
	// 1 ignored + 9 failures: 9 requests that count, below the minimum
	// (counted, the ignored one would make 10 at 90 %).
	run(t, b, outcomeIgnored)
	for range 9 {
		run(t, b, outcomeFailure)
	}
	if s := b.currentState(); s != gobreaker.StateClosed {
		t.Fatalf("an ignored request counted towards tripping: %v", s)
	}
	run(t, b, outcomeFailure)
	if s := b.currentState(); s != gobreaker.StateOpen {
		t.Fatalf("after 10 failures: %v, want open", s)
	}
}

func TestBreakerWindowResetsCounts(t *testing.T) {
	const window = 100 * time.Millisecond
	b := newTestBreaker(window)
	for range 9 {
		run(t, b, outcomeFailure)
	}
	time.Sleep(window + 10*time.Millisecond) // a new window
	run(t, b, outcomeFailure)
	if s := b.currentState(); s != gobreaker.StateClosed {
		t.Fatalf("failures split across windows tripped the breaker: %v", s)
	}
}

func TestBreakerHalfOpenProbes(t *testing.T) {
	b := newTestBreaker(0)
	for range 10 {
		run(t, b, outcomeFailure)
	}
	if _, err := b.allow(); err != errBreakerOpen {
		t.Fatalf("allowed before the open period ended (%v)", err)
	}
	waitOpenFor()
	if s := b.currentState(); s != gobreaker.StateHalfOpen {
		t.Fatalf("after OpenFor: %v, want half-open", s)
	}
	// Five probes may be in flight; a sixth is refused.
	var dones []func(outcome)
	for range 5 {
		done, err := b.allow()
		if err != nil {
			t.Fatal(err)
		}
		dones = append(dones, done)
	}
	if _, err := b.allow(); err != errBreakerOpen {
		t.Fatalf("sixth probe: %v, want refused", err)
	}
	// An ignored probe (caller cancelled) frees its place.
	dones[4](outcomeIgnored)
	done, err := b.allow()
	if err != nil {
		t.Fatalf("probe after an ignored one: %v", err)
	}
	dones[4] = done
	for i, d := range dones {
		d(outcomeSuccess)
		d(outcomeFailure) // a second call is a no-op
		want := gobreaker.StateHalfOpen
		if i == 4 {
			want = gobreaker.StateClosed
		}
		if s := b.currentState(); s != want {
			t.Fatalf("after %d successful probes: %v, want %v", i+1, s, want)
		}
	}
}

func TestBreakerHalfOpenFailureReopens(t *testing.T) {
	b := newTestBreaker(0)
	for range 10 {
		run(t, b, outcomeFailure)
	}
	waitOpenFor()
	late, err := b.allow() // allowed in half-open …
	if err != nil {
		t.Fatal(err)
	}
	run(t, b, outcomeSuccess)
	run(t, b, outcomeFailure)
	if s := b.currentState(); s != gobreaker.StateOpen {
		t.Fatalf("after a failed probe: %v, want open", s)
	}
	late(outcomeFailure) // … finishing in the next generation: ignored
	waitOpenFor()
	if s := b.currentState(); s != gobreaker.StateHalfOpen {
		t.Fatalf("after another OpenFor: %v, want half-open", s)
	}
}

func TestBreakerDisabled(t *testing.T) {
	b := newBreaker(BreakerOptions{Disabled: true})
	for range 100 {
		run(t, b, outcomeFailure)
	}
}
