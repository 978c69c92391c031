package node

import (
	"fmt"
	"testing"
)

// TestSubSetLikeMap drives a subSet and a map with the same changes,
// through the move from slice to map, and requires the same contents.
func TestSubSetLikeMap(t *testing.T) {
	var s subSet
	m := map[string]*subscription{}
	check := func(step string) {
		t.Helper()
		if s.len() != len(m) {
			t.Fatalf("%s: len %d, want %d", step, s.len(), len(m))
		}
		n := 0
		for id, sub := range s.all() {
			n++
			if m[id] != sub {
				t.Fatalf("%s: %q is %p, want %p", step, id, sub, m[id])
			}
		}
		if n != len(m) {
			t.Fatalf("%s: all yielded %d, want %d", step, n, len(m))
		}
		for id, sub := range m {
			if got, ok := s.lookup(id); !ok || got != sub {
				t.Fatalf("%s: lookup %q = %p %v", step, id, got, ok)
			}
		}
	}
	for i := 0; i < 3*smallSubs; i++ {
		id := fmt.Sprint(i)
		sub := &subscription{}
		s.set(id, sub)
		m[id] = sub
		check("set " + id)
		if i%3 == 1 {
			s.del(fmt.Sprint(i - 1))
			delete(m, fmt.Sprint(i-1))
			check("del")
		}
		s.set(id, sub) // again: no duplicate
		check("set again " + id)
	}
	if _, ok := s.lookup("nope"); ok || s.get("nope") != nil {
		t.Fatal("found an identifier never set")
	}
}

func TestSubSetDelClearsSlot(t *testing.T) {
	var s subSet
	s.set("a", &subscription{})
	s.set("b", &subscription{})
	s.del("a")
	if e := s.small[:2][1]; e.sub != nil || e.id != "" {
		t.Fatalf("the freed slot still holds %+v", e)
	}
}

func BenchmarkSubSetLookup(b *testing.B) {
	var s subSet
	id := `{"channel":"$pubsub","signed_stream_name":"ImJlbmNoIg==--0123456789abcdef"}`
	s.set(id, &subscription{})
	for b.Loop() {
		if s.get(id) == nil {
			b.Fatal("missing")
		}
	}
}
