package api

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
)

// panicky panics on Publish to stream "boom"; panickyHealth in Watch
// after one message; everything else answers normally.
type panicky struct {
	cablehubv1.UnimplementedCableServiceServer
}

type panickyHealth struct {
	healthpb.UnimplementedHealthServer
}

func (panicky) Publish(_ context.Context, req *cablehubv1.PublishRequest) (*cablehubv1.PublishResponse, error) {
	if req.GetPublications()[0].GetStream() == "boom" {
		panic("publish exploded")
	}
	return &cablehubv1.PublishResponse{}, nil
}

func (panickyHealth) Watch(_ *healthpb.HealthCheckRequest, ss healthpb.Health_WatchServer) error {
	if err := ss.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}); err != nil {
		return err
	}
	// A runtime error rather than a panic call.
	return ss.Send(&healthpb.HealthCheckResponse{Status: noResponse().Status})
}

func noResponse() *healthpb.HealthCheckResponse { return nil }

// syncBuffer is a log destination the server's goroutines may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func pubTo(stream string) *cablehubv1.PublishRequest {
	return &cablehubv1.PublishRequest{Publications: []*cablehubv1.Publication{{Stream: stream, Data: "x"}}}
}

// wantInternal checks what a client sees of a recovered panic, and that
// the log has the panic value and a stack through the panicking method.
func wantInternal(t *testing.T, err error, logs *syncBuffer, panicText, frame string) {
	t.Helper()
	if st, _ := status.FromError(err); st.Code() != codes.Internal || st.Message() != "internal error" {
		t.Fatalf("got %v, want INTERNAL \"internal error\"", err)
	}
	out := logs.String()
	if !strings.Contains(out, panicText) || !strings.Contains(out, frame) || !strings.Contains(out, "level=ERROR") {
		t.Fatalf("log lacks the panic %q or a stack through %s:\n%s", panicText, frame, out)
	}
}

func TestRecoveryOverGRPC(t *testing.T) {
	logs := &syncBuffer{}
	rec := NewRecovery(slog.New(slog.NewTextHandler(logs, nil)))
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(rec.UnaryInterceptor()),
		grpc.ChainStreamInterceptor(rec.StreamInterceptor()),
	)
	cablehubv1.RegisterCableServiceServer(srv, panicky{})
	healthpb.RegisterHealthServer(srv, panickyHealth{})
	lis := bufconn.Listen(1 << 16)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///test",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	client := cablehubv1.NewCableServiceClient(conn)
	_, err = client.Publish(ctx, pubTo("boom"))
	wantInternal(t, err, logs, "publish exploded", "recover_test.go")
	if _, err := client.Publish(ctx, pubTo("fine")); err != nil {
		t.Fatalf("after a recovered panic the server must go on serving: %v", err)
	}

	watch, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Fatalf("first message: %v", err)
	}
	_, err = watch.Recv()
	wantInternal(t, err, logs, "nil pointer dereference", "recover_test.go")
}

func TestRecoveryInProcess(t *testing.T) {
	logs := &syncBuffer{}
	rec := NewRecovery(slog.New(slog.NewTextHandler(logs, nil)))
	auth := NewAuth("")
	conn := NewInProcess(&cablehubv1.CableService_ServiceDesc, panicky{}, rec.UnaryInterceptor(), auth.UnaryInterceptor())
	client := cablehubv1.NewCableServiceClient(conn)
	_, err := client.Publish(context.Background(), pubTo("boom"))
	wantInternal(t, err, logs, "publish exploded", "recover_test.go")
	if _, err := client.Publish(context.Background(), pubTo("fine")); err != nil {
		t.Fatal(err)
	}
}
