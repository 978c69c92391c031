package node

import "testing"

// The ordering rule: unstamped always passes, a new epoch passes and
// becomes current, and within an epoch only higher offsets pass.
func TestPositionAdvance(t *testing.T) {
	steps := []struct {
		next position
		send bool
		then position
	}{
		{position{"", 0}, true, position{"", 0}},       // unstamped before anything
		{position{"A", 5}, true, position{"A", 5}},     // first stamped
		{position{"A", 5}, false, position{"A", 5}},    // duplicate
		{position{"A", 3}, false, position{"A", 5}},    // older, same epoch
		{position{"A", 6}, true, position{"A", 6}},     // next
		{position{"", 0}, true, position{"A", 6}},      // transient moves nothing
		{position{"B", 1}, true, position{"B", 1}},     // broker lost its data: restarts at 1
		{position{"B", 1}, false, position{"B", 1}},    // duplicate in the new epoch
		{position{"B", 2}, true, position{"B", 2}},     // carries on
		{position{"C", 100}, true, position{"C", 100}}, // another epoch, any offset
	}
	var pos position
	for i, s := range steps {
		if got := pos.advance(s.next); got != s.send || pos != s.then {
			t.Fatalf("step %d: advance(%v) = %v, now at %v; want %v, %v", i, s.next, got, pos, s.send, s.then)
		}
	}
}
