package node

import (
	"context"
	"sync"
	"time"
)

// timerKind is what a timer does when it fires.
type timerKind uint8

const (
	// timerPing sends a ping and schedules the next.
	timerPing timerKind = iota
	// timerPongCheck disconnects a client silent since the ping at sentAt.
	timerPongCheck
	// timerTouch renews the session's cache entry and schedules the next.
	timerTouch
	// timerRestoreHold releases the hold on live messages of restored
	// subscriptions whose history the client did not ask for in time.
	timerRestoreHold
	// timerCache writes the session's restore cache after a change.
	timerCache
	// timerGap fills a gap in a subscription's offsets from history, if
	// live messages have not filled it meanwhile.
	timerGap
)

// timer is one scheduled action on a session. Every session has one
// pending (its ping, mostly), so it is kept small: the feed of the rare
// timerGap is behind a pointer.
type timer struct {
	s      *Session
	kind   timerKind
	sentAt int64
	// gap names the feed a timerGap is for.
	gap *gapFeed
}

// gapFeed is the subscription (identifier) and stream of a timerGap.
type gapFeed struct {
	identifier, stream string
}

// wheel schedules session timers on one goroutine and one ticker, so idle
// connections carry no timer or goroutine of their own. Times are rounded
// up to the resolution.
type wheel struct {
	resolution time.Duration

	mu    sync.Mutex
	tick  int64
	slots map[int64][]timer
}

func newWheel(resolution time.Duration) *wheel {
	return &wheel{resolution: resolution, slots: map[int64][]timer{}}
}

// add schedules t to fire after d.
func (w *wheel) add(t timer, d time.Duration) {
	ticks := int64((d + w.resolution - 1) / w.resolution)
	if ticks < 1 {
		ticks = 1
	}
	w.mu.Lock()
	slot := w.tick + ticks
	w.slots[slot] = append(w.slots[slot], t)
	w.mu.Unlock()
}

// run fires due timers until ctx is done.
func (w *wheel) run(ctx context.Context, fire func(timer)) {
	ticker := time.NewTicker(w.resolution)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		w.mu.Lock()
		w.tick++
		due := w.slots[w.tick]
		delete(w.slots, w.tick)
		w.mu.Unlock()
		for _, t := range due {
			fire(t)
		}
	}
}
