// Package memtrim gives memory back to the operating system once the
// server goes quiet after a burst of allocation.
//
// Go's collector lets the heap grow to twice what survived the last
// collection (GOGC=100) before it collects again, and its scavenger keeps
// about that much resident. A WebSocket server meets the worst case for
// it: a burst of connections allocates several times what each one keeps
// (the upgrade, the welcome, the subscribe command), then the connections
// sit idle and nothing more is allocated, so nothing is collected and the
// process holds about twice its live heap for as long as they stay. An
// idle subscribed connection keeps about 2 KB live; held at twice that, it
// costs 4–5 KiB of RSS.
//
// A Trimmer samples the runtime's allocation counter. When a tick sees
// almost no allocation after ticks that saw a burst, and the heap holds
// much more than was live at the last collection, it collects and returns
// the free pages (debug.FreeOSMemory): one collection per burst, none
// while the server is busy (the collector's own pacing is left alone
// then) and none while it stays idle.
package memtrim

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Defaults of Options.
const (
	DefaultInterval = 500 * time.Millisecond
	// DefaultMinExcess is the least resident heap above the live heap
	// worth a collection: below it a trim gains too little to matter.
	DefaultMinExcess = 4 << 20
)

// Options configure a Trimmer; zero values take the defaults.
type Options struct {
	// Interval between samples. A trim happens within two intervals of
	// the end of a burst.
	Interval time.Duration
	// MinExcess is the least heap memory (bytes in spans in use or free
	// but not yet returned) above the live heap that warrants a trim.
	MinExcess uint64
}

// sample names, read with one metrics.Read per tick (no stop-the-world,
// unlike runtime.ReadMemStats).
var sampleNames = []string{
	"/gc/heap/allocs:bytes",              // cumulative bytes allocated
	"/gc/heap/live:bytes",                // live at the last collection
	"/memory/classes/heap/objects:bytes", // in spans in use: live and not yet swept
	"/memory/classes/heap/free:bytes",    // free spans not returned to the OS
	"/memory/classes/heap/unused:bytes",  // unused room in spans in use
}

// Trimmer watches the heap; see the package comment.
type Trimmer struct {
	opts    Options
	samples []metrics.Sample
	// lastAllocs is the allocation counter at the previous tick; burst is
	// what was allocated since the last trim (or start).
	lastAllocs uint64
	burst      uint64
	// trim is called to give memory back (debug.FreeOSMemory; tests
	// replace it).
	trim func()
}

// New returns a Trimmer; Run starts it.
func New(opts Options) *Trimmer {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.MinExcess == 0 {
		opts.MinExcess = DefaultMinExcess
	}
	t := &Trimmer{opts: opts, samples: make([]metrics.Sample, len(sampleNames)), trim: debug.FreeOSMemory}
	for i, n := range sampleNames {
		t.samples[i].Name = n
	}
	return t
}

// Run samples every Interval until ctx ends.
func (t *Trimmer) Run(ctx context.Context) {
	tick := time.NewTicker(t.opts.Interval)
	defer tick.Stop()
	t.lastAllocs = t.read().allocs
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if t.step(t.read()) {
				t.trim()
				t.lastAllocs = t.read().allocs
			}
		}
	}
}

// heapState is one sample of the heap.
type heapState struct {
	allocs, live, resident uint64
}

func (t *Trimmer) read() heapState {
	metrics.Read(t.samples)
	v := func(i int) uint64 {
		if t.samples[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return t.samples[i].Value.Uint64()
	}
	return heapState{allocs: v(0), live: v(1), resident: v(2) + v(3) + v(4)}
}

// step takes one sample and reports whether to trim now: the tick
// allocated little (under 1/64 of the live heap plus 64 KiB: relative, so
// that the steady trickle of a large idle server, its pings, counts as
// quiet), a burst since the last trim allocated at least half the live
// heap, and the heap keeps more than MinExcess above the live heap.
func (t *Trimmer) step(s heapState) bool {
	delta := s.allocs - t.lastAllocs
	t.lastAllocs = s.allocs
	t.burst += delta
	quiet := delta < s.live/64+64<<10
	if !quiet || t.burst < s.live/2 || s.resident < s.live+t.opts.MinExcess {
		return false
	}
	t.burst = 0
	return true
}
