package broker

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// sessionCache holds the memory broker's cached sessions within a byte
// bound. A restore leaves a tombstone (an entry without data) for the TTL:
// the restored session may still be live here, its connection's end not yet
// noticed, and its next cache write must not make the sid restorable again.
// Entries are kept in the order they were last written; with one TTL
// for all, that is also the order they expire in, so expiry and eviction
// both take from the front, in O(1) per entry.
type sessionCache struct {
	mu      sync.Mutex
	max     int
	size    int
	order   *list.List // of *cachedSession, oldest write first
	entries map[string]*list.Element
}

type cachedSession struct {
	sid     string
	data    []byte // nil for a tombstone
	expires time.Time
}

func newSessionCache(max int) *sessionCache {
	if max <= 0 {
		max = DefaultSessionsMaxSize
	}
	return &sessionCache{max: max, order: list.New(), entries: map[string]*list.Element{}}
}

// entrySize is what an entry is charged against the bound: its data, its
// key twice (map and entry) and a fixed overhead.
func entrySize(sid string, data []byte) int { return len(data) + 2*len(sid) + 96 }

// put stores data under sid until expires, unless sid is tombstoned; nil
// data stores a tombstone.
func (c *sessionCache) put(sid string, data []byte, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tombstoned(sid) {
		return
	}
	c.putLocked(sid, data, expires)
}

func (c *sessionCache) tombstoned(sid string) bool {
	e, ok := c.entries[sid]
	return ok && e.Value.(*cachedSession).data == nil
}

func (c *sessionCache) putLocked(sid string, data []byte, expires time.Time) {
	c.removeLocked(sid)
	size := entrySize(sid, data)
	if size > c.max {
		return
	}
	for c.size+size > c.max {
		c.removeLocked(c.order.Front().Value.(*cachedSession).sid)
	}
	c.entries[sid] = c.order.PushBack(&cachedSession{sid: sid, data: data, expires: expires})
	c.size += size
}

// take returns the live entry of sid and leaves a tombstone until
// tombstoneUntil.
func (c *sessionCache) take(sid string, now, tombstoneUntil time.Time) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[sid]
	if !ok {
		return nil, false
	}
	s := e.Value.(*cachedSession)
	if s.data == nil || !s.expires.After(now) {
		return nil, false
	}
	c.putLocked(sid, nil, tombstoneUntil)
	return s.data, true
}

// remove drops sid's entry unless it is a tombstone.
func (c *sessionCache) remove(sid string) {
	c.mu.Lock()
	if !c.tombstoned(sid) {
		c.removeLocked(sid)
	}
	c.mu.Unlock()
}

func (c *sessionCache) removeLocked(sid string) {
	e, ok := c.entries[sid]
	if !ok {
		return
	}
	s := c.order.Remove(e).(*cachedSession)
	delete(c.entries, sid)
	c.size -= entrySize(s.sid, s.data)
}

func (c *sessionCache) expire(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for e := c.order.Front(); e != nil; e = c.order.Front() {
		s := e.Value.(*cachedSession)
		if s.expires.After(now) {
			return
		}
		c.removeLocked(s.sid)
	}
}

// CacheSession stores a session's state for restore, for SessionsTTL from
// now; a later call for the same sid replaces it and renews the TTL. When
// the cache is full the oldest entries make room.
func (m *Memory) CacheSession(_ context.Context, sid string, data []byte) error {
	m.sessions.put(sid, data, m.now().Add(m.opts.SessionsTTL))
	return nil
}

// RestoreSession takes a cached session's state: a session id is
// restorable once (the restored session caches itself under its own id),
// and the sid cannot be cached again for SessionsTTL. Restoring is no way
// to multiply a session.
func (m *Memory) RestoreSession(_ context.Context, sid string) ([]byte, error) {
	now := m.now()
	data, ok := m.sessions.take(sid, now, now.Add(m.opts.SessionsTTL))
	if !ok {
		return nil, ErrSessionNotFound
	}
	return data, nil
}

// ForgetSession drops a cached session, if any.
func (m *Memory) ForgetSession(_ context.Context, sid string) error {
	m.sessions.remove(sid)
	return nil
}

// ReturnSession caches data under sid again after a restore that did not
// go on, replacing the tombstone the take left.
func (m *Memory) ReturnSession(_ context.Context, sid string, data []byte) error {
	m.sessions.mu.Lock()
	defer m.sessions.mu.Unlock()
	m.sessions.putLocked(sid, data, m.now().Add(m.opts.SessionsTTL))
	return nil
}
