package backoff_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cablehub/cablehub/server/backoff"
)

// lowest and highest are sources that always draw the end of the range.
type lowest struct{}

func (lowest) Int64N(int64) int64 { return 0 }

type highest struct{}

func (highest) Int64N(n int64) int64 { return n - 1 }

func delays(b *backoff.Backoff, n int) []time.Duration {
	ds := make([]time.Duration, n)
	for i := range ds {
		ds[i] = b.Next()
	}
	return ds
}

const ms = time.Millisecond

// The ends of each delay's range: half the ceiling (never below the
// least) and the ceiling, which doubles from twice the least up to the
// most.
func TestRangeEnds(t *testing.T) {
	for _, c := range []struct {
		least, most time.Duration
		lows, highs []time.Duration
	}{
		{time.Second, 30 * time.Second,
			[]time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 15 * time.Second, 15 * time.Second},
			[]time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}},
		{250 * ms, 5 * time.Second,
			[]time.Duration{250 * ms, 500 * ms, 1000 * ms, 2000 * ms, 2500 * ms, 2500 * ms},
			[]time.Duration{500 * ms, 1000 * ms, 2000 * ms, 4000 * ms, 5000 * ms, 5000 * ms}},
		// A most under twice the least: the least stays the floor.
		{time.Second, 1500 * ms,
			[]time.Duration{1000 * ms, 1000 * ms, 1000 * ms},
			[]time.Duration{1500 * ms, 1500 * ms, 1500 * ms}},
		// Equal bounds: no jitter left.
		{time.Second, time.Second,
			[]time.Duration{time.Second, time.Second},
			[]time.Duration{time.Second, time.Second}},
	} {
		if got := delays(backoff.New(c.least, c.most, lowest{}), len(c.lows)); !slices.Equal(got, c.lows) {
			t.Errorf("[%s, %s] drawing lowest: %v, want %v", c.least, c.most, got, c.lows)
		}
		if got := delays(backoff.New(c.least, c.most, highest{}), len(c.highs)); !slices.Equal(got, c.highs) {
			t.Errorf("[%s, %s] drawing highest: %v, want %v", c.least, c.most, got, c.highs)
		}
	}
}

// Drawn at random, every delay lies within its step's range, and the
// draws spread over it rather than bunching at one end.
func TestRandomDelaysWithinRange(t *testing.T) {
	least, most := 250*ms, 5*time.Second
	src := rand.New(rand.NewPCG(1, 2))
	ceilings := []time.Duration{500 * ms, 1000 * ms, 2000 * ms, 4000 * ms, 5000 * ms, 5000 * ms}
	var lowerHalf, upperHalf int
	for range 1000 {
		b := backoff.New(least, most, src)
		for i, c := range ceilings {
			lo := max(c/2, least)
			d := b.Next()
			if d < lo || d > c {
				t.Fatalf("delay %d: %s, want within [%s, %s]", i, d, lo, c)
			}
			if d < lo+(c-lo)/2 {
				lowerHalf++
			} else {
				upperHalf++
			}
		}
	}
	// 6000 draws: a fair split is within a few percent of 3000.
	if lowerHalf < 2700 || upperHalf < 2700 {
		t.Errorf("draws in the lower half of their range %d, upper %d: not spread", lowerHalf, upperHalf)
	}
}

// Reset starts over from the shortest delays.
func TestReset(t *testing.T) {
	b := backoff.New(time.Second, 30*time.Second, highest{})
	delays(b, 10)
	b.Reset()
	want := []time.Duration{2 * time.Second, 4 * time.Second}
	if got := delays(b, 2); !slices.Equal(got, want) {
		t.Fatalf("after Reset: %v, want %v", got, want)
	}
}

// A most near the largest duration does not overflow the ceiling.
func TestHugeMostDoesNotOverflow(t *testing.T) {
	most := time.Duration(math.MaxInt64)
	b := backoff.New(time.Second, most, highest{})
	prev := time.Duration(0)
	for i := range 70 {
		d := b.Next()
		if d < prev || d > most {
			t.Fatalf("delay %d: %s after %s, want growing up to %s", i, d, prev, most)
		}
		prev = d
	}
	if prev != most {
		t.Fatalf("last delay %s, want %s", prev, most)
	}
}

func TestBadBoundsPanic(t *testing.T) {
	for _, c := range [][2]time.Duration{{0, time.Second}, {-time.Second, time.Second}, {2 * time.Second, time.Second}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%s, %s) did not panic", c[0], c[1])
				}
			}()
			backoff.New(c[0], c[1], nil)
		}()
	}
}
