// Package connwatch follows the state of one connection to a dependency
// (Redis, NATS, a broadcast adapter's subscription) from the reports of
// whoever uses it, so that an outage is logged and counted once when it
// begins and once when it ends, however many calls fail in between.
//
// A Watch only keeps the state and the counts: its users report what they
// see (Lost, Restored) and log what the transitions it returns tell them,
// in their own words. See redisconn.Watch for a go-redis hook feeding one.
package connwatch

import (
	"sync"
	"time"
)

// Counters counts outages by component; metrics.Metrics implements it
// (cablehub_dependency_lost_total, cablehub_dependency_restored_total).
type Counters interface {
	DependencyLost(component string)
	DependencyRestored(component string)
}

// state is what a Watch knows of its connection.
type state int

const (
	// unknown: nothing reported yet (the process is starting).
	unknown state = iota
	up
	down
)

// Watch is the state of one connection. Safe for concurrent use; the
// zero value is not usable, see New.
type Watch struct {
	component string
	counters  Counters

	mu    sync.Mutex
	state state
	since time.Time // when the outage began, while down
}

// New returns a watch for component (the label it is counted under, e.g.
// "redis", "broadcast:redis"), counting into counters (nil counts
// nothing). It starts knowing nothing: the first report sets the state.
func New(component string, counters Counters) *Watch {
	return &Watch{component: component, counters: counters}
}

// Component is the name given to New.
func (w *Watch) Component() string { return w.component }

// Lost reports the connection failing. began is true for the report that
// begins an outage, which is counted and is the one to log; later reports
// of the same outage return false. first says the connection was never
// seen working before (the process started without it): "unavailable"
// rather than "lost".
func (w *Watch) Lost() (began, first bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state == down {
		return false, false
	}
	first = w.state == unknown
	w.state, w.since = down, time.Now()
	if w.counters != nil {
		w.counters.DependencyLost(w.component)
	}
	return true, first
}

// Restored reports the connection working. ended is true for the report
// that ends an outage, which is counted and is the one to log; outage is
// how long it lasted. A first report that finds the connection working
// ends nothing.
func (w *Watch) Restored() (ended bool, outage time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	was := w.state
	w.state = up
	if was != down {
		return false, 0
	}
	if w.counters != nil {
		w.counters.DependencyRestored(w.component)
	}
	return true, time.Since(w.since)
}

// Down reports whether an outage is in progress.
func (w *Watch) Down() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state == down
}
