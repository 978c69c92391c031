package api

import (
	"context"
	"encoding/json"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	cablehubv1 "cablehub/gen/cablehub/v1"
	"cablehub/server/broker"
	"cablehub/server/protocol"
)

// Node is what the service needs from the node.
type Node interface {
	Broadcast(ctx context.Context, pubs []protocol.Publication) error
	Presence(ctx context.Context, stream string) (*broker.PresenceInfo, error)
	Disconnect(ctx context.Context, identifiers string, reconnect bool) error
}

// Service implements cablehubv1.CableServiceServer on top of a Node.
type Service struct {
	cablehubv1.UnimplementedCableServiceServer
	node Node
}

// NewService returns the API service backed by n.
func NewService(n Node) *Service {
	return &Service{node: n}
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
	if err := s.node.Broadcast(ctx, pubs); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, status.FromContextError(ctxErr).Err()
		}
		return nil, status.Errorf(codes.Unavailable, "broadcast not accepted: %v", err)
	}
	return &cablehubv1.PublishResponse{}, nil
}

// GetPresence returns the records of a stream sorted by id. UNIMPLEMENTED
// means the broker keeps no presence.
func (s *Service) GetPresence(ctx context.Context, req *cablehubv1.GetPresenceRequest) (*cablehubv1.GetPresenceResponse, error) {
	if req.GetStream() == "" {
		return nil, status.Error(codes.InvalidArgument, "stream is required")
	}
	info, err := s.node.Presence(ctx, req.GetStream())
	switch {
	case errors.Is(err, broker.ErrPresenceUnsupported):
		return nil, status.Error(codes.Unimplemented, "presence is not supported by the configured broker")
	case err != nil:
		return nil, status.Errorf(codes.Unavailable, "presence unavailable: %v", err)
	}
	resp := &cablehubv1.GetPresenceResponse{Type: "info", Total: proto.Int32(int32(info.Total))}
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
		resp.Records = append(resp.Records, rec)
	}
	return resp, nil
}

// Disconnect closes the sessions with the given connection identifiers. An
// empty identifier matches nothing and is not an error, as in AnyCable.
func (s *Service) Disconnect(ctx context.Context, req *cablehubv1.DisconnectRequest) (*cablehubv1.DisconnectResponse, error) {
	if err := s.node.Disconnect(ctx, req.GetIdentifier(), req.GetReconnect()); err != nil {
		return nil, status.Errorf(codes.Unavailable, "disconnect not accepted: %v", err)
	}
	return &cablehubv1.DisconnectResponse{}, nil
}
