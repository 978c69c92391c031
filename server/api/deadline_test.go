package api

import (
	"context"
	"errors"
	"github.com/cablehub/cablehub/server/node"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
	"github.com/cablehub/cablehub/server/broker"
	"github.com/cablehub/cablehub/server/protocol"
)

// stuckNode is a Node whose dependency never answers: every call blocks
// until its context is done, as a Redis that accepts connections but is
// stopped does, or fails at once with err when err is set.
type stuckNode struct {
	err error
}

func (n stuckNode) wait(ctx context.Context) error {
	if n.err != nil {
		return n.err
	}
	<-ctx.Done()
	return ctx.Err()
}

func (n stuckNode) Broadcast(ctx context.Context, _ []protocol.Publication) error {
	return n.wait(ctx)
}

func (n stuckNode) Presence(ctx context.Context, _ string) (*broker.PresenceInfo, error) {
	return nil, n.wait(ctx)
}

func (n stuckNode) Disconnect(ctx context.Context, _ string, _ bool) error {
	return n.wait(ctx)
}

func (n stuckNode) History(ctx context.Context, _, _ string, _ uint64) (*node.StreamHistory, error) {
	return nil, n.wait(ctx)
}

// calls are the service's three calls that reach the broker or pub/sub.
var calls = map[string]func(context.Context, *Service) error{
	"GetHistory": func(ctx context.Context, s *Service) error {
		_, err := s.GetHistory(ctx, &cablehubv1.GetHistoryRequest{Stream: "s"})
		return err
	},
	"GetPresenceStats": func(ctx context.Context, s *Service) error {
		_, err := s.GetPresenceStats(ctx, &cablehubv1.GetPresenceStatsRequest{Stream: "s"})
		return err
	},
	"Publish": func(ctx context.Context, s *Service) error {
		_, err := s.Publish(ctx, &cablehubv1.PublishRequest{Publications: []*cablehubv1.Publication{{Stream: "s", Data: "1"}}})
		return err
	},
	"GetPresence": func(ctx context.Context, s *Service) error {
		_, err := s.GetPresence(ctx, &cablehubv1.GetPresenceRequest{Stream: "s"})
		return err
	},
	"Disconnect": func(ctx context.Context, s *Service) error {
		_, err := s.Disconnect(ctx, &cablehubv1.DisconnectRequest{Identifier: "u"})
		return err
	},
}

// returned runs call and fails the test when it has not returned after a
// generous while: a hung call is the failure these tests look for.
func returned(t *testing.T, call func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the call did not return")
		return nil
	}
}

// TestDeadlineAnswersUnavailable asserts a call whose dependency never
// answers returns UNAVAILABLE (REST 501) at the service's deadline, with a
// message saying the dependency did not answer in time and naming the
// flag.
func TestDeadlineAnswersUnavailable(t *testing.T) {
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			svc := NewService(stuckNode{}, WithTimeout(20*time.Millisecond))
			err := returned(t, func() error { return call(context.Background(), svc) })
			st := status.Convert(err)
			if st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "did not answer within 20ms (--publish_timeout)") {
				t.Fatalf("got %v", err)
			}
		})
	}
}

// TestCallerDeadlineWins asserts a caller whose own context ends first (a
// gRPC client's deadline, a REST client gone) gets its own status, not
// the service's UNAVAILABLE.
func TestCallerDeadlineWins(t *testing.T) {
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			svc := NewService(stuckNode{}, WithTimeout(time.Hour))
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			err := returned(t, func() error { return call(ctx, svc) })
			if status.Code(err) != codes.Canceled {
				t.Fatalf("got %v", err)
			}
		})
	}
}

// TestDependencyFailure asserts a dependency that fails at once (Redis
// refusing connections, NATS not connected) gives UNAVAILABLE with its
// error, and an unsupported presence UNIMPLEMENTED.
func TestDependencyFailure(t *testing.T) {
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			svc := NewService(stuckNode{err: errors.New("connection refused")})
			err := returned(t, func() error { return call(context.Background(), svc) })
			st := status.Convert(err)
			if st.Code() != codes.Unavailable || !strings.HasSuffix(st.Message(), ": connection refused") {
				t.Fatalf("got %v", err)
			}
		})
	}
	svc := NewService(stuckNode{err: broker.ErrPresenceUnsupported})
	if _, err := svc.GetPresence(context.Background(), &cablehubv1.GetPresenceRequest{Stream: "s"}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("got %v", err)
	}
}
