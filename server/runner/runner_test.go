package runner

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
	"github.com/cablehub/cablehub/server/config"
	"github.com/cablehub/cablehub/server/hub"
	"github.com/cablehub/cablehub/server/protocol"
)

// recorder stands in for a client session subscribed through the hub.
type recorder struct {
	mu     sync.Mutex
	frames []string
}

func (r *recorder) SID() string          { return "rec" }
func (r *recorder) Encoder() hub.Encoder { return protocol.ActionCable{} }
func (r *recorder) Deliver(_ string, _ *protocol.Publication, f []byte) {
	if f == nil {
		return // excluded: nothing is sent to this subscriber
	}
	r.mu.Lock()
	r.frames = append(r.frames, string(f))
	r.mu.Unlock()
}
func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.frames...)
}

func start(t *testing.T, args ...string) *Runner {
	t.Helper()
	return startWith(t, nil, args...)
}

// startWith starts a runner whose limits adjust changes (when not nil)
// before it starts.
func startWith(t *testing.T, adjust func(*limits), args ...string) *Runner {
	t.Helper()
	cfg, err := config.Parse(append([]string{"--host", "127.0.0.1", "--port", "0"}, args...), func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if adjust != nil {
		adjust(&r.limits)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return r
}

func post(t *testing.T, url, body string) int {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitFrames(t *testing.T, rec *recorder, n int) []string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(rec.got()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("got %d frames, want %d: %v", len(rec.got()), n, rec.got())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return rec.got()
}

func TestRESTBatchDeliveredInOrderOrNotAtAll(t *testing.T) {
	// No broker: frames without history stamps keep the test to delivery.
	r := start(t, "--public", "--broker", "none")
	rec := &recorder{}
	r.Node().Hub().Subscribe("chat", "id", rec)
	url := "http://" + r.APIAddr + "/api/publish"

	if code := post(t, url, `[{"stream":"chat","data":"1"},{"stream":"chat","data":"2"},{"data":"3"}]`); code != 422 {
		t.Fatalf("bad batch: %d", code)
	}
	if code := post(t, url, `[{"stream":"chat","data":"1"},{"stream":"chat","data":"x"}]`+"\n"); code != 201 {
		t.Fatalf("good batch: %d", code)
	}
	// Only the good batch arrives: had the bad one leaked, "1","2" would
	// come first.
	got := waitFrames(t, rec, 2)
	want := []string{`{"identifier":"id","message":1}`, `{"identifier":"id","message":"x"}`}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("frames %v, want %v", got, want)
	}

	if code := post(t, url, `{"stream":"chat","data":"y","meta":{"exclude_socket":"rec"}}`); code != 201 {
		t.Fatal(code)
	}
	if code := post(t, url, `{"stream":"chat","data":"z","meta":{"broadcast_type":"note"}}`); code != 201 {
		t.Fatal(code)
	}
	got = waitFrames(t, rec, 3)
	if got[2] != `{"type":"note","identifier":"id","message":"z"}` {
		t.Errorf("third frame %s (the excluded one must be skipped)", got[2])
	}
}

func TestGRPCPublishDelivers(t *testing.T) {
	r := start(t, "--public", "--broker", "none")
	rec := &recorder{}
	r.Node().Hub().Subscribe("chat", "id", rec)
	conn, err := grpc.NewClient(r.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := cablehubv1.NewCableServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = c.Publish(ctx, &cablehubv1.PublishRequest{Publications: []*cablehubv1.Publication{
		{Stream: "chat", Data: `{"n":1}`}, {Stream: "other", Data: "x"}, {Stream: "chat", Data: `{"n":2}`},
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := waitFrames(t, rec, 2)
	if got[0] != `{"identifier":"id","message":{"n":1}}` || got[1] != `{"identifier":"id","message":{"n":2}}` {
		t.Errorf("frames %v", got)
	}
}

// startBench starts a public-mode server for a benchmark.
func startBench(b *testing.B, args ...string) *Runner {
	b.Helper()
	cfg, err := config.Parse(append([]string{"--host", "127.0.0.1", "--port", "0", "--public"}, args...), func(string) string { return "" }, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	r, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Shutdown(context.Background()) })
	return r
}

func freeBenchPort(b *testing.B) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
