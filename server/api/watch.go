package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
	"github.com/cablehub/cablehub/server/node"
	"github.com/cablehub/cablehub/server/protocol"
	"github.com/cablehub/cablehub/server/streams"
)

// Gate admits a watch's session into the node: *node.Gate. A watch reads
// a stream as a subscribed client does, so the node's ordering, gap and
// epoch rules and its history replay apply to it unchanged.
type Gate interface {
	Serve(conn node.Connection, r *http.Request, o node.SessionOptions)
}

// WithGate lets the service serve Watch through g; without it Watch is
// UNIMPLEMENTED.
func WithGate(g Gate) Option {
	return func(s *Service) { s.gate = g }
}

// WatchHeader is the response header a watch sends once it is live.
const WatchHeader = "cablehub-watch"

// watchIdentifier is the subscription identifier of a watch's session; the
// session's router gives it the watched stream, whatever it says.
const watchIdentifier = `{"channel":"$cablehub_watch"}`

// watchRouter routes a watch's subscription to its stream: the caller
// holds the API token, so every stream is open to it.
type watchRouter string

func (r watchRouter) Route(string, *protocol.Command) (*streams.Subscription, error) {
	return &streams.Subscription{Stream: string(r)}, nil
}

// Watch streams a stream's publications; see the proto.
func (s *Service) Watch(req *cablehubv1.WatchRequest, ss grpc.ServerStreamingServer[cablehubv1.StreamPublication]) error {
	stream := req.GetStream()
	switch {
	case stream == "":
		return status.Error(codes.InvalidArgument, "stream is required")
	case req.Since != nil && req.GetEpoch() == "":
		return status.Error(codes.InvalidArgument, "epoch is required with since")
	case s.gate == nil:
		return status.Error(codes.Unimplemented, "watching streams is not served here")
	}
	ctx := ss.Context()
	c, cmd, err := s.startWatch(ctx, req)
	if err != nil {
		return err
	}
	s.gate.Serve(c, watchRequest(), node.SessionOptions{
		Codec: watchCodec{}, Anonymous: true, Router: watchRouter(stream), PingInterval: -1,
		Commands: []*protocol.Command{cmd},
	})
	defer c.finish()
	c.mu.Lock()
	accepted := c.handle != nil
	c.mu.Unlock()
	if !accepted {
		return status.Error(codes.Unavailable, "the node is not taking connections (shutting down, or at --max-conn)")
	}
	if err := c.waitLive(ctx); err != nil {
		return err
	}
	if err := ss.SendHeader(metadata.Pairs(WatchHeader, "live")); err != nil {
		return err
	}
	return c.forward(ctx, stream, ss.Send)
}

// startWatch is the connection and subscribe command of a watch. With
// since, the publications after it are read first (a position the
// history cannot serve fails the call) and queued; the subscription then
// asks for history after the last of them, which the session replays
// (what was published in between) before the live ones.
func (s *Service) startWatch(ctx context.Context, req *cablehubv1.WatchRequest) (*watchConn, *protocol.Command, error) {
	cmd := &protocol.Command{Command: "subscribe", Identifier: watchIdentifier}
	if req.Since == nil {
		return newWatchConn("", 0), cmd, nil
	}
	var h *node.StreamHistory
	err := s.bounded(ctx, "history unavailable", func(ctx context.Context) (err error) {
		h, err = s.position(ctx, req.GetStream(), req.GetEpoch(), req.GetSince())
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	c := newWatchConn(req.GetEpoch(), req.GetSince())
	for i := range h.Pubs {
		// Through Send, as a live publication: the backlog counts it, and
		// the position moves.
		p := &h.Pubs[i]
		c.Send(watchCodec{}.AppendBroadcast(nil, "", p, nil), nil)
	}
	cmd.History = watchHistory(req.GetStream(), c.epoch, c.offset)
	return c, cmd, nil
}

// waitLive waits for the subscription's confirmation.
func (c *watchConn) waitLive(ctx context.Context) error {
	for {
		c.mu.Lock()
		live, err := c.live, c.err
		c.mu.Unlock()
		switch {
		case err != nil:
			return err
		case live:
			return nil
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-c.wake:
		}
	}
}

// forward sends the queued publications with send until the watch ends.
func (c *watchConn) forward(ctx context.Context, stream string, send func(*cablehubv1.StreamPublication) error) error {
	for {
		items, err := c.take()
		if err != nil {
			return err
		}
		for _, it := range items {
			if err := send(&cablehubv1.StreamPublication{Stream: stream, Epoch: it.epoch, Offset: it.offset, Data: it.data}); err != nil {
				return err
			}
		}
		if len(items) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-c.wake:
		}
	}
}

// watchHistory is the history request of a watch from (epoch, since).
func watchHistory(stream, epoch string, since uint64) json.RawMessage {
	type position struct {
		Epoch  string `json:"epoch"`
		Offset uint64 `json:"offset"`
	}
	b, _ := json.Marshal(map[string]map[string]position{"streams": {stream: {epoch, since}}})
	return b
}

// watchRequest stands for the request that opened a watch's session: the
// gate reads its query and headers, which a watch does not have.
func watchRequest() *http.Request {
	return &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/api/watch"}, Header: http.Header{}, RemoteAddr: "api"}
}
