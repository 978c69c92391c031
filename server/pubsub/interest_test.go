package pubsub

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// yields reports whether ready is done within a short while, and how.
func yields(ready *Ready, within time.Duration) (error, bool) {
	select {
	case <-ready.Done():
		return ready.Err(), true
	case <-time.After(within):
		return nil, false
	}
}

// A stream whose subscription waits on the network holds up nothing: the
// caller gets its Ready at once, a second subscriber of the stream shares
// it (the stream is subscribed once, and neither is ready before the
// server confirmed), and another stream is ready meanwhile.
func TestInterestWaitsOutsideTheLock(t *testing.T) {
	var in interest
	release := make(chan struct{})
	calls := 0
	slow := func(_ string, done func(error)) {
		calls++
		go func() { <-release; done(nil) }()
	}
	first := in.add("slow", slow)
	second := in.add("slow", slow)
	fast := in.add("fast", func(_ string, done func(error)) { done(nil) })
	if err, ok := yields(fast, 10*time.Second); !ok || err != nil {
		t.Fatalf("another stream: %v %v", err, ok)
	}
	for _, r := range []*Ready{first, second} {
		if _, ok := yields(r, 50*time.Millisecond); ok {
			t.Fatal("a subscriber of the slow stream is ready before the server confirmed")
		}
	}
	close(release)
	for _, r := range []*Ready{first, second} {
		if err, ok := yields(r, 10*time.Second); !ok || err != nil {
			t.Errorf("slow stream: %v %v", err, ok)
		}
	}
	if calls != 1 {
		t.Errorf("the stream was subscribed %d times", calls)
	}
	if got := in.list(); len(got) != 2 {
		t.Errorf("streams: %v", got)
	}
	if err, ok := yields(in.add("slow", slow), time.Second); !ok || err != nil || calls != 1 {
		t.Errorf("a subscriber of a subscribed stream: %v %v, %d calls", err, ok, calls)
	}
}

// A failed subscription yields its error to every caller that shares it;
// once they remove theirs the stream is unsubscribed, and the next
// subscription tries again.
func TestInterestFailedSubscribe(t *testing.T) {
	var in interest
	down := errors.New("down")
	failing := func(_ string, done func(error)) { done(down) }
	for range 2 {
		if err, ok := yields(in.add("s", failing), 10*time.Second); !ok || !errors.Is(err, down) {
			t.Fatalf("add: %v %v", err, ok)
		}
	}
	unsubscribed := 0
	in.remove("s", func(string) { unsubscribed++ })
	in.remove("s", func(string) { unsubscribed++ })
	in.remove("s", func(string) { unsubscribed++ }) // one too many: ignored
	if unsubscribed != 1 || len(in.streams) != 0 {
		t.Fatalf("%d unsubscribes, entries %v", unsubscribed, in.streams)
	}
	calls := 0
	if err, _ := yields(in.add("s", func(_ string, done func(error)) { calls++; done(nil) }), 10*time.Second); err != nil || calls != 1 {
		t.Fatalf("retry: %v, %d calls", err, calls)
	}
}

// Concurrent subscribes and unsubscribes of a few streams keep the count
// right: each stream ends unsubscribed exactly as often as subscribed.
func TestInterestConcurrent(t *testing.T) {
	var in interest
	var mu sync.Mutex
	subs, unsubs := map[string]int{}, map[string]int{}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 200 {
				s := []string{"a", "b", "c"}[(w+i)%3]
				r := in.add(s, func(s string, done func(error)) {
					mu.Lock()
					subs[s]++
					mu.Unlock()
					done(nil)
				})
				<-r.Done()
				if err := r.Err(); err != nil {
					t.Error(err)
				}
				in.remove(s, func(s string) { mu.Lock(); unsubs[s]++; mu.Unlock() })
			}
		})
	}
	wg.Wait()
	for _, s := range []string{"a", "b", "c"} {
		if subs[s] != unsubs[s] || subs[s] == 0 {
			t.Errorf("%s: %d subscribes, %d unsubscribes", s, subs[s], unsubs[s])
		}
	}
	if len(in.streams) != 0 || len(in.list()) != 0 {
		t.Errorf("entries left: %v", in.streams)
	}
}
