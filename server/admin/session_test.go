package admin

import (
	"strings"
	"testing"
	"time"
)

// clock is a settable time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newClock() *clock { return &clock{t: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)} }

func TestSessionLifecycle(t *testing.T) {
	clk := newClock()
	s := NewSessions([]string{"pw", "token"}, time.Hour, clk.now)
	tok, expires := s.Issue()
	if !expires.Equal(clk.t.Add(time.Hour)) {
		t.Fatalf("expires %v, want an hour from now", expires)
	}
	if !s.Valid(tok) {
		t.Fatal("a fresh session is not valid")
	}
	// Another node with the same credentials accepts it; other
	// credentials (a changed password) do not.
	if !NewSessions([]string{"pw", "token"}, time.Hour, clk.now).Valid(tok) {
		t.Fatal("a node with the same credentials refuses the session")
	}
	for _, creds := range [][]string{{"pw2", "token"}, {"pw"}, {"token", "pw"}, {"pwtoken"}} {
		if NewSessions(creds, time.Hour, clk.now).Valid(tok) {
			t.Fatalf("credentials %q accept a session signed with others", creds)
		}
	}
	clk.t = clk.t.Add(time.Hour - time.Second)
	if !s.Valid(tok) {
		t.Fatal("a session is not valid a second before it expires")
	}
	clk.t = clk.t.Add(time.Second)
	if s.Valid(tok) {
		t.Fatal("an expired session is valid")
	}
}

func TestSessionRevoke(t *testing.T) {
	clk := newClock()
	s := NewSessions([]string{"pw"}, time.Hour, clk.now)
	a, _ := s.Issue()
	b, _ := s.Issue()
	if a == b {
		t.Fatal("two sessions got one token")
	}
	s.Revoke(a)
	if s.Valid(a) || !s.Valid(b) {
		t.Fatalf("after revoking a: a valid %v, b valid %v; want false, true", s.Valid(a), s.Valid(b))
	}
	s.Revoke("garbage")
	if len(s.revoked) != 1 {
		t.Fatalf("revoking a malformed token remembered it: %d entries", len(s.revoked))
	}
}

func TestSessionRevokedAreBounded(t *testing.T) {
	clk := newClock()
	s := NewSessions([]string{"pw"}, time.Hour, clk.now)
	for range maxRevoked + 10 {
		tok, _ := s.Issue()
		s.Revoke(tok)
	}
	if len(s.revoked) > maxRevoked {
		t.Fatalf("%d revoked sessions remembered, bound %d", len(s.revoked), maxRevoked)
	}
	last, _ := s.Issue()
	s.Revoke(last)
	if s.Valid(last) {
		t.Fatal("the latest revoked session is valid at the bound")
	}
}

func TestSessionForgeries(t *testing.T) {
	clk := newClock()
	s := NewSessions([]string{"pw"}, time.Hour, clk.now)
	tok, _ := s.Issue()
	flip := func(i int) string {
		b := []byte(tok)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	for _, bad := range []string{"", "x", tok + "A", tok[:len(tok)-1], flip(2), flip(20), flip(len(tok) - 2), strings.ToUpper(tok)} {
		if s.Valid(bad) {
			t.Errorf("forged token %q is valid", bad)
		}
	}
}
