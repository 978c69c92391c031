package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/cablehub/cablehub/gateway"
	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
	"github.com/cablehub/cablehub/server/api"
	"github.com/cablehub/cablehub/server/broker"
	"github.com/cablehub/cablehub/server/hub"
	"github.com/cablehub/cablehub/server/metrics"
	"github.com/cablehub/cablehub/server/node"
	"github.com/cablehub/cablehub/server/streams"
)

// newAPI serves the gateway over a real gRPC server (bufconn) backed by a
// memory broker the test can fill. The gateway's own token check is gwAuth,
// or the interceptor's when nil.
func newAPI(t *testing.T, secret string, gwAuth gateway.Authorizer) (*httptest.Server, *broker.Memory) {
	t.Helper()
	b := broker.NewMemory(broker.MemoryOptions{})
	n := node.New(hub.New(1), b, streams.NewController(streams.Config{}), metrics.New(), slog.New(slog.NewTextHandler(io.Discard, nil)), node.Options{})
	auth := api.NewAuth(secret)
	srv := grpc.NewServer(grpc.UnaryInterceptor(auth.UnaryInterceptor()))
	cablehubv1.RegisterCableServiceServer(srv, api.NewService(n))
	lis := bufconn.Listen(1 << 16)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///test",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if gwAuth == nil {
		gwAuth = auth
	}
	gw, err := gateway.New(context.Background(), gateway.Options{Prefix: "/api", Conn: conn, Auth: gwAuth, MaxBodySize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(gw)
	t.Cleanup(ts.Close)
	return ts, b
}

func get(t *testing.T, url string, headers ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestPresenceRecordsSortedCompact(t *testing.T) {
	ts, b := newAPI(t, "", nil)
	ctx := context.Background()
	b.PresenceJoin(ctx, "chat/1", "s1", "user-2", json.RawMessage(`{"name": "Bob", "age": 30}`))
	b.PresenceJoin(ctx, "chat/1", "s2", "user-1", json.RawMessage(`{"name":"Alice"}`))
	b.PresenceJoin(ctx, "chat/1", "s3", "user-1", json.RawMessage(`{"name":"Alice (tab 2)"}`))
	b.PresenceJoin(ctx, "chat/1", "s4", "guest", nil)
	b.PresenceJoin(ctx, "chat/1", "s5", "anon", json.RawMessage(`"just a string"`))

	code, body := get(t, ts.URL+"/api/presence/chat%2F1/users")
	want := `{"type":"info","total":4,"records":[` +
		`{"id":"anon","info":"just a string"},` +
		`{"id":"guest"},` +
		`{"id":"user-1","info":{"name":"Alice (tab 2)"}},` +
		`{"id":"user-2","info":{"age":30,"name":"Bob"}}]}`
	if code != 200 || body != want {
		t.Errorf("got %d %s\nwant %s", code, body, want)
	}
}

func TestPresenceNeedsTokenThroughInterceptorToo(t *testing.T) {
	ts, _ := newAPI(t, "tok", nil)
	if code, _ := get(t, ts.URL+"/api/presence/a/users"); code != 401 {
		t.Errorf("no token: %d", code)
	}
	if code, body := get(t, ts.URL+"/api/presence/a/users", "Authorization: Bearer tok"); code != 200 {
		t.Errorf("token: %d %s", code, body)
	}
}

// openAuth lets every request past the gateway's own check, so only the
// gRPC interceptor stands between REST and the service.
type openAuth struct{}

func (openAuth) Allowed(string) bool        { return true }
func (openAuth) AllowedSession(string) bool { return true }

func TestInterceptorGuardsRESTEvenIfGatewayCheckIsSkipped(t *testing.T) {
	ts, _ := newAPI(t, "tok", openAuth{})
	resp, err := http.Post(ts.URL+"/api/publish", "application/json", strings.NewReader(`{"stream":"a","data":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != "Bearer" {
		t.Errorf("status %d: the interceptor must answer UNAUTHENTICATED -> 401", resp.StatusCode)
	}
	if code, _ := get(t, ts.URL+"/api/presence/a/users"); code != 401 {
		t.Errorf("presence: %d", code)
	}
}

// stubService accepts every publish, and panics on stream "boom".
type stubService struct {
	cablehubv1.UnimplementedCableServiceServer
}

func (stubService) Publish(_ context.Context, req *cablehubv1.PublishRequest) (*cablehubv1.PublishResponse, error) {
	if req.GetPublications()[0].GetStream() == "boom" {
		panic("boom")
	}
	return &cablehubv1.PublishResponse{}, nil
}

// newStubAPI serves the gateway over stubService in process, with the
// server's recovery interceptor, a 1 KiB body limit and bodyTimeout.
func newStubAPI(t *testing.T, bodyTimeout time.Duration) *httptest.Server {
	t.Helper()
	rec := api.NewRecovery(slog.New(slog.NewTextHandler(io.Discard, nil)))
	conn := api.NewInProcess(&cablehubv1.CableService_ServiceDesc, stubService{}, rec.UnaryInterceptor())
	gw, err := gateway.New(context.Background(), gateway.Options{
		Prefix: "/api", Conn: conn, Auth: api.NewAuth(""), MaxBodySize: 1024, BodyTimeout: bodyTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(gw)
	t.Cleanup(ts.Close)
	return ts
}

// The gateway reads bodies within its limits (Options.MaxBodySize,
// Options.BodyTimeout); how each refusal is answered is httpbody's to
// test.
func TestBodyLimitsApply(t *testing.T) {
	ts := newStubAPI(t, 200*time.Millisecond)
	resp, err := http.Post(ts.URL+"/api/publish", "application/json", strings.NewReader(strings.Repeat("x", 1025)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge ||
		string(body) != `{"code":8,"message":"request body is larger than 1024 bytes (--api_max_body_size)"}` {
		t.Fatalf("oversized body: %d %s", resp.StatusCode, body)
	}

	c, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	io.WriteString(c, "POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"str")
	resp, err = http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout ||
		string(body) != `{"code":4,"message":"request body not received within 200ms"}` {
		t.Fatalf("withheld body: %d %s", resp.StatusCode, body)
	}
}

// A panic in the service reaches a REST client as 500 with the contract's
// JSON error body, and the server goes on serving.
func TestServicePanicAnswers500(t *testing.T) {
	ts := newStubAPI(t, 0)
	resp, err := http.Post(ts.URL+"/api/publish", "application/json", strings.NewReader(`{"stream":"boom","data":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || string(body) != `{"code":13,"message":"internal error"}` {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	resp, err = http.Post(ts.URL+"/api/publish", "application/json", strings.NewReader(`{"stream":"a","data":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("after the panic: %d", resp.StatusCode)
	}
}
