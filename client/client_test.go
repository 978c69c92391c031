package client

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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
		{Options{Secret: "s3cr3t", APISecret: "key"}, "key"},
		{Options{}, ""},
	}
	for _, c := range cases {
		if got := Token(c.opts); got != c.want {
			t.Errorf("Token(%+v) = %q, want %q", c.opts, got, c.want)
		}
	}
}

func TestWrapKeepsCodeAndMessage(t *testing.T) {
	err := wrap(status.Error(codes.InvalidArgument, "publications[0].stream: required"))
	var e *Error
	if !errors.As(err, &e) || e.Code != codes.InvalidArgument || e.Message != "publications[0].stream: required" {
		t.Fatalf("wrap = %#v", err)
	}
	if wrap(nil) != nil {
		t.Fatal("wrap(nil) != nil")
	}
	if got := wrap(context.DeadlineExceeded); !errors.As(got, &e) || e.Code != codes.DeadlineExceeded {
		t.Fatalf("wrap(deadline) = %#v", got)
	}
}
