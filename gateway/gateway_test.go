package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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

func (openAuth) Allowed(string) bool { return true }

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
