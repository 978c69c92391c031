package api

import (
	"context"
	"io"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// WithStreams lets the connection call the server-streaming methods of
// desc (Watch), through interceptors as the gRPC server chains them.
func (c *InProcess) WithStreams(desc *grpc.ServiceDesc, interceptors ...grpc.StreamServerInterceptor) *InProcess {
	c.streams = map[string]grpc.StreamDesc{}
	for _, s := range desc.Streams {
		if s.ServerStreams && !s.ClientStreams {
			c.streams["/"+desc.ServiceName+"/"+s.StreamName] = s
		}
	}
	c.streamInterceptors = interceptors
	return c
}

// NewStream starts a server-streaming call: its handler runs on a
// goroutine of its own once the request is sent (SendMsg), and each
// message it sends waits until the caller receives it (RecvMsg), so a
// caller that reads slowly slows the handler, as flow control would.
// Ending ctx ends the handler's context.
func (c *InProcess) NewStream(ctx context.Context, _ *grpc.StreamDesc, method string, _ ...grpc.CallOption) (grpc.ClientStream, error) {
	desc, ok := c.streams[method]
	if !ok {
		return nil, status.Errorf(codes.Unimplemented, "unknown streaming method %s", method)
	}
	md, _ := metadata.FromOutgoingContext(ctx)
	sctx, cancel := context.WithCancel(metadata.NewIncomingContext(ctx, md))
	s := &inStream{ctx: sctx, cancel: cancel, clientCtx: ctx, msgs: make(chan proto.Message),
		header: make(chan struct{}), done: make(chan struct{}), req: make(chan proto.Message, 1)}
	go s.run(c, desc, method)
	return s, nil
}

// inStream is both ends of an in-process server-streaming call.
type inStream struct {
	ctx       context.Context // the handler's
	cancel    context.CancelFunc
	clientCtx context.Context
	req       chan proto.Message
	msgs      chan proto.Message

	mu         sync.Mutex
	hdr        metadata.MD
	headerSent bool
	header     chan struct{} // closed once headers are sent or the call ended
	done       chan struct{} // closed when the handler returned
	err        error
	trailer    metadata.MD
}

func (s *inStream) run(c *InProcess, desc grpc.StreamDesc, method string) {
	handler := desc.Handler
	info := &grpc.StreamServerInfo{FullMethod: method, IsServerStream: true}
	for i := len(c.streamInterceptors) - 1; i >= 0; i-- {
		ic, inner := c.streamInterceptors[i], handler
		handler = func(srv any, ss grpc.ServerStream) error { return ic(srv, ss, info, inner) }
	}
	err := handler(c.impl, serverSide{s})
	if err != nil {
		if _, ok := status.FromError(err); !ok {
			err = status.Error(codes.Unknown, err.Error())
		}
	}
	s.mu.Lock()
	s.err = err
	if !s.headerSent {
		s.headerSent = true
		close(s.header)
	}
	s.mu.Unlock()
	close(s.done)
	s.cancel()
}

// Client side (grpc.ClientStream).

func (s *inStream) Header() (metadata.MD, error) {
	select {
	case <-s.header:
	case <-s.clientCtx.Done():
		return nil, status.FromContextError(s.clientCtx.Err()).Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hdr, nil
}

func (s *inStream) Trailer() metadata.MD {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.trailer
}

func (s *inStream) CloseSend() error         { return nil }
func (s *inStream) Context() context.Context { return s.clientCtx }
func (s *inStream) SendMsg(m any) error {
	select {
	case s.req <- proto.Clone(m.(proto.Message)):
		return nil
	default:
		return status.Error(codes.Internal, "a server-streaming call takes one request")
	}
}

func (s *inStream) RecvMsg(m any) error {
	select {
	case msg := <-s.msgs:
		proto.Merge(m.(proto.Message), msg)
		return nil
	case <-s.done:
		// Messages sent before the handler returned were received: a
		// send waits for its receiver.
		if s.err != nil {
			return s.err
		}
		return io.EOF
	case <-s.clientCtx.Done():
		s.cancel()
		return status.FromContextError(s.clientCtx.Err()).Err()
	}
}

// serverSide is the handler's end (grpc.ServerStream).
type serverSide struct{ s *inStream }

func (ss serverSide) SetHeader(md metadata.MD) error {
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	ss.s.hdr = metadata.Join(ss.s.hdr, md)
	return nil
}

func (ss serverSide) SendHeader(md metadata.MD) error {
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	if ss.s.headerSent {
		return status.Error(codes.Internal, "headers were sent already")
	}
	ss.s.hdr = metadata.Join(ss.s.hdr, md)
	ss.s.headerSent = true
	close(ss.s.header)
	return nil
}

func (ss serverSide) SetTrailer(md metadata.MD) {
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	ss.s.trailer = metadata.Join(ss.s.trailer, md)
}

func (ss serverSide) Context() context.Context { return ss.s.ctx }

func (ss serverSide) SendMsg(m any) error {
	ss.s.mu.Lock()
	if !ss.s.headerSent {
		ss.s.headerSent = true
		close(ss.s.header)
	}
	ss.s.mu.Unlock()
	select {
	case ss.s.msgs <- proto.Clone(m.(proto.Message)):
		return nil
	case <-ss.s.ctx.Done():
		return status.FromContextError(ss.s.ctx.Err()).Err()
	}
}

func (ss serverSide) RecvMsg(m any) error {
	select {
	case req := <-ss.s.req:
		proto.Merge(m.(proto.Message), req)
		return nil
	case <-ss.s.ctx.Done():
		return status.FromContextError(ss.s.ctx.Err()).Err()
	}
}
