package identity

import (
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func token(t *testing.T, method jwt.SigningMethod, key string, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerify(t *testing.T) {
	j := NewJWT(JWTOptions{Secret: "k", Param: "jid"})
	future := time.Now().Add(time.Hour).Unix()
	cases := []struct {
		name  string
		token string
		ids   string
		err   error
	}{
		{"valid", token(t, jwt.SigningMethodHS256, "k", jwt.MapClaims{"ext": `{"user_id":42}`, "exp": future}), `{"user_id":42}`, nil},
		{"no exp", token(t, jwt.SigningMethodHS256, "k", jwt.MapClaims{"ext": "u"}), "u", nil},
		{"HS512", token(t, jwt.SigningMethodHS512, "k", jwt.MapClaims{"ext": "u"}), "u", nil},
		{"wrong key", token(t, jwt.SigningMethodHS256, "other", jwt.MapClaims{"ext": "u"}), "", ErrUnauthorized},
		{"expired", token(t, jwt.SigningMethodHS256, "k", jwt.MapClaims{"ext": "u", "exp": time.Now().Add(-time.Minute).Unix()}), "", ErrExpired},
		{"not yet valid", token(t, jwt.SigningMethodHS256, "k", jwt.MapClaims{"ext": "u", "nbf": future}), "", ErrUnauthorized},
		{"no ext", token(t, jwt.SigningMethodHS256, "k", jwt.MapClaims{"sub": "42"}), "", ErrNoIdentifiers},
		{"malformed", "not.a.jwt", "", ErrUnauthorized},
		{"alg none", "", "", ErrUnauthorized},
	}
	for _, c := range cases {
		if c.name == "alg none" {
			s, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"ext": "u"}).SignedString(jwt.UnsafeAllowNoneSignatureType)
			c.token = s
		}
		id, err := j.Verify(c.token)
		if id.Identifiers != c.ids || !errors.Is(err, c.err) {
			t.Errorf("%s: %q %v, want %q %v", c.name, id.Identifiers, err, c.ids, c.err)
		}
	}
}

// A token's exp is the identity's expiry: a session restored without the
// token keeps it. A token without exp never expires.
func TestVerifyExpiry(t *testing.T) {
	j := NewJWT(JWTOptions{Secret: "k", Param: "jid"})
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	id, err := j.Verify(token(t, jwt.SigningMethodHS256, "k", jwt.MapClaims{"ext": "u", "exp": exp.Unix()}))
	if err != nil || !id.Expires.Equal(exp) {
		t.Errorf("with exp: %v %v, want expiry %v", id.Expires, err, exp)
	}
	id, err = j.Verify(token(t, jwt.SigningMethodHS256, "k", jwt.MapClaims{"ext": "u"}))
	if err != nil || !id.Expires.IsZero() {
		t.Errorf("without exp: %v %v, want no expiry", id.Expires, err)
	}
}

func TestTokenCarriers(t *testing.T) {
	j := NewJWT(JWTOptions{Secret: "k", Param: "token"})
	r := httptest.NewRequest("GET", "/cable?token=q", nil)
	if j.Token(r) != "q" {
		t.Error("query")
	}
	r = httptest.NewRequest("GET", "/cable", nil)
	r.Header.Set("X-Token", "h")
	if j.Token(r) != "h" {
		t.Error("header")
	}
	r = httptest.NewRequest("GET", "/cable", nil)
	r.Header.Set("Sec-WebSocket-Protocol", "actioncable-v1-json, anycable-token.s")
	if j.Token(r) != "s" {
		t.Error("subprotocol")
	}
}

func TestAuthenticatorChain(t *testing.T) {
	r := httptest.NewRequest("GET", "/cable", nil)
	if _, err := NewAuthenticator(NewJWT(JWTOptions{Secret: "k", Param: "jid", Enforce: true}), true).Authenticate(r); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("enforced without token: %v", err)
	}
	if id, err := NewAuthenticator(NewJWT(JWTOptions{Secret: "k", Param: "jid"}), true).Authenticate(r); err != nil || id != (Identity{}) {
		t.Errorf("not enforced, noauth: %v %v", id, err)
	}
	if _, err := NewAuthenticator(nil, false).Authenticate(r); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("nothing configured: %v", err)
	}
}
