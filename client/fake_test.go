package client

import (
	"context"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
)

// fakeServer is an in-process CableService whose answers a test scripts:
// enough to check what the client sends and how it handles answers,
// without a Cablehub server.
type fakeServer struct {
	cablehubv1.UnimplementedCableServiceServer
	addr string

	mu sync.Mutex
	// calls counts the calls made, by method name.
	calls map[string]int
	// auth holds the authorization metadata of each call, in order.
	auth []string
	// publishes are the Publish requests received, in order.
	publishes []*cablehubv1.PublishRequest
	// publish answers Publish call n (0 the first); nil answers OK.
	publish func(ctx context.Context, n int) error
	// watches are the Watch requests received, in order.
	watches []*cablehubv1.WatchRequest
	// watch serves Watch call n; nil answers UNIMPLEMENTED.
	watch func(n int, req *cablehubv1.WatchRequest, st grpc.ServerStreamingServer[cablehubv1.StreamPublication]) error
}

// startFake serves f on a loopback port until the test ends.
func startFake(t *testing.T, f *fakeServer) *fakeServer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = lis.Addr().String()
	f.calls = map[string]int{}
	s := grpc.NewServer()
	cablehubv1.RegisterCableServiceServer(s, f)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return f
}

// newClient is a client of f closed when the test ends.
func (f *fakeServer) newClient(t *testing.T, opts Options) *Client {
	t.Helper()
	c, err := New(f.addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// record notes a call of method and returns its number for that method.
func (f *fakeServer) record(ctx context.Context, method string) int {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auth = append(f.auth, md.Get("authorization")...)
	if len(md.Get("authorization")) == 0 {
		f.auth = append(f.auth, "")
	}
	n := f.calls[method]
	f.calls[method]++
	return n
}

func (f *fakeServer) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

func (f *fakeServer) Publish(ctx context.Context, req *cablehubv1.PublishRequest) (*cablehubv1.PublishResponse, error) {
	n := f.record(ctx, "Publish")
	f.mu.Lock()
	f.publishes = append(f.publishes, req)
	answer := f.publish
	f.mu.Unlock()
	if answer != nil {
		if err := answer(ctx, n); err != nil {
			return nil, err
		}
	}
	return &cablehubv1.PublishResponse{}, nil
}

func (f *fakeServer) GetInfo(ctx context.Context, _ *cablehubv1.GetInfoRequest) (*cablehubv1.GetInfoResponse, error) {
	f.record(ctx, "GetInfo")
	return &cablehubv1.GetInfoResponse{Nodes: []*cablehubv1.NodeInfo{{Id: "n1", Version: "v1", UptimeSeconds: 61, Connections: 3, Subscriptions: 4, Streams: 2,
		PublishedTotal: 5_000_000_000, DeliveriesTotal: 1 << 40, RpcCallsTotal: 7}}}, nil
}

func (f *fakeServer) Watch(req *cablehubv1.WatchRequest, st grpc.ServerStreamingServer[cablehubv1.StreamPublication]) error {
	n := f.record(st.Context(), "Watch")
	f.mu.Lock()
	f.watches = append(f.watches, req)
	serve := f.watch
	f.mu.Unlock()
	if serve == nil {
		return f.UnimplementedCableServiceServer.Watch(req, st)
	}
	return serve(n, req, st)
}

// received returns copies of what f has recorded so far: the authorization
// of each call, the Publish and the Watch requests.
func (f *fakeServer) received() (auth []string, publishes []*cablehubv1.PublishRequest, watches []*cablehubv1.WatchRequest) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.auth...), append([]*cablehubv1.PublishRequest(nil), f.publishes...),
		append([]*cablehubv1.WatchRequest(nil), f.watches...)
}
