package api

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// sessionSet accepts the tokens it holds.
type sessionSet map[string]bool

func (s sessionSet) Valid(token string) bool { return s[token] }

func TestAuthAcceptsConsoleSessions(t *testing.T) {
	withSessions := NewAuth("secret").WithSessions(sessionSet{"good": true})
	cases := []struct {
		name string
		auth *Auth
		md   metadata.MD
		ok   bool
	}{
		{"bearer", withSessions, metadata.Pairs("authorization", "Bearer secret"), true},
		{"valid session", withSessions, metadata.Pairs(SessionMetadata, "good"), true},
		{"unknown session", withSessions, metadata.Pairs(SessionMetadata, "bad"), false},
		{"nothing", withSessions, metadata.MD{}, false},
		{"session without a verifier", NewAuth("secret"), metadata.Pairs(SessionMetadata, "good"), false},
		{"open API", NewAuth("").WithSessions(sessionSet{}), metadata.MD{}, true},
	}
	for _, tc := range cases {
		ctx := metadata.NewIncomingContext(context.Background(), tc.md)
		err := tc.auth.check(ctx, "/cablehub.v1.CableService/GetInfo")
		if tc.ok != (err == nil) || err != nil && status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s: %v, want allowed %v", tc.name, err, tc.ok)
		}
		var token string
		if v := tc.md.Get(SessionMetadata); len(v) > 0 {
			token = v[0]
		}
		if tc.md.Get("authorization") == nil && tc.auth.AllowedSession(token) != tc.ok {
			t.Errorf("%s: AllowedSession(%q) = %v, want %v", tc.name, token, !tc.ok, tc.ok)
		}
	}
}
