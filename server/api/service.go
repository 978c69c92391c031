package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
	"github.com/cablehub/cablehub/server/broker"
	"github.com/cablehub/cablehub/server/protocol"
)

// Node is what the service needs from the node.
type Node interface {
	Broadcast(ctx context.Context, pubs []protocol.Publication) error
	Presence(ctx context.Context, stream string) (*broker.PresenceInfo, error)
	Disconnect(ctx context.Context, identifiers string, reconnect bool) error
	History
}

// Service implements cablehubv1.CableServiceServer on top of a Node.
//
// Every call that reaches the broker or the pub/sub (Publish, GetPresence,
// Disconnect) runs under a deadline of its own, the service's timeout, so a
// dependency that hangs (a stopped Redis, a NATS that does not confirm)
// costs a caller at most that long: the call then fails with UNAVAILABLE
// (501 over REST) saying the dependency did not answer in time. The Node
// must honour the context it is given; the service does not abandon calls
// that ignore it, since their work would go on unseen.
type Service struct {
	cablehubv1.UnimplementedCableServiceServer
	node    Node
	timeout time.Duration
	gate    Gate
	cluster Cluster
}

// DefaultTimeout bounds a call's work against the broker and pub/sub when
// no WithTimeout option is given (config's --publish_timeout default).
const DefaultTimeout = 2 * time.Second

// Option configures a Service.
type Option func(*Service)

// WithTimeout sets the deadline of each call's broker and pub/sub work;
// d <= 0 keeps DefaultTimeout.
func WithTimeout(d time.Duration) Option {
	return func(s *Service) {
		if d > 0 {
			s.timeout = d
		}
	}
}

// NewService returns the API service backed by n.
func NewService(n Node, opts ...Option) *Service {
	s := &Service{node: n, timeout: DefaultTimeout}
	for _, o := range opts {
		o(s)
	}
	return s
}

// bounded runs f under the service's deadline and turns its error into
// the call's status: a gRPC status error as it is, the caller's own cancellation or deadline as such
// (CANCELED, DEADLINE_EXCEEDED), the service's deadline as UNAVAILABLE
// naming the timeout, any other failure as UNAVAILABLE with what (the
// attempted operation, e.g. "broadcast not accepted") and the error. The
// deadline counts as hit also when f's error came from a socket deadline
// set from it a moment before the context's own timer fired.
func (s *Service) bounded(ctx context.Context, what string, f func(context.Context) error) error {
	tctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := f(tctx)
	if _, ok := status.FromError(err); ok || err == nil {
		return err
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return status.FromContextError(ctxErr).Err()
	}
	if deadline, _ := tctx.Deadline(); tctx.Err() != nil || !time.Now().Before(deadline) {
		return status.Errorf(codes.Unavailable, "%s: the broker or pub/sub (Redis, NATS) did not answer within %s (--publish_timeout)", what, s.timeout)
	}
	return status.Error(codes.Unavailable, fmt.Sprintf("%s: %v", what, err))
}

// Publish validates the whole batch first, so an invalid publication rejects
// it with INVALID_ARGUMENT before anything is delivered.
func (s *Service) Publish(ctx context.Context, req *cablehubv1.PublishRequest) (*cablehubv1.PublishResponse, error) {
	items := req.GetPublications()
	if len(items) == 0 {
		return nil, status.Error(codes.InvalidArgument, "no publications: send a publication object or a non-empty array of them")
	}
	pubs := make([]protocol.Publication, len(items))
	for i, p := range items {
		if p.GetStream() == "" {
			if len(items) == 1 {
				return nil, status.Error(codes.InvalidArgument, "stream is required")
			}
			return nil, status.Errorf(codes.InvalidArgument, "publications[%d]: stream is required", i)
		}
		if err := checkIdempotencyKey(p.GetIdempotencyKey(), i, len(items)); err != nil {
			return nil, err
		}
		meta := p.GetMeta()
		pubs[i] = protocol.Publication{
			Stream:         p.GetStream(),
			Data:           p.GetData(),
			ExcludeSocket:  meta.GetExcludeSocket(),
			BroadcastType:  meta.GetBroadcastType(),
			Transient:      meta.GetTransient(),
			IdempotencyKey: p.GetIdempotencyKey(),
		}
	}
	err := s.bounded(ctx, "broadcast not accepted", func(ctx context.Context) error {
		return s.node.Broadcast(ctx, pubs)
	})
	if err != nil {
		return nil, err
	}
	return &cablehubv1.PublishResponse{}, nil
}

// GetPresence returns the records of a stream sorted by id, within
// MaxPresenceAnswer: when they do not all fit, the first ones that do and
// Truncated, Total staying the number of all. UNIMPLEMENTED means the
// broker keeps no presence.
func (s *Service) GetPresence(ctx context.Context, req *cablehubv1.GetPresenceRequest) (*cablehubv1.GetPresenceResponse, error) {
	if req.GetStream() == "" {
		return nil, status.Error(codes.InvalidArgument, "stream is required")
	}
	info, err := s.presence(ctx, req.GetStream())
	if err != nil {
		return nil, err
	}
	resp := &cablehubv1.GetPresenceResponse{Type: "info", Total: proto.Int32(int32(info.Total))}
	budget := newPresenceBudget(resp)
	for _, r := range info.Records {
		rec := &cablehubv1.PresenceRecord{Id: r.ID}
		if len(r.Info) > 0 {
			// encoding/json then structpb is several times faster than
			// protojson for this, which matters for large rooms.
			var decoded any
			if err := json.Unmarshal(r.Info, &decoded); err != nil {
				return nil, status.Errorf(codes.Internal, "presence info of %q: %v", r.ID, err)
			}
			if decoded != nil {
				v, err := structpb.NewValue(decoded)
				if err != nil {
					return nil, status.Errorf(codes.Internal, "presence info of %q: %v", r.ID, err)
				}
				rec.Info = v
			}
		}
		if !budget.add(rec) {
			resp.Truncated = true
			break
		}
		resp.Records = append(resp.Records, rec)
	}
	return resp, nil
}

// presence reads the stream's presence under the service's deadline;
// UNIMPLEMENTED when the broker keeps none.
func (s *Service) presence(ctx context.Context, stream string) (*broker.PresenceInfo, error) {
	var info *broker.PresenceInfo
	err := s.bounded(ctx, "presence unavailable", func(ctx context.Context) (err error) {
		info, err = s.node.Presence(ctx, stream)
		if errors.Is(err, broker.ErrPresenceUnsupported) {
			return status.Error(codes.Unimplemented, "presence is not supported by the configured broker")
		}
		return err
	})
	return info, err
}

// Disconnect closes the sessions with the given connection identifiers. An
// empty identifier matches nothing and is not an error, as in AnyCable.
func (s *Service) Disconnect(ctx context.Context, req *cablehubv1.DisconnectRequest) (*cablehubv1.DisconnectResponse, error) {
	err := s.bounded(ctx, "disconnect not accepted", func(ctx context.Context) error {
		return s.node.Disconnect(ctx, req.GetIdentifier(), req.GetReconnect())
	})
	if err != nil {
		return nil, err
	}
	return &cablehubv1.DisconnectResponse{}, nil
}
