package broker

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func claim(t *testing.T, s IdempotencyStore, window time.Duration, pairs ...string) ([]IdempotencyClaim, string) {
	t.Helper()
	var claims []IdempotencyClaim
	for i := 0; i < len(pairs); i += 2 {
		claims = append(claims, IdempotencyClaim{Stream: pairs[i], Key: pairs[i+1]})
	}
	claimed, err := s.ClaimIdempotencyKeys(context.Background(), claims, window)
	if err != nil {
		t.Fatal(err)
	}
	return claims, fmt.Sprint(claimed)
}

// A pair is claimed once per window, per stream; a batch repeating a pair
// claims it once.
func TestIdempotencyClaimOncePerStream(t *testing.T) {
	eachBroker(t, MemoryOptions{}, func(t *testing.T, c suiteCase) {
		s := idempotencyOf(t, c)
		if _, got := claim(t, s, time.Minute, "chat", "k1", "chat", "k2", "chat", "k1"); got != "[true true false]" {
			t.Errorf("first batch: %s", got)
		}
		if _, got := claim(t, s, time.Minute, "chat", "k1", "other", "k1", "chat", "k3", "chat:k", "1"); got != "[false true true true]" {
			t.Errorf("retry, other stream, new key, look-alike: %s", got)
		}
		// The stream name's length is part of the pair: ("a", "b\x00c")
		// and ("a\x00b", "c") are different.
		if _, got := claim(t, s, time.Minute, "a", "b\x00c", "a\x00b", "c"); got != "[true true]" {
			t.Errorf("separator look-alikes: %s", got)
		}
	})
}

// After the window a pair can be claimed again. Memory runs on the test
// clock; Redis and JetStream expire keys in real time, so those cases poll
// with a deadline.
func TestIdempotencyWindowPasses(t *testing.T) {
	eachBroker(t, MemoryOptions{}, func(t *testing.T, c suiteCase) {
		s := idempotencyOf(t, c)
		const window = 200 * time.Millisecond
		claim(t, s, window, "chat", "k")
		if _, got := claim(t, s, window, "chat", "k"); got != "[false]" {
			t.Fatalf("within the window: %s", got)
		}
		c.clock.t = c.clock.t.Add(window)
		deadline := time.Now().Add(5 * time.Second)
		for {
			if _, got := claim(t, s, window, "chat", "k"); got == "[true]" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("still a duplicate 5 s after the window")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// A released claim can be claimed again at once; a release of a claim that
// has since been replaced leaves the new one alone; duplicates release
// nothing.
func TestIdempotencyRelease(t *testing.T) {
	eachBroker(t, MemoryOptions{}, func(t *testing.T, c suiteCase) {
		ctx := context.Background()
		s := idempotencyOf(t, c)
		first, _ := claim(t, s, time.Minute, "chat", "k", "chat", "kept")
		dup, got := claim(t, s, time.Minute, "chat", "k")
		if got != "[false]" {
			t.Fatalf("retry: %s", got)
		}
		if err := s.ReleaseIdempotencyKeys(ctx, dup); err != nil {
			t.Fatal(err)
		}
		if _, got := claim(t, s, time.Minute, "chat", "k"); got != "[false]" {
			t.Fatalf("a duplicate's release freed the key: %s", got)
		}
		if err := s.ReleaseIdempotencyKeys(ctx, first[:1]); err != nil {
			t.Fatal(err)
		}
		second, got := claim(t, s, time.Minute, "chat", "k", "chat", "kept")
		if got != "[true false]" {
			t.Fatalf("after release: %s", got)
		}
		// The first claim's token is stale now.
		s.ReleaseIdempotencyKeys(ctx, first[:1])
		if _, got := claim(t, s, time.Minute, "chat", "k"); got != "[false]" {
			t.Fatalf("a stale release dropped the new claim: %s", got)
		}
		s.ReleaseIdempotencyKeys(ctx, second)
		if _, got := claim(t, s, time.Minute, "chat", "k"); got != "[true]" {
			t.Fatalf("after the second release: %s", got)
		}
	})
}

// The memory store keeps at most maxKeys, forgetting the oldest first.
func TestIdempotencyMemoryBound(t *testing.T) {
	m, _ := newTestMemory(MemoryOptions{IdempotencyMaxKeys: 3})
	for i := range 5 {
		claim(t, m, time.Minute, "s", fmt.Sprint(i))
	}
	if n := m.idempotency.Len(); n != 3 {
		t.Errorf("%d keys kept, want 3", n)
	}
	if _, got := claim(t, m, time.Minute, "s", "0", "s", "1", "s", "4"); got != "[true true false]" {
		t.Errorf("oldest should be forgotten, newest kept: %s", got)
	}
	// Released claims do not grow the order past its bound.
	for i := range 100 {
		cl, _ := claim(t, m, time.Minute, "r", fmt.Sprint(i))
		m.ReleaseIdempotencyKeys(context.Background(), cl)
	}
	if n := len(m.idempotency.order) - m.idempotency.head; n > 6 {
		t.Errorf("order holds %d entries for a bound of 3", n)
	}
}

// Expired keys are dropped by the broker's expiry pass, not only when new
// keys are claimed.
func TestIdempotencyMemoryExpire(t *testing.T) {
	m, c := newTestMemory(MemoryOptions{})
	claim(t, m, time.Second, "s", "a", "s", "b")
	c.t = c.t.Add(time.Second)
	m.idempotency.Expire()
	if n := m.idempotency.Len(); n != 0 {
		t.Errorf("%d keys kept after their window", n)
	}
}

// idempotencyOf is the broker's idempotency store; a broker without one
// (the node then keeps the keys itself) skips the test.
func idempotencyOf(t *testing.T, c suiteCase) IdempotencyStore {
	t.Helper()
	s := c.b.Idempotency()
	if s == nil {
		t.Skip("this broker keeps no idempotency keys; the node keeps them")
	}
	return s
}
