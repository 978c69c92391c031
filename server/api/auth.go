// Package api implements CableService, Cablehub's gRPC server API, and the
// bearer-token check that guards it. The REST API reaches the same service
// through an in-process gRPC client connection (InProcess) that runs the same
// interceptors, so this check guards both.
package api

import (
	"context"
	"crypto/subtle"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Auth checks API bearer tokens, and the admin console's sessions when
// WithSessions gave it a verifier. The zero secret lets every request
// through: that is only configured in public mode or on a dedicated port.
type Auth struct {
	token    []byte
	sessions SessionVerifier
}

// SessionVerifier tells whether a console session token is one this
// server issued, unexpired and not signed out: *admin.Sessions.
type SessionVerifier interface {
	Valid(token string) bool
}

// SessionMetadata is the metadata key carrying a console session token.
// The REST gateway sets it from the console's cookie; a gRPC client may
// send it too, and a valid one is worth a bearer token, as the session
// was signed in with one (or with --admin_password).
const SessionMetadata = "cablehub-console-session"

// WithSessions makes a accept console sessions v verifies as well as the
// bearer token, and returns a.
func (a *Auth) WithSessions(v SessionVerifier) *Auth {
	a.sessions = v
	return a
}

// AllowedSession reports whether a console session token grants access.
func (a *Auth) AllowedSession(token string) bool {
	if a.token == nil {
		return true
	}
	return token != "" && a.sessions != nil && a.sessions.Valid(token)
}

// NewAuth returns an Auth requiring "Bearer <secret>", or nothing when
// secret is empty.
func NewAuth(secret string) *Auth {
	if secret == "" {
		return &Auth{}
	}
	return &Auth{token: []byte(secret)}
}

// Required reports whether requests must carry a token.
func (a *Auth) Required() bool { return a.token != nil }

// Allowed reports whether an Authorization header value grants access. The
// scheme must be exactly "Bearer " (case-sensitive, one space, as in
// AnyCable); the token is compared in constant time.
func (a *Auth) Allowed(authorization string) bool {
	if a.token == nil {
		return true
	}
	token, ok := strings.CutPrefix(authorization, "Bearer ")
	if !ok {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(token), a.token) == 1
}

// TokenMessage is the message of an UNAUTHENTICATED answer, over gRPC and
// REST alike.
const TokenMessage = "missing or invalid API token: send Authorization: Bearer <token>, where the token is " +
	"--api_secret or, when that is unset, derived from --secret (hex HMAC-SHA256 of \"api-cable\" keyed with it)"

// openMethod reports whether a gRPC method is served without a token:
// health checks and reflection reveal nothing about streams.
func openMethod(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.health.v1.") ||
		strings.HasPrefix(fullMethod, "/grpc.reflection.")
}

func (a *Auth) check(ctx context.Context, fullMethod string) error {
	if a.token == nil || openMethod(fullMethod) {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if a.Allowed(v) {
			return nil
		}
	}
	for _, v := range md.Get(SessionMetadata) {
		if a.AllowedSession(v) {
			return nil
		}
	}
	return status.Error(codes.Unauthenticated, TokenMessage)
}

// UnaryInterceptor rejects unauthenticated unary calls with UNAUTHENTICATED.
func (a *Auth) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := a.check(ctx, info.FullMethod); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor rejects unauthenticated streaming calls with
// UNAUTHENTICATED.
func (a *Auth) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := a.check(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}
