package broker

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// IdempotencyMemory remembers idempotency keys in this process, for one
// node: the memory broker's store, and the node's when its broker keeps
// none. At most maxKeys are kept; the oldest claims go first. All methods
// are safe for concurrent use.
type IdempotencyMemory struct {
	now func() time.Time

	mu      sync.Mutex
	maxKeys int
	seq     uint64
	byID    map[[16]byte]idempotencyEntry
	// order holds claims oldest first from head on. Entries whose claim was
	// released or replaced are stale (their seq no longer matches byID) and
	// skipped when they reach the head.
	order []idempotencyOrder
	head  int
}

type idempotencyEntry struct {
	expires time.Time
	seq     uint64
}

type idempotencyOrder struct {
	id  [16]byte
	seq uint64
}

// NewIdempotencyMemory returns an empty store keeping at most maxKeys keys
// (DefaultIdempotencyMaxKeys when maxKeys <= 0).
func NewIdempotencyMemory(maxKeys int) *IdempotencyMemory {
	if maxKeys <= 0 {
		maxKeys = DefaultIdempotencyMaxKeys
	}
	return &IdempotencyMemory{now: time.Now, maxKeys: maxKeys, byID: map[[16]byte]idempotencyEntry{}}
}

// ClaimIdempotencyKeys records each pair of claims for window, in order,
// unless it was recorded less than its window ago: claimed[i] is false for
// such a duplicate, including a repeat of an earlier pair of the same call.
// It never fails.
func (s *IdempotencyMemory) ClaimIdempotencyKeys(_ context.Context, claims []IdempotencyClaim, window time.Duration) ([]bool, error) {
	now := s.now()
	claimed := make([]bool, len(claims))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range claims {
		c := &claims[i]
		id := idempotencyID(c.Stream, c.Key)
		if e, ok := s.byID[id]; ok && now.Before(e.expires) {
			c.token = ""
			continue
		}
		s.seq++
		s.byID[id] = idempotencyEntry{expires: now.Add(window), seq: s.seq}
		s.order = append(s.order, idempotencyOrder{id: id, seq: s.seq})
		c.token = strconv.FormatUint(s.seq, 10)
		claimed[i] = true
	}
	s.trimLocked(now)
	return claimed, nil
}

// ReleaseIdempotencyKeys forgets the pairs of claims that ClaimIdempotencyKeys
// recorded, unless they have been claimed anew since. Unclaimed entries
// (duplicates) are ignored. It never fails.
func (s *IdempotencyMemory) ReleaseIdempotencyKeys(_ context.Context, claims []IdempotencyClaim) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range claims {
		if c.token == "" {
			continue
		}
		id := idempotencyID(c.Stream, c.Key)
		if e, ok := s.byID[id]; ok && strconv.FormatUint(e.seq, 10) == c.token {
			delete(s.byID, id)
		}
	}
	return nil
}

// Expire forgets the keys whose window has passed (those at the front of
// the claim order: with one window for all claims that is all of them).
func (s *IdempotencyMemory) Expire() {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trimLocked(now)
}

// trimLocked drops stale and expired claims from the front of the order,
// and the oldest live ones while more than maxKeys are kept.
func (s *IdempotencyMemory) trimLocked(now time.Time) {
	for s.head < len(s.order) {
		o := s.order[s.head]
		e, live := s.byID[o.id]
		live = live && e.seq == o.seq
		if live && now.Before(e.expires) && len(s.byID) <= s.maxKeys {
			break
		}
		if live {
			delete(s.byID, o.id)
		}
		s.order[s.head] = idempotencyOrder{}
		s.head++
	}
	switch {
	case len(s.order)-s.head > 2*s.maxKeys:
		// Released claims left stale entries behind a live one: drop them,
		// so the order stays within twice the bound.
		kept := s.order[:0]
		for _, o := range s.order[s.head:] {
			if e, ok := s.byID[o.id]; ok && e.seq == o.seq {
				kept = append(kept, o)
			}
		}
		clear(s.order[len(kept):])
		s.order, s.head = kept, 0
	case s.head > 1024 && s.head > len(s.order)/2:
		// Reuse the slice's front once most of it is consumed.
		n := copy(s.order, s.order[s.head:])
		s.order, s.head = s.order[:n], 0
	}
}

// Len is the number of keys remembered (expired ones not yet trimmed
// included).
func (s *IdempotencyMemory) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}

// Idempotency is m: the memory broker keeps idempotency keys in this
// process.
func (m *Memory) Idempotency() IdempotencyStore { return m }

// ClaimIdempotencyKeys records idempotency keys in this process; see
// IdempotencyMemory.ClaimIdempotencyKeys.
func (m *Memory) ClaimIdempotencyKeys(ctx context.Context, claims []IdempotencyClaim, window time.Duration) ([]bool, error) {
	return m.idempotency.ClaimIdempotencyKeys(ctx, claims, window)
}

// ReleaseIdempotencyKeys forgets claimed keys; see
// IdempotencyMemory.ReleaseIdempotencyKeys.
func (m *Memory) ReleaseIdempotencyKeys(ctx context.Context, claims []IdempotencyClaim) error {
	return m.idempotency.ReleaseIdempotencyKeys(ctx, claims)
}
