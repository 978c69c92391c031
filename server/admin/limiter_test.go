package admin

import (
	"fmt"
	"testing"
)

func TestLimiterRefusesAfterFailures(t *testing.T) {
	clk := newClock()
	l := newLimiter(clk.now)
	for i := range maxFailures {
		if ok, _ := l.allow("10.0.0.1"); !ok {
			t.Fatalf("attempt %d refused", i+1)
		}
		l.fail("10.0.0.1")
	}
	ok, wait := l.allow("10.0.0.1")
	if ok || wait != window {
		t.Fatalf("after %d failures: allow = %v, wait %v; want refused for %v", maxFailures, ok, wait, window)
	}
	if ok, _ := l.allow("10.0.0.2"); !ok {
		t.Fatal("another address is refused")
	}
	clk.t = clk.t.Add(window / 2)
	if _, wait := l.allow("10.0.0.1"); wait != window/2 {
		t.Fatalf("half a window later the wait is %v, want %v", wait, window/2)
	}
	clk.t = clk.t.Add(window / 2)
	if ok, _ := l.allow("10.0.0.1"); !ok {
		t.Fatal("refused after the window ended")
	}
}

// With maxClients addresses failing within their windows, a new one is
// refused (closed, not unbounded), until windows end.
func TestLimiterFailsClosedWhenFull(t *testing.T) {
	clk := newClock()
	l := newLimiter(clk.now)
	for i := range maxClients {
		l.fail(fmt.Sprint("a", i))
	}
	if ok, _ := l.allow("new"); ok {
		t.Fatal("a new address is allowed with the table full")
	}
	l.fail("new")
	if len(l.clients) > maxClients+1 {
		t.Fatalf("%d addresses remembered", len(l.clients))
	}
	clk.t = clk.t.Add(window)
	if ok, _ := l.allow("new2"); !ok {
		t.Fatal("a new address is refused after every window ended")
	}
	if len(l.clients) > 1 {
		t.Fatalf("%d addresses remembered after their windows ended", len(l.clients))
	}
}
