package rpc

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a manually advanced clock for the breaker.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newTestBreaker() (*breaker, *fakeClock) {
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	return newBreaker(BreakerOptions{Now: clock.Now}), clock
}

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
		t.Errorf("defaults = %+v, want spec B.4's", o)
	}
}

func TestBreakerTripsAtRatioAndMinimum(t *testing.T) {
	b, _ := newTestBreaker()
	// 9 failures: below the 10-request minimum.
	for range 9 {
		run(t, b, outcomeFailure)
	}
	if s := b.currentState(); s != breakerClosed {
		t.Fatalf("after 9 failures: %v, want closed", s)
	}
	run(t, b, outcomeFailure) // 10 requests, 100 % failures
	if s := b.currentState(); s != breakerOpen {
		t.Fatalf("after 10 failures: %v, want open", s)
	}
	if _, err := b.allow(); err != errBreakerOpen {
		t.Errorf("open breaker allowed a request (%v)", err)
	}
}

func TestBreakerBelowRatioStaysClosed(t *testing.T) {
	b, _ := newTestBreaker()
	// 3 successes then 11 failures: 11/14 = 78.6 % < 80 %.
	for range 3 {
		run(t, b, outcomeSuccess)
	}
	for range 11 {
		run(t, b, outcomeFailure)
	}
	if s := b.currentState(); s != breakerClosed {
		t.Fatalf("at 78.6 %% failures: %v, want closed", s)
	}
	run(t, b, outcomeFailure) // 12/15 = 80 %
	if s := b.currentState(); s != breakerOpen {
		t.Fatalf("at 80 %% failures: %v, want open", s)
	}
}

func TestBreakerWindowResetsCounts(t *testing.T) {
	b, clock := newTestBreaker()
	for range 9 {
		run(t, b, outcomeFailure)
	}
	clock.Advance(10 * time.Second) // a new window
	run(t, b, outcomeFailure)
	if s := b.currentState(); s != breakerClosed {
		t.Fatalf("failures split across windows tripped the breaker: %v", s)
	}
}

func TestBreakerHalfOpenProbes(t *testing.T) {
	b, clock := newTestBreaker()
	for range 10 {
		run(t, b, outcomeFailure)
	}
	clock.Advance(5*time.Second - time.Millisecond)
	if _, err := b.allow(); err == nil {
		t.Fatal("allowed before the open period ended")
	}
	clock.Advance(time.Millisecond)
	if s := b.currentState(); s != breakerHalfOpen {
		t.Fatalf("after 5 s: %v, want half-open", s)
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
		want := breakerHalfOpen
		if i == 4 {
			want = breakerClosed
		}
		if s := b.currentState(); s != want {
			t.Fatalf("after %d successful probes: %v, want %v", i+1, s, want)
		}
	}
}

func TestBreakerHalfOpenFailureReopens(t *testing.T) {
	b, clock := newTestBreaker()
	for range 10 {
		run(t, b, outcomeFailure)
	}
	clock.Advance(5 * time.Second)
	late, err := b.allow() // allowed in half-open …
	if err != nil {
		t.Fatal(err)
	}
	run(t, b, outcomeSuccess)
	run(t, b, outcomeFailure)
	if s := b.currentState(); s != breakerOpen {
		t.Fatalf("after a failed probe: %v, want open", s)
	}
	late(outcomeFailure) // … finishing in the next generation: ignored
	clock.Advance(5 * time.Second)
	if s := b.currentState(); s != breakerHalfOpen {
		t.Fatalf("after another 5 s: %v, want half-open", s)
	}
}

func TestBreakerDisabled(t *testing.T) {
	b := newBreaker(BreakerOptions{Disabled: true})
	for range 100 {
		run(t, b, outcomeFailure)
	}
}
