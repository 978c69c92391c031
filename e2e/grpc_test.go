package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
)

func dialGRPC(t *testing.T, addr string) cablehubv1.CableServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return cablehubv1.NewCableServiceClient(conn)
}

func withToken(token string) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	return ctx, cancel
}

func onePub(stream, data string) *cablehubv1.PublishRequest {
	return &cablehubv1.PublishRequest{Publications: []*cablehubv1.Publication{{Stream: stream, Data: data}}}
}

func wantCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	if got := status.Code(err); got != code {
		t.Fatalf("code %v, want %v (err %v)", got, code, err)
	}
}

func TestGRPCSharedPort(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--secret", "s3cr3t")
	if s.GRPC != s.Main {
		t.Fatalf("gRPC at %q, want the main port %q\n%s", s.GRPC, s.Main, s.Logs())
	}
	c := dialGRPC(t, s.Main)

	ctx, cancel := withToken("")
	defer cancel()
	_, err := c.Publish(ctx, onePub("chat", "x"))
	wantCode(t, err, codes.Unauthenticated)
	_, err = c.GetPresence(ctx, &cablehubv1.GetPresenceRequest{Stream: "chat"})
	wantCode(t, err, codes.Unauthenticated)

	wrong, cancel2 := withToken("wrong")
	defer cancel2()
	_, err = c.Publish(wrong, onePub("chat", "x"))
	wantCode(t, err, codes.Unauthenticated)

	ok, cancel3 := withToken(s3cr3tToken)
	defer cancel3()
	if _, err := c.Publish(ok, onePub("chat", "x")); err != nil {
		t.Fatalf("publish with token: %v", err)
	}
	resp, err := c.GetPresence(ok, &cablehubv1.GetPresenceRequest{Stream: "chat/1"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetType() != "info" || resp.Total == nil || resp.GetTotal() != 0 || len(resp.GetRecords()) != 0 {
		t.Errorf("presence: %v", resp)
	}

	_, err = c.Publish(ok, &cablehubv1.PublishRequest{})
	wantCode(t, err, codes.InvalidArgument)
	_, err = c.Publish(ok, &cablehubv1.PublishRequest{Publications: []*cablehubv1.Publication{{Stream: "a"}, {Data: "x"}}})
	wantCode(t, err, codes.InvalidArgument)
	if !strings.Contains(status.Convert(err).Message(), "publications[1]") {
		t.Errorf("message %q does not name the index", status.Convert(err).Message())
	}
	_, err = c.GetPresence(ok, &cablehubv1.GetPresenceRequest{})
	wantCode(t, err, codes.InvalidArgument)

	// REST still works on the same port.
	if r := do(t, "POST", "http://"+s.Main+"/api/publish", okPub, "Authorization: Bearer "+s3cr3tToken); r.Status != 201 {
		t.Errorf("REST next to gRPC: %d", r.Status)
	}
}

func TestGRPCHealthIsOpen(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--secret", "s3cr3t")
	conn, err := grpc.NewClient(s.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := withToken("")
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", resp, err)
	}
}

func TestGRPCDedicatedPort(t *testing.T) {
	port := freePort(t)
	s := startServer(t, nil, "--secret", "s3cr3t", "--grpc_port", fmt.Sprint(port))
	want := fmt.Sprintf("127.0.0.1:%d", port)
	if s.GRPC != want {
		t.Fatalf("gRPC at %q, want %q\n%s", s.GRPC, want, s.Logs())
	}
	c := dialGRPC(t, s.GRPC)
	ctx, cancel := withToken("")
	defer cancel()
	_, err := c.Publish(ctx, onePub("chat", "x"))
	wantCode(t, err, codes.Unauthenticated)
	ok, cancel2 := withToken(s3cr3tToken)
	defer cancel2()
	if _, err := c.Publish(ok, onePub("chat", "x")); err != nil {
		t.Fatal(err)
	}
}

func TestGRPCDedicatedPortWithoutSecret(t *testing.T) {
	port := freePort(t)
	s := startServer(t, nil, "--grpc_port", fmt.Sprint(port))
	if !strings.Contains(s.Logs(), "(no authorization, dedicated listener)") {
		t.Errorf("log:\n%s", s.Logs())
	}
	c := dialGRPC(t, s.GRPC)
	ctx, cancel := withToken("")
	defer cancel()
	if _, err := c.Publish(ctx, onePub("chat", "x")); err != nil {
		t.Fatalf("dedicated port without secret needs no token: %v", err)
	}
	// The REST API stays closed: nothing protects it on the shared port.
	if r := do(t, "POST", "http://"+s.Main+"/api/publish", okPub); r.Status != 404 {
		t.Errorf("REST without protection: %d", r.Status)
	}
}

func TestGRPCFailClosedOnSharedPort(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--noauth")
	c := dialGRPC(t, s.Main)
	ctx, cancel := withToken("")
	defer cancel()
	_, err := c.Publish(ctx, onePub("chat", "x"))
	if err == nil {
		t.Fatal("gRPC served unauthenticated on the shared port with no secret")
	}
}

func TestGRPCPresenceUnsupported(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public", "--broker", "none")
	c := dialGRPC(t, s.GRPC)
	ctx, cancel := withToken("")
	defer cancel()
	_, err := c.GetPresence(ctx, &cablehubv1.GetPresenceRequest{Stream: "a"})
	wantCode(t, err, codes.Unimplemented)
}

func TestGRPCMessageSizeLimit(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public", "--api_max_body_size", "1024")
	c := dialGRPC(t, s.GRPC)
	ctx, cancel := withToken("")
	defer cancel()
	_, err := c.Publish(ctx, onePub("chat", strings.Repeat("x", 2048)))
	wantCode(t, err, codes.ResourceExhausted)
}
