// Package identity decides who a WebSocket connection is before it is
// welcomed: a JWT (AnyCable's "jid" tokens), or nobody in particular when
// connections need no authentication.
package identity

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Errors map onto what the client is told: ErrUnauthorized and ErrExpired
// get a disconnect message ("unauthorized" / "token_expired") and close
// 1000; ErrNoIdentifiers is an auth error (close 1011, no message), as in
// AnyCable.
var (
	ErrUnauthorized = errors.New("unauthorized")
	// ErrNotIdentified means no identifier applies (no token, JWT not
	// enforced, authentication required): the application back end may
	// still identify the connection; without one it is ErrUnauthorized,
	// which it wraps.
	ErrNotIdentified = fmt.Errorf("%w: no identifier applies", ErrUnauthorized)
	ErrExpired       = errors.New("token expired")
	ErrNoIdentifiers = errors.New("JWT token doesn't contain identifiers (ext claim)")
)

// TokenSubprotocolPrefix marks a WebSocket subprotocol that carries a JWT;
// it is read for the token and never selected.
const TokenSubprotocolPrefix = "anycable-token."

// JWT verifies AnyCable identification tokens: HMAC-signed (HS256/384/512)
// JWTs whose "ext" claim is the connection identifiers string.
type JWT struct {
	secret  []byte
	param   string
	enforce bool
	parser  *jwt.Parser
}

// JWTOptions configure a JWT verifier; names follow AnyCable's flags.
type JWTOptions struct {
	// Secret keys the HMAC signatures (--jwt_secret); empty turns JWT
	// authentication off.
	Secret string
	// Param is the query parameter carrying the token, and X-<Param> the
	// header (--jwt_param).
	Param string
	// Enforce refuses connections without a token (--enforce_jwt).
	Enforce bool
}

// DefaultJWTOptions are AnyCable's defaults: no secret, the token in "jid".
func DefaultJWTOptions() JWTOptions {
	return JWTOptions{Param: "jid"}
}

// NewJWT returns a verifier keyed with o.Secret, reading the token from the
// query parameter o.Param, the header X-<param>, or an anycable-token.<jwt>
// subprotocol. With o.Enforce, connections without a token are refused.
func NewJWT(o JWTOptions) *JWT {
	return &JWT{
		secret:  []byte(o.Secret),
		param:   o.Param,
		enforce: o.Enforce,
		parser:  jwt.NewParser(jwt.WithValidMethods([]string{"HS256", "HS384", "HS512"})),
	}
}

// Token returns the token a request carries, "" for none.
func (j *JWT) Token(r *http.Request) string {
	if t := r.URL.Query().Get(j.param); t != "" {
		return t
	}
	if t := r.Header.Get("X-" + j.param); t != "" {
		return t
	}
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			if t, ok := strings.CutPrefix(strings.TrimSpace(p), TokenSubprotocolPrefix); ok && t != "" {
				return t
			}
		}
	}
	return ""
}

// Identity is who a connection is, and for how long the credential that
// says so holds.
type Identity struct {
	// Identifiers are the connection identifiers ("" for an anonymous
	// connection).
	Identifiers string
	// Expires is the JWT's exp: from then on the token identifies nobody,
	// so a session restored without it must not outlive it either. Zero
	// when the credential has no expiry (no exp claim, --noauth).
	Expires time.Time
}

// Verify checks a token and returns the identity it carries.
func (j *JWT) Verify(token string) (Identity, error) {
	claims := jwt.MapClaims{}
	_, err := j.parser.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return j.secret, nil })
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Identity{}, ErrExpired
	case err != nil:
		return Identity{}, ErrUnauthorized
	}
	ext, ok := claims["ext"].(string)
	if !ok {
		return Identity{}, ErrNoIdentifiers
	}
	id := Identity{Identifiers: ext}
	// The parser has validated exp when present, so it is a date here.
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		id.Expires = exp.Time
	}
	return id, nil
}

// Authenticator runs the identification chain: a JWT when one is
// configured and present, then open access with noauth, else refusal.
type Authenticator struct {
	jwt    *JWT
	noauth bool
}

// NewAuthenticator returns the chain; jwt may be nil (no JWT secret).
func NewAuthenticator(j *JWT, noauth bool) *Authenticator {
	return &Authenticator{jwt: j, noauth: noauth}
}

// Authenticate returns the connection's identity (no identifiers for an
// anonymous connection) or why it is refused; ErrNotIdentified leaves the
// decision to the application back end, if there is one.
func (a *Authenticator) Authenticate(r *http.Request) (Identity, error) {
	if a.jwt != nil {
		if token := a.jwt.Token(r); token != "" {
			return a.jwt.Verify(token)
		}
		if a.jwt.enforce {
			return Identity{}, ErrUnauthorized
		}
	}
	if a.noauth {
		return Identity{}, nil
	}
	return Identity{}, ErrNotIdentified
}
