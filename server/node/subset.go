package node

import "iter"

// smallSubs is how many subscriptions a session keeps in a slice before
// it moves them to a map.
const smallSubs = 8

// subSet is a session's subscriptions by identifier. Nearly every session
// has one or two, which a slice holds in a few dozen bytes where the
// smallest map takes about 250 (a third of an idle connection's share of
// the node); past smallSubs they move to a map, so a session with
// thousands of subscriptions still finds each in constant time. The zero
// value is empty; it is guarded by the session's mu.
type subSet struct {
	small []subEntry
	big   map[string]*subscription
}

type subEntry struct {
	id  string
	sub *subscription
}

// lookup returns the subscription of id and whether there is one.
func (s *subSet) lookup(id string) (*subscription, bool) {
	if s.big != nil {
		sub, ok := s.big[id]
		return sub, ok
	}
	for _, e := range s.small {
		if e.id == id {
			return e.sub, true
		}
	}
	return nil, false
}

// get returns the subscription of id, nil when there is none.
func (s *subSet) get(id string) *subscription {
	sub, _ := s.lookup(id)
	return sub
}

// set makes sub the subscription of id.
func (s *subSet) set(id string, sub *subscription) {
	if s.big != nil {
		s.big[id] = sub
		return
	}
	for i, e := range s.small {
		if e.id == id {
			s.small[i].sub = sub
			return
		}
	}
	if len(s.small) < smallSubs {
		s.small = append(s.small, subEntry{id, sub})
		return
	}
	s.big = make(map[string]*subscription, 2*smallSubs)
	for _, e := range s.small {
		s.big[e.id] = e.sub
	}
	s.big[id] = sub
	s.small = nil
}

// del forgets the subscription of id.
func (s *subSet) del(id string) {
	if s.big != nil {
		delete(s.big, id)
		return
	}
	for i, e := range s.small {
		if e.id == id {
			s.small = append(s.small[:i], s.small[i+1:]...)
			s.small[len(s.small):cap(s.small)][0] = subEntry{}
			return
		}
	}
}

// len is how many subscriptions there are.
func (s *subSet) len() int {
	if s.big != nil {
		return len(s.big)
	}
	return len(s.small)
}

// all yields every subscription with its identifier; the set must not
// change during the iteration.
func (s *subSet) all() iter.Seq2[string, *subscription] {
	return func(yield func(string, *subscription) bool) {
		if s.big != nil {
			for id, sub := range s.big {
				if !yield(id, sub) {
					return
				}
			}
			return
		}
		for _, e := range s.small {
			if !yield(e.id, e.sub) {
				return
			}
		}
	}
}

// snapshot returns a copy to iterate without the lock: later changes to
// s do not reach it (a map, past smallSubs, is shared as before, and like
// any map must then not change while iterated).
func (s *subSet) snapshot() subSet {
	return subSet{small: append([]subEntry(nil), s.small...), big: s.big}
}
