package ws

import (
	"sync"
	"time"
)

// Defaults for Options.FrameTimeout and Options.FirstFrameTimeout.
//
// Action Cable clients give up on a connection after two missed server
// pings (6 s at the default 3 s interval), so a frame that has stalled for
// 10 s most likely belongs to a connection its client has abandoned,
// while a 64 KiB message (the default limit) needs about 5 s even at
// 100 kbit/s. A silent client is pinged after 15 s: a live one answers
// with a pong within a round trip, long before 30 s.
const (
	DefaultFrameTimeout      = 10 * time.Second
	DefaultFirstFrameTimeout = 30 * time.Second
)

// watcher closes connections that owe the server a frame for too long:
// those not heard from since Serve (after a ping at half the time, which
// any WebSocket client answers by itself), and those that left a frame or
// a fragmented message unfinished. A connection is in its set only while it
// owes a frame, so healthy connections, idle or busy, cost it nothing but
// a few branches per read; one goroutine sweeps the set, with no timer per
// connection.
type watcher struct {
	frameTimeout time.Duration // 0: not enforced
	firstTimeout time.Duration // 0: not enforced
	every        time.Duration // sweep period
	start        time.Time     // instants count from here

	mu    sync.Mutex
	conns map[*Conn]struct{}

	quit, done chan struct{}
}

// instant is a moment on the watcher's clock: nanoseconds since its start,
// plus one so that the zero instant means none. A connection keeps four;
// time.Time would take three times the memory.
type instant int64

// watchState is a connection's standing with the watcher; it is guarded
// by Conn.mu.
type watchState struct {
	watched bool    // in the watcher's set
	pinged  bool    // the ping for a silent connection is queued or sent
	ping    bool    // a ping is queued
	silent  instant // Serve, until the first frame arrives; then none
	stuck   instant // since when a frame or fragmented message is unfinished
}

// readClock is the reader's side of the watch, owned like frameReader by
// the connection's reader.
type readClock struct {
	watching  bool    // as far as the reader knows, the connection is watched
	partialAt instant // when the unfinished frame began to arrive
	messageAt instant // when the unfinished fragmented message began
}

// newWatcher returns the watcher for opts, nil when both limits are off.
func newWatcher(opts Options) *watcher {
	w := &watcher{
		frameTimeout: orDefault(opts.FrameTimeout, DefaultFrameTimeout),
		firstTimeout: orDefault(opts.FirstFrameTimeout, DefaultFirstFrameTimeout),
		every:        time.Second,
		start:        time.Now(),
		conns:        map[*Conn]struct{}{},
		quit:         make(chan struct{}),
		done:         make(chan struct{}),
	}
	if w.frameTimeout == 0 && w.firstTimeout == 0 {
		return nil
	}
	// A quarter of the shortest deadline (the ping, at half the first-frame
	// limit, is one): deadlines are kept to within a quarter, and short
	// limits (tests) are not rounded up to a second.
	for _, d := range []time.Duration{w.frameTimeout, w.firstTimeout / 2} {
		if d > 0 {
			w.every = max(min(w.every, d/4), time.Millisecond)
		}
	}
	return w
}

// orDefault maps an option's zero to def and a negative value to 0 (off).
func orDefault(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

func (w *watcher) now() instant { return instant(time.Since(w.start)) + 1 }

func (w *watcher) add(c *Conn) {
	w.mu.Lock()
	w.conns[c] = struct{}{}
	w.mu.Unlock()
}

func (w *watcher) remove(c *Conn) {
	w.mu.Lock()
	delete(w.conns, c)
	w.mu.Unlock()
}

func (w *watcher) run() {
	defer close(w.done)
	tick := time.NewTicker(w.every)
	defer tick.Stop()
	var batch []*Conn
	for {
		select {
		case <-w.quit:
			return
		case <-tick.C:
		}
		// Connections are visited outside w.mu: readers take c.mu, then
		// w.mu.
		w.mu.Lock()
		for c := range w.conns {
			batch = append(batch, c)
		}
		w.mu.Unlock()
		now := w.now()
		for i, c := range batch {
			c.sweep(w, now)
			batch[i] = nil
		}
		batch = batch[:0]
	}
}

func (w *watcher) close() {
	close(w.quit)
	<-w.done
}

// watchFromServe puts a connection that starts being served in the set, as
// not heard from; c.mu is held. A connection already closing is left to
// its close handshake, which has bounds of its own.
func (c *Conn) watchFromServe() {
	w := c.t.watcher
	if w == nil || w.firstTimeout == 0 || c.phase != phaseOpen || c.stream {
		return // a stream's client owes no frames
	}
	c.watch.silent = w.now()
	c.watch.watched = true
	c.clock.watching = true
	w.add(c)
}

// heard tells the watcher a message arrived, before it is handled: a
// slow handler must not make the client look stuck. What is unfinished
// after it is recorded when the read is done (track).
func (c *Conn) heard() {
	if !c.clock.watching {
		return
	}
	c.mu.Lock()
	c.watch.silent, c.watch.stuck = 0, 0
	c.mu.Unlock()
}

// track updates the watch after a read that left the connection open,
// given the frame reader's counts from before it. A connection with
// nothing unfinished that was not watched returns at once.
func (c *Conn) track(frames, starts uint64) {
	w := c.t.watcher
	partial, fragmented := len(c.fr.partial) > 0, c.fr.fragmented
	if w == nil || w.frameTimeout == 0 {
		partial, fragmented = false, false
	}
	if !c.clock.watching && !partial && !fragmented {
		return
	}
	now := w.now()
	progressed := c.fr.frames != frames
	switch {
	case !partial:
		c.clock.partialAt = 0
	case c.clock.partialAt == 0 || progressed:
		c.clock.partialAt = now // a new frame began
	}
	switch {
	case !fragmented:
		c.clock.messageAt = 0
	case c.clock.messageAt == 0 || c.fr.starts != starts:
		c.clock.messageAt = now // a new message began
	}
	stuck := c.clock.partialAt
	if stuck == 0 || (c.clock.messageAt != 0 && c.clock.messageAt < stuck) {
		stuck = c.clock.messageAt
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if progressed {
		c.watch.silent = 0
	}
	c.watch.stuck = stuck
	want := c.phase != phaseEnded && (c.watch.silent != 0 || stuck != 0)
	switch {
	case want && !c.watch.watched:
		w.add(c)
	case !want && c.watch.watched:
		w.remove(c)
	}
	c.watch.watched = want
	c.clock.watching = want
}

// unwatch takes an ending connection out of the set; c.mu is held.
func (c *Conn) unwatch() {
	if c.watch.watched {
		c.watch.watched = false
		c.t.watcher.remove(c)
	}
}

// sweep acts on a watched connection at now: a close with 1008 when it
// has owed a frame too long, a ping when it has been silent for half the
// first-frame limit. A connection that is closing is left to its close
// handshake.
func (c *Conn) sweep(w *watcher, now instant) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.phase != phaseOpen {
		return
	}
	s := &c.watch
	switch {
	case w.frameTimeout > 0 && s.stuck != 0 && time.Duration(now-s.stuck) >= w.frameTimeout:
		c.closeEarly(closePolicyViolation, "frame timeout", false)
	case w.firstTimeout > 0 && s.silent != 0 && time.Duration(now-s.silent) >= w.firstTimeout:
		c.closeEarly(closePolicyViolation, "first frame timeout", false)
	case w.firstTimeout > 0 && s.silent != 0 && !s.pinged && time.Duration(now-s.silent) >= w.firstTimeout/2:
		s.pinged, s.ping = true, true
		c.kick()
	}
}
