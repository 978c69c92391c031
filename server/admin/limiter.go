package admin

import (
	"sync"
	"time"
)

// Sign-in limits: each client address may fail maxFailures times per
// window; after that every attempt from it (a right password included, so
// guessing cannot go on) is refused until its window ends.
const (
	maxFailures = 5
	window      = time.Minute
	// maxClients bounds the addresses remembered. When that many have
	// failed within their windows, a new address is refused too (failing
	// closed): a flood from many addresses locks sign-in out for up to a
	// window rather than growing memory or opening guessing up.
	maxClients = 10_000
)

// limiter counts failed sign-ins per client address in fixed windows. Its
// methods are safe for concurrent use.
type limiter struct {
	now func() time.Time

	mu      sync.Mutex
	clients map[string]*attempts
}

type attempts struct {
	start    time.Time
	failures int
}

func newLimiter(now func() time.Time) *limiter {
	return &limiter{now: now, clients: map[string]*attempts{}}
}

// allow reports whether addr may try to sign in now; when not, wait is
// how long until it may.
func (l *limiter) allow(addr string) (ok bool, wait time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.clients[addr]
	switch {
	case a != nil && now.Sub(a.start) >= window:
		delete(l.clients, addr)
	case a != nil && a.failures >= maxFailures:
		return false, a.start.Add(window).Sub(now)
	case a == nil && len(l.clients) >= maxClients:
		l.prune(now)
		if len(l.clients) >= maxClients {
			return false, window
		}
	}
	return true, 0
}

// fail records a failed sign-in from addr.
func (l *limiter) fail(addr string) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.clients[addr]
	if a == nil || now.Sub(a.start) >= window {
		if a == nil && len(l.clients) >= maxClients {
			l.prune(now)
		}
		a = &attempts{start: now}
		l.clients[addr] = a
	}
	a.failures++
}

// prune forgets the addresses whose window has ended.
func (l *limiter) prune(now time.Time) {
	for addr, a := range l.clients {
		if now.Sub(a.start) >= window {
			delete(l.clients, addr)
		}
	}
}
