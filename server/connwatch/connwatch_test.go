package connwatch

import (
	"sync"
	"testing"
)

// counts is a Counters recording its calls.
type counts struct {
	mu             sync.Mutex
	lost, restored map[string]int
}

func (c *counts) DependencyLost(component string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lost == nil {
		c.lost = map[string]int{}
	}
	c.lost[component]++
}

func (c *counts) DependencyRestored(component string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.restored == nil {
		c.restored = map[string]int{}
	}
	c.restored[component]++
}

// TestWatchOncePerOutage: however many failures an outage brings, it
// begins once and ends once, and each is counted once; a first report of
// a working connection is no news.
func TestWatchOncePerOutage(t *testing.T) {
	c := &counts{}
	w := New("redis", c)
	if ended, _ := w.Restored(); ended || w.Down() {
		t.Fatalf("a first success ended an outage")
	}
	if began, first := w.Lost(); !began || first {
		t.Fatalf("the first failure after a success: began %v, first %v", began, first)
	}
	for range 5 {
		if began, _ := w.Lost(); began {
			t.Fatal("a later failure began another outage")
		}
	}
	if !w.Down() {
		t.Error("Down is false during an outage")
	}
	if ended, outage := w.Restored(); !ended || outage <= 0 {
		t.Fatalf("the first success after failures: ended %v, outage %v", ended, outage)
	}
	if ended, _ := w.Restored(); ended {
		t.Error("a second success ended the outage again")
	}
	if began, _ := w.Lost(); !began {
		t.Error("a failure after the return did not begin a new outage")
	}
	if c.lost["redis"] != 2 || c.restored["redis"] != 1 {
		t.Errorf("counted lost %d, restored %d; want 2, 1", c.lost["redis"], c.restored["redis"])
	}
}

// TestWatchStartsDown: failing before ever working is an outage too, so
// the connection's first success is its end.
func TestWatchStartsDown(t *testing.T) {
	c := &counts{}
	w := New("nats", c)
	if began, first := w.Lost(); !began || !first {
		t.Fatalf("an initial failure: began %v, first %v", began, first)
	}
	if ended, _ := w.Restored(); !ended {
		t.Fatal("the first success did not end it")
	}
	if c.lost["nats"] != 1 || c.restored["nats"] != 1 {
		t.Errorf("counts %v %v", c.lost, c.restored)
	}
	// nil counters are allowed.
	New("x", nil).Lost()
}
