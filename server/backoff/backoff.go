// Package backoff spaces the attempts of a loop that reconnects to a
// service that is down: the delays grow exponentially between bounds, and
// are jittered so that processes that lost the service together do not
// come back to it in step.
package backoff

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Rand is the source the delays are drawn from; a *rand.Rand of
// math/rand/v2 is one. Int64N returns a number in [0, n) for n > 0.
type Rand interface {
	Int64N(n int64) int64
}

// Backoff computes the delays between a loop's attempts: "equal jitter",
// a delay drawn uniformly between half a ceiling and the ceiling, where
// the ceiling doubles after each delay up to the most. Half of each delay
// is growth the loop can count on, the other half spreads processes apart.
//
// A Backoff is owned by one loop: it is not safe for concurrent use.
type Backoff struct {
	min, max time.Duration
	rand     Rand
	// ceiling bounds the next delay.
	ceiling time.Duration
}

// New returns a Backoff whose delays lie in [least, most]. The first (and
// the first after Reset) lies in [least, min(2·least, most)]; each after
// it in [max(c/2, least), c], c doubling from that first ceiling up to
// most. r draws them; nil draws from math/rand/v2's global source.
//
// New panics unless 0 < least <= most: bounds come from constants, so bad
// ones are a programming error.
func New(least, most time.Duration, r Rand) *Backoff {
	if least <= 0 || most < least {
		panic(fmt.Sprintf("backoff: bounds %s, %s: want 0 < least <= most", least, most))
	}
	if r == nil {
		r = globalRand{}
	}
	b := &Backoff{min: least, max: most, rand: r}
	b.Reset()
	return b
}

// Next returns the delay to wait before the next attempt, and grows the
// ones after it.
func (b *Backoff) Next() time.Duration {
	c := b.ceiling
	lo := max(c/2, b.min)
	d := lo + time.Duration(b.rand.Int64N(int64(c-lo)+1))
	if c > b.max/2 {
		b.ceiling = b.max
	} else {
		b.ceiling = 2 * c
	}
	return d
}

// Reset starts the delays over from the shortest: a loop calls it once
// an attempt has succeeded (it connected, or subscribed), so that the next
// outage is retried promptly rather than at the previous one's pace.
func (b *Backoff) Reset() {
	b.ceiling = b.max
	if b.min <= b.max/2 {
		b.ceiling = 2 * b.min
	}
}

// globalRand draws from math/rand/v2's global source, which is safe for
// concurrent use and seeded at random.
type globalRand struct{}

func (globalRand) Int64N(n int64) int64 { return rand.Int64N(n) }
