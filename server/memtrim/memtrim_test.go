package memtrim

import (
	"context"
	"testing"
	"time"
)

func TestStepTrimsOnceAfterBurst(t *testing.T) {
	tr := New(Options{})
	live := uint64(10 << 20)
	steps := []struct {
		allocs, resident uint64
		want             bool
	}{
		{30 << 20, 20 << 20, false}, // the burst: 30 MiB allocated this tick
		{60 << 20, 21 << 20, false}, // still busy
		{60<<20 + 4<<10, 21 << 20, true},
		{60<<20 + 8<<10, 11 << 20, false},  // quiet, nothing to give back
		{60<<20 + 12<<10, 21 << 20, false}, // quiet, no burst since the trim
	}
	for i, s := range steps {
		if got := tr.step(heapState{allocs: s.allocs, live: live, resident: s.resident}); got != s.want {
			t.Fatalf("step %d: trim %v, want %v", i, got, s.want)
		}
	}
}

// TestStepQuietIsRelative: a large heap's idle trickle (pings) is quiet.
func TestStepQuietIsRelative(t *testing.T) {
	tr := New(Options{})
	live := uint64(1 << 30)
	tr.step(heapState{allocs: 800 << 20, live: live, resident: 1800 << 20})
	if !tr.step(heapState{allocs: 802 << 20, live: live, resident: 1800 << 20}) {
		t.Fatal("2 MiB in a tick of a 1 GiB heap was not quiet")
	}
}

func TestStepNeedsExcess(t *testing.T) {
	tr := New(Options{MinExcess: 8 << 20})
	tr.step(heapState{allocs: 40 << 20, live: 10 << 20, resident: 17 << 20})
	if tr.step(heapState{allocs: 40 << 20, live: 10 << 20, resident: 17 << 20}) {
		t.Fatal("trimmed with 7 MiB above the live heap, under MinExcess")
	}
	if !tr.step(heapState{allocs: 40 << 20, live: 10 << 20, resident: 19 << 20}) {
		t.Fatal("no trim with 9 MiB above the live heap")
	}
}

func TestRunTrimsAndStops(t *testing.T) {
	tr := New(Options{Interval: time.Millisecond, MinExcess: 1})
	trimmed := make(chan struct{}, 1)
	tr.trim = func() {
		select {
		case trimmed <- struct{}{}:
		default:
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tr.Run(ctx); close(done) }()
	var keep [][]byte
	for i := 0; i < 64; i++ {
		keep = append(keep, make([]byte, 256<<10)) // a burst
	}
	_ = keep
	select {
	case <-trimmed:
	case <-time.After(10 * time.Second):
		t.Fatal("no trim after a burst")
	}
	cancel()
	<-done
}
