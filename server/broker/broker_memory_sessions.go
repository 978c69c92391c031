package broker

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// sessionCache holds the memory broker's cached sessions within a byte
// bound. Entries are kept in the order they were last written; with one TTL
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
	data    []byte
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

func (c *sessionCache) put(sid string, data []byte, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
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

// take removes and returns the live entry of sid.
func (c *sessionCache) take(sid string, now time.Time) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[sid]
	if !ok {
		return nil, false
	}
	s := e.Value.(*cachedSession)
	c.removeLocked(sid)
	if !s.expires.After(now) {
		return nil, false
	}
	return s.data, true
}

func (c *sessionCache) remove(sid string) {
	c.mu.Lock()
	c.removeLocked(sid)
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

// RestoreSession takes a cached session's state: the entry is gone after,
// so a session id is restorable once (the restored session caches itself
// under its own id). Restoring is no way to multiply a session.
func (m *Memory) RestoreSession(_ context.Context, sid string) ([]byte, error) {
	data, ok := m.sessions.take(sid, m.now())
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
