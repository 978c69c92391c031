package client

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
)

func TestToken(t *testing.T) {
	// The value the server derives from --secret s3cr3t (AnyCable's
	// api-cable derivation), as the end-to-end suite also pins it.
	const derived = "e3b70326c38efad4042c57f65cc19e4ce2925e5aea5ea0c98dca248b837c17de"
	cases := []struct {
		opts Options
		want string
	}{
		{Options{Secret: "s3cr3t"}, derived},
		{Options{APISecret: "key"}, "key"},
		{Options{}, ""},
	}
	for _, c := range cases {
		if got := Token(c.opts); got != c.want {
			t.Errorf("Token(%+v) = %q, want %q", c.opts, got, c.want)
		}
	}
}

func TestParseAddress(t *testing.T) {
	good := []struct {
		addr, target string
		tls          bool
	}{
		{"127.0.0.1:8080", "127.0.0.1:8080", false},
		{"localhost:8080", "localhost:8080", false},
		{"[::1]:8080", "[::1]:8080", false},
		{"http://127.0.0.1:8080", "127.0.0.1:8080", false},
		{"http://example.com:8080/", "example.com:8080", false},
		{"HTTP://example.com", "example.com:80", false},
		{"https://example.com:8443", "example.com:8443", true},
		{"https://example.com", "example.com:443", true},
		{"https://[::1]:8443", "[::1]:8443", true},
	}
	for _, g := range good {
		target, useTLS, err := parseAddress(g.addr)
		if err != nil || target != g.target || useTLS != g.tls {
			t.Errorf("parseAddress(%q) = %q, %v, %v; want %q, %v", g.addr, target, useTLS, err, g.target, g.tls)
		}
	}
	for _, bad := range []string{
		"", "localhost", ":8080", "host:", "host:http", "host:99999", "a/b:80",
		"grpc://host:8080", "ws://host:8080", "unix:///tmp/sock", "dns:///host:8080",
		"http://", "http://host:8080/api", "https://host:8080?x=1", "https://user@host:8080", "http://host:port",
	} {
		if _, _, err := parseAddress(bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("parseAddress(%q): %v, want ErrInvalidArgument", bad, err)
		}
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	cases := []struct {
		addr string
		opts Options
	}{
		{"127.0.0.1:1", Options{Secret: "s", APISecret: "a"}},
		{"127.0.0.1:1", Options{Retries: -1}},
		{"127.0.0.1:1", Options{Timeout: -1}},
		{"http://127.0.0.1:1", Options{TLS: &tls.Config{}}},
		{"ftp://127.0.0.1:1", Options{}},
	}
	for _, c := range cases {
		cl, err := New(c.addr, c.opts)
		var e *Error
		if cl != nil || !errors.As(err, &e) || e.Code != codes.InvalidArgument || !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("New(%q, %+v) = %v, %v; want a *Error matching ErrInvalidArgument", c.addr, c.opts, cl, err)
		}
	}
	_, err := New("127.0.0.1:1", Options{Secret: "s", APISecret: "a"})
	if err == nil || err.Error() != "cablehub: InvalidArgument: give Secret or APISecret, not both" {
		t.Errorf("both secrets: %v", err)
	}
	for _, addr := range []string{"127.0.0.1:1", "http://127.0.0.1:1", "https://127.0.0.1:1"} {
		c, err := New(addr, Options{})
		if err != nil {
			t.Errorf("New(%q): %v", addr, err)
			continue
		}
		c.Close()
	}
}

func TestWrapKeepsCodeMessageAndPosition(t *testing.T) {
	err := wrap(status.Error(codes.InvalidArgument, "publications[0].stream: required"))
	var e *Error
	if !errors.As(err, &e) || e.Code != codes.InvalidArgument || e.Message != "publications[0].stream: required" || e.Position != nil {
		t.Fatalf("wrap = %#v", err)
	}
	if wrap(nil) != nil {
		t.Fatal("wrap(nil) != nil")
	}
	if got := wrap(context.DeadlineExceeded); !errors.As(got, &e) || e.Code != codes.DeadlineExceeded ||
		!errors.Is(got, ErrTimeout) || !errors.Is(got, context.DeadlineExceeded) {
		t.Fatalf("wrap(deadline) = %#v", got)
	}

	st, _ := status.New(codes.FailedPrecondition, "epoch changed").WithDetails(&cablehubv1.StreamPosition{Epoch: "e2", Offset: 9})
	err = wrap(st.Err())
	if !errors.As(err, &e) || !errors.Is(err, ErrPosition) || e.Position == nil || *e.Position != (Position{Epoch: "e2", Offset: 9}) {
		t.Fatalf("wrap(position) = %#v", err)
	}
	if want := `cablehub: FailedPrecondition: epoch changed`; err.Error() != want {
		t.Fatalf("Error() = %q, want %q", err.Error(), want)
	}
}

func TestErrorsIsMatchesCodes(t *testing.T) {
	sentinels := []error{ErrAuth, ErrUnavailable, ErrInvalidArgument, ErrTimeout, ErrPosition, ErrClosed}
	cases := []struct {
		err  error
		want error // the one sentinel it matches, or nil
	}{
		{wrap(status.Error(codes.Unauthenticated, "")), ErrAuth},
		{wrap(status.Error(codes.PermissionDenied, "")), ErrAuth},
		{wrap(status.Error(codes.Unavailable, "")), ErrUnavailable},
		{wrap(status.Error(codes.InvalidArgument, "")), ErrInvalidArgument},
		{wrap(status.Error(codes.DeadlineExceeded, "")), ErrTimeout},
		{wrap(status.Error(codes.FailedPrecondition, "")), ErrPosition},
		{closedError(), ErrClosed},
		{wrap(status.Error(codes.Internal, "")), nil},
		{wrap(status.Error(codes.ResourceExhausted, "")), nil},
	}
	for _, c := range cases {
		for _, s := range sentinels {
			if got := errors.Is(c.err, s); got != (s == c.want) {
				t.Errorf("errors.Is(%v, %v) = %v", c.err, s, got)
			}
		}
	}
}
