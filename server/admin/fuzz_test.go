package admin

import (
	"encoding/base64"
	"testing"
	"time"
)

// FuzzSessionToken feeds arbitrary cookie values to the session check,
// which reads them from any client: it must never panic, and what it
// accepts must be in the one canonical form Issue writes (no second
// spelling of a token) and signed: changing its last byte refuses it.
func FuzzSessionToken(f *testing.F) {
	clk := newClock()
	s := NewSessions([]string{"pw"}, time.Hour, clk.now)
	tok, _ := s.Issue()
	f.Add(tok)
	f.Add("")
	f.Add("AQAAAABrFjW8CjXMNFXew3NguQeMw6VKjfBftWvJue-saOxwL4tOYYC1-6z136gh2zXzUrrO1kih")
	f.Fuzz(func(t *testing.T, token string) {
		if !s.Valid(token) {
			s.Revoke(token)
			return
		}
		raw, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil || base64.RawURLEncoding.EncodeToString(raw) != token {
			t.Fatalf("%q accepted in a non-canonical form", token)
		}
		raw[len(raw)-1] ^= 1
		if s.Valid(base64.RawURLEncoding.EncodeToString(raw)) {
			t.Fatalf("%q accepted with its MAC changed", token)
		}
	})
}
