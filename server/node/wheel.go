package node

import (
	"context"
	"sync"
	"time"
)

// timer is one scheduled check of a session: a ping, or (pongCheck) the
// deadline for the client to answer the ping sent at sentAt.
type timer struct {
	s         *Session
	pongCheck bool
	sentAt    int64
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
