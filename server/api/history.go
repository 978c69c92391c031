package api

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
	"github.com/cablehub/cablehub/server/broker"
	"github.com/cablehub/cablehub/server/node"
)

// maxHistoryAnswer bounds the publications of one GetHistory answer, so it
// stays within the 4 MiB gRPC clients accept by default.
const maxHistoryAnswer = 3 << 20

// GetHistory reads what the stream's history retains; see the proto.
func (s *Service) GetHistory(ctx context.Context, req *cablehubv1.GetHistoryRequest) (*cablehubv1.GetHistoryResponse, error) {
	if req.GetStream() == "" {
		return nil, status.Error(codes.InvalidArgument, "stream is required")
	}
	if req.Since != nil && req.GetEpoch() == "" {
		return nil, status.Error(codes.InvalidArgument, "epoch is required with since")
	}
	var h *node.StreamHistory
	err := s.bounded(ctx, "history unavailable", func(ctx context.Context) (err error) {
		h, err = s.position(ctx, req.GetStream(), req.GetEpoch(), req.GetSince())
		return err
	})
	if err != nil {
		return nil, err
	}
	resp := &cablehubv1.GetHistoryResponse{Epoch: h.Epoch, Offset: h.Last}
	pubs := h.Pubs
	if req.GetEpoch() != "" {
		// The broker may return the entry at the position itself.
		for len(pubs) > 0 && pubs[0].Offset <= req.GetSince() {
			pubs = pubs[1:]
		}
	}
	limit := int(req.GetLimit())
	if limit > 0 && len(pubs) > limit {
		if req.Since == nil && req.GetEpoch() == "" {
			pubs = pubs[len(pubs)-limit:] // the latest
		} else {
			pubs = pubs[:limit]
		}
	}
	size := 0
	for i := range pubs {
		size += len(pubs[i].Data) + 16
		if size > maxHistoryAnswer && i > 0 {
			resp.Truncated = true
			break
		}
		resp.Publications = append(resp.Publications, &cablehubv1.HistoryPublication{Offset: pubs[i].Offset, Data: pubs[i].Data})
	}
	return resp, nil
}

// History is what the service reads streams' history with: *node.Node.
type History interface {
	History(ctx context.Context, stream, epoch string, offset uint64) (*node.StreamHistory, error)
}

// position reads the stream after (epoch, since), or all it retains for
// epoch "". A position the broker cannot serve is FAILED_PRECONDITION
// with the stream's current position as a StreamPosition detail; but a
// position whose next publication is the first one retained, or that is
// the stream's tail, is served (the broker asks for the entry at the
// position itself, which may have expired while nothing after it did).
func (s *Service) position(ctx context.Context, stream, epoch string, since uint64) (*node.StreamHistory, error) {
	h, err := s.node.History(ctx, stream, epoch, since)
	if errors.Is(err, broker.ErrHistoryUnsupported) {
		return nil, status.Error(codes.Unimplemented, "history is not kept by the configured broker")
	}
	if !errors.Is(err, broker.ErrHistoryUnavailable) {
		return h, err
	}
	all, err := s.node.History(ctx, stream, "", 0)
	if err != nil {
		return nil, err
	}
	switch {
	case all.Epoch == epoch && since == all.Last:
		return &node.StreamHistory{Epoch: all.Epoch, Last: all.Last}, nil
	case all.Epoch == epoch && since < all.Last && len(all.Pubs) > 0 &&
		all.Pubs[0].Epoch == epoch && all.Pubs[0].Offset == since+1:
		return all, nil
	}
	var why string
	switch {
	case all.Epoch != epoch:
		why = fmt.Sprintf("the stream is in epoch %q now", all.Epoch)
	case since > all.Last:
		why = fmt.Sprintf("the stream's latest offset is %d", all.Last)
	default:
		why = "its publications after it are no longer retained"
	}
	return nil, positionError(fmt.Sprintf("since %d of epoch %q cannot be served: %s; start over from epoch %q offset %d",
		since, epoch, why, all.Epoch, all.Last), all.Epoch, all.Last)
}

// positionError is FAILED_PRECONDITION with the stream's position as a
// detail.
func positionError(msg, epoch string, offset uint64) error {
	st, err := status.New(codes.FailedPrecondition, msg).WithDetails(&cablehubv1.StreamPosition{Epoch: epoch, Offset: offset})
	if err != nil {
		return status.Error(codes.FailedPrecondition, msg)
	}
	return st.Err()
}

// GetPresenceStats counts the stream's presence ids and sessions.
func (s *Service) GetPresenceStats(ctx context.Context, req *cablehubv1.GetPresenceStatsRequest) (*cablehubv1.GetPresenceStatsResponse, error) {
	if req.GetStream() == "" {
		return nil, status.Error(codes.InvalidArgument, "stream is required")
	}
	info, err := s.presence(ctx, req.GetStream())
	if err != nil {
		return nil, err
	}
	return &cablehubv1.GetPresenceStatsResponse{Users: uint32(info.Total), Sessions: uint32(info.Sessions)}, nil
}
