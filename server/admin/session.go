package admin

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"sync"
	"time"
)

// DefaultTTL is how long a console session lasts: a working day, after
// which the operator signs in again.
const DefaultTTL = 8 * time.Hour

// maxRevoked bounds the signed-out sessions remembered until they expire
// (about 6 MB). Only a signed-in operator can add one, so reaching it
// takes that many sign-ins within a TTL; past it the expired entries are
// dropped, then arbitrary ones (their cookies are already gone from the
// browsers that signed out).
const maxRevoked = 100_000

// Sessions issues and checks the console's session tokens. A token is
// self-contained and signed: a version byte, its expiry (Unix seconds), a
// random id and an HMAC-SHA256 of those under a key derived from the
// credentials that sign in. So every node configured with the same
// credentials accepts a session another issued, a restart keeps sessions,
// and changing a credential ends them all. Signing out is remembered
// (by id, until the token's expiry) on the node that was asked, in memory:
// the browser drops its cookie everywhere, but a copy of the token stays
// valid on the other nodes until it expires.
//
// Its methods are safe for concurrent use.
type Sessions struct {
	key []byte
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	revoked map[[idSize]byte]time.Time
}

const (
	tokenVersion = 1
	idSize       = 16
	// rawSize is version, expiry, id and MAC.
	rawSize = 1 + 8 + idSize + sha256.Size
)

// NewSessions returns Sessions whose key is derived from credentials (the
// values that sign in; their order matters) and whose tokens last ttl
// (DefaultTTL when 0). now is the clock, time.Now when nil.
func NewSessions(credentials []string, ttl time.Duration, now func() time.Time) *Sessions {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if now == nil {
		now = time.Now
	}
	mac := hmac.New(sha256.New, []byte("cablehub admin console session"))
	for _, c := range credentials {
		binary.Write(mac, binary.BigEndian, uint32(len(c)))
		mac.Write([]byte(c))
	}
	return &Sessions{key: mac.Sum(nil), ttl: ttl, now: now, revoked: map[[idSize]byte]time.Time{}}
}

// TTL is how long a new session lasts.
func (s *Sessions) TTL() time.Duration { return s.ttl }

// Issue makes a new session token and says when it expires.
func (s *Sessions) Issue() (token string, expires time.Time) {
	expires = s.now().Add(s.ttl).Truncate(time.Second)
	raw := make([]byte, rawSize)
	raw[0] = tokenVersion
	binary.BigEndian.PutUint64(raw[1:9], uint64(expires.Unix()))
	rand.Read(raw[9 : 9+idSize])
	copy(raw[9+idSize:], s.sign(raw[:9+idSize]))
	return base64.RawURLEncoding.EncodeToString(raw), expires
}

func (s *Sessions) sign(payload []byte) []byte {
	mac := hmac.New(sha256.New, s.key)
	mac.Write(payload)
	return mac.Sum(nil)
}

// parse checks token's form and signature, and returns its id and expiry.
func (s *Sessions) parse(token string) (id [idSize]byte, expires time.Time, ok bool) {
	if base64.RawURLEncoding.DecodedLen(len(token)) != rawSize {
		return id, expires, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) != rawSize || raw[0] != tokenVersion {
		return id, expires, false
	}
	if !hmac.Equal(raw[9+idSize:], s.sign(raw[:9+idSize])) {
		return id, expires, false
	}
	copy(id[:], raw[9:9+idSize])
	return id, time.Unix(int64(binary.BigEndian.Uint64(raw[1:9])), 0), true
}

// Expiry returns when token expires, and false when it is not a valid
// session (malformed, forged, expired or signed out).
func (s *Sessions) Expiry(token string) (time.Time, bool) {
	id, expires, ok := s.parse(token)
	if !ok || !s.now().Before(expires) {
		return time.Time{}, false
	}
	s.mu.Lock()
	_, revoked := s.revoked[id]
	s.mu.Unlock()
	return expires, !revoked
}

// Valid reports whether token is a session this key signed that has not
// expired or been signed out (api.SessionVerifier).
func (s *Sessions) Valid(token string) bool {
	_, ok := s.Expiry(token)
	return ok
}

// Revoke signs token out: it is no longer Valid here. A token that is not
// valid is ignored.
func (s *Sessions) Revoke(token string) {
	id, expires, ok := s.parse(token)
	now := s.now()
	if !ok || !now.Before(expires) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.revoked) >= maxRevoked {
		for k, exp := range s.revoked {
			if !now.Before(exp) {
				delete(s.revoked, k)
			}
		}
		for k := range s.revoked {
			if len(s.revoked) < maxRevoked {
				break
			}
			delete(s.revoked, k)
		}
	}
	s.revoked[id] = expires
}
