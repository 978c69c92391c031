package api

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
	"github.com/cablehub/cablehub/server/cluster"
)

// Cluster answers for every node of the cluster: *cluster.Cluster.
type Cluster interface {
	Nodes(ctx context.Context) ([]cluster.NodeInfo, []string, error)
	Streams(ctx context.Context, prefix string, limit int) ([]cluster.StreamCount, bool, []string, error)
}

// WithCluster lets the service answer ListStreams and GetInfo through c;
// without it they are UNIMPLEMENTED.
func WithCluster(c Cluster) Option {
	return func(s *Service) { s.cluster = c }
}

// Bounds of ListStreams' limit.
const (
	defaultStreamsLimit = 100
	maxStreamsLimit     = 1000
)

// ListStreams lists the cluster's streams with subscribers; see the proto.
func (s *Service) ListStreams(ctx context.Context, req *cablehubv1.ListStreamsRequest) (*cablehubv1.ListStreamsResponse, error) {
	limit := int(req.GetLimit())
	if s.cluster == nil {
		return nil, status.Error(codes.Unimplemented, "the cluster's streams are not served here")
	}
	switch {
	case limit > maxStreamsLimit:
		return nil, status.Errorf(codes.InvalidArgument, "limit must be at most %d", maxStreamsLimit)
	case limit == 0:
		limit = defaultStreamsLimit
	}
	var (
		streams   []cluster.StreamCount
		truncated bool
		missing   []string
	)
	err := s.bounded(ctx, "streams unavailable", func(ctx context.Context) (err error) {
		streams, truncated, missing, err = s.cluster.Streams(ctx, req.GetPrefix(), limit)
		return err
	})
	if err != nil {
		return nil, err
	}
	resp := &cablehubv1.ListStreamsResponse{UnavailableNodes: missing, Truncated: truncated}
	for _, st := range streams {
		resp.Streams = append(resp.Streams, &cablehubv1.StreamInfo{Name: st.Name, Subscribers: uint32(st.Subscribers)})
	}
	return resp, nil
}

// GetInfo describes the cluster's live nodes; see the proto.
func (s *Service) GetInfo(ctx context.Context, _ *cablehubv1.GetInfoRequest) (*cablehubv1.GetInfoResponse, error) {
	if s.cluster == nil {
		return nil, status.Error(codes.Unimplemented, "the cluster's nodes are not served here")
	}
	var (
		nodes   []cluster.NodeInfo
		missing []string
	)
	err := s.bounded(ctx, "cluster info unavailable", func(ctx context.Context) (err error) {
		nodes, missing, err = s.cluster.Nodes(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	resp := &cablehubv1.GetInfoResponse{UnavailableNodes: missing}
	for _, n := range nodes {
		resp.Nodes = append(resp.Nodes, &cablehubv1.NodeInfo{
			Id: n.ID, Version: n.Version, UptimeSeconds: uint32(n.UptimeSeconds),
			Connections: uint32(n.Connections), Subscriptions: uint32(n.Subscriptions), Streams: uint32(n.Streams),
			PublishedTotal: n.PublishedTotal, DeliveriesTotal: n.DeliveriesTotal, RpcCallsTotal: n.RPCCallsTotal,
		})
	}
	return resp, nil
}
