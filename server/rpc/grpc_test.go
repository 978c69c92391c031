package rpc

import (
	"bytes"
	"context"
	"encoding/hex"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	anycablepb "github.com/cablehub/cablehub/gen/anycable"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// backend is a real gRPC RPC server; each hook, when set, answers its
// method, otherwise the method answers SUCCESS. It records the metadata of
// every call and the peak number of calls in flight.
type backend struct {
	anycablepb.UnimplementedRPCServer
	connect    func(context.Context, *anycablepb.ConnectionRequest) (*anycablepb.ConnectionResponse, error)
	command    func(context.Context, *anycablepb.CommandMessage) (*anycablepb.CommandResponse, error)
	disconnect func(context.Context, *anycablepb.DisconnectRequest) (*anycablepb.DisconnectResponse, error)

	calls    atomic.Int64
	inFlight atomic.Int64
	peak     atomic.Int64

	mu  sync.Mutex
	mds []metadata.MD
}

func (b *backend) enter(ctx context.Context) func() {
	b.calls.Add(1)
	md, _ := metadata.FromIncomingContext(ctx)
	b.mu.Lock()
	b.mds = append(b.mds, md)
	b.mu.Unlock()
	n := b.inFlight.Add(1)
	for {
		p := b.peak.Load()
		if n <= p || b.peak.CompareAndSwap(p, n) {
			break
		}
	}
	return func() { b.inFlight.Add(-1) }
}

func (b *backend) metadata() []metadata.MD {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]metadata.MD(nil), b.mds...)
}

func (b *backend) Connect(ctx context.Context, req *anycablepb.ConnectionRequest) (*anycablepb.ConnectionResponse, error) {
	defer b.enter(ctx)()
	if b.connect != nil {
		return b.connect(ctx, req)
	}
	return &anycablepb.ConnectionResponse{Status: anycablepb.Status_SUCCESS}, nil
}

func (b *backend) Command(ctx context.Context, req *anycablepb.CommandMessage) (*anycablepb.CommandResponse, error) {
	defer b.enter(ctx)()
	if b.command != nil {
		return b.command(ctx, req)
	}
	return &anycablepb.CommandResponse{Status: anycablepb.Status_SUCCESS}, nil
}

func (b *backend) Disconnect(ctx context.Context, req *anycablepb.DisconnectRequest) (*anycablepb.DisconnectResponse, error) {
	defer b.enter(ctx)()
	if b.disconnect != nil {
		return b.disconnect(ctx, req)
	}
	return &anycablepb.DisconnectResponse{Status: anycablepb.Status_SUCCESS}, nil
}

// startBackend serves b on 127.0.0.1:0 until the test ends and returns the
// address. The server permits the client's 10 s keepalive pings.
func startBackend(t *testing.T, b *backend, opts ...grpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts = append(opts, grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
		MinTime: 5 * time.Second, PermitWithoutStream: true,
	}))
	srv := grpc.NewServer(opts...)
	anycablepb.RegisterRPCServer(srv, b)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return lis.Addr().String()
}

// newTestGRPC builds a client closed at the end of the test.
func newTestGRPC(t *testing.T, opts GRPCOptions, log *slog.Logger) *GRPC {
	t.Helper()
	g, err := NewGRPC(opts, log)
	if err != nil {
		t.Fatalf("NewGRPC(%+v): %v", opts, err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return g
}

// logBuffer is a concurrency-safe slog sink for asserting log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), sub)
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestGRPCMetadataReachServer(t *testing.T) {
	b := &backend{}
	g := newTestGRPC(t, GRPCOptions{Host: startBackend(t, b)}, nil)
	ctx := context.Background()
	if _, err := g.Connect(ctx, "sid-connect", &anycablepb.ConnectionRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Command(ctx, "sid-command", &anycablepb.CommandMessage{Command: "subscribe"}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Disconnect(ctx, "sid-disconnect", &anycablepb.DisconnectRequest{}); err != nil {
		t.Fatal(err)
	}
	mds := b.metadata()
	want := []string{"sid-connect", "sid-command", "sid-disconnect"}
	if len(mds) != len(want) {
		t.Fatalf("server saw %d calls, want %d", len(mds), len(want))
	}
	for i, md := range mds {
		if got := md.Get("sid"); len(got) != 1 || got[0] != want[i] {
			t.Errorf("call %d: sid = %q, want [%q]", i, got, want[i])
		}
		if got := md.Get("protov"); len(got) != 1 || got[0] != "v1" {
			t.Errorf("call %d: protov = %q, want [v1]", i, got)
		}
	}
}

// TestGRPCRequestsReachServerUnchanged checks the request side: what the
// caller builds is what the back end decodes.
func TestGRPCRequestsReachServerUnchanged(t *testing.T) {
	env := &anycablepb.Env{
		Url:     "http://h/cable?user=a&x=<y>",
		Headers: map[string]string{"cookie": "a=1", "REMOTE_ADDR": "127.0.0.1"},
		Cstate:  map[string]string{"k": "v"},
		Istate:  map[string]string{"{\"channel\":\"Chat\"}": "{\"joined\":\"yes\"}"},
	}
	conn := &anycablepb.ConnectionRequest{Env: env}
	cmd := &anycablepb.CommandMessage{Command: "message", Identifier: " {\"channel\": \"Chat\"} ",
		ConnectionIdentifiers: "{\"user\":\"a\"}", Data: "{\"action\":\"x\"}", Env: env}
	disc := &anycablepb.DisconnectRequest{Identifiers: "{\"user\":\"a\"}", Subscriptions: []string{"a", "b"}, Env: env}

	got := make(chan proto.Message, 3)
	b := &backend{
		connect: func(_ context.Context, r *anycablepb.ConnectionRequest) (*anycablepb.ConnectionResponse, error) {
			got <- r
			return &anycablepb.ConnectionResponse{}, nil
		},
		command: func(_ context.Context, r *anycablepb.CommandMessage) (*anycablepb.CommandResponse, error) {
			got <- r
			return &anycablepb.CommandResponse{}, nil
		},
		disconnect: func(_ context.Context, r *anycablepb.DisconnectRequest) (*anycablepb.DisconnectResponse, error) {
			got <- r
			return &anycablepb.DisconnectResponse{}, nil
		},
	}
	g := newTestGRPC(t, GRPCOptions{Host: startBackend(t, b)}, nil)
	ctx := context.Background()
	if _, err := g.Connect(ctx, "s", conn); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Command(ctx, "s", cmd); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Disconnect(ctx, "s", disc); err != nil {
		t.Fatal(err)
	}
	for _, want := range []proto.Message{conn, cmd, disc} {
		if r := <-got; !proto.Equal(r, want) {
			t.Errorf("server got %v, want %v", r, want)
		}
	}
}

// TestGRPCResponsesPassThrough: every response field comes back exactly as
// the back end sent it, ERROR and FAILURE included (answers, not errors).
func TestGRPCResponsesPassThrough(t *testing.T) {
	envResp := &anycablepb.EnvResponse{
		Cstate: map[string]string{"visits": "1", "lang": ""},
		Istate: map[string]string{"k1": "", "k3": "v3"},
	}
	connects := map[string]*anycablepb.ConnectionResponse{
		"success full": {Status: anycablepb.Status_SUCCESS, Identifiers: "{\"user\":\"gina\"}",
			Transmissions: []string{"{\"type\":\"welcome\"}", "plain text not json"}, Env: envResp},
		"success empty env present": {Status: anycablepb.Status_SUCCESS, Env: &anycablepb.EnvResponse{}},
		"failure":                   {Status: anycablepb.Status_FAILURE, ErrorMsg: "Auth failed", Transmissions: []string{"{\"type\":\"disconnect\"}"}},
		"error with transmissions":  {Status: anycablepb.Status_ERROR, ErrorMsg: "boom", Transmissions: []string{"x"}},
		"error empty":               {},
	}
	commands := map[string]*anycablepb.CommandResponse{
		"every field": {Status: anycablepb.Status_SUCCESS, Disconnect: true, StopStreams: true,
			Streams: []string{"s1", "s2"}, Transmissions: []string{"a", ""}, ErrorMsg: "e", Env: envResp,
			StoppedStreams: []string{"s0"},
			Presence:       &anycablepb.PresenceResponse{Type: "join", Id: "u1", Info: "{\"name\":\"Ann\"}", Ttl: 60}},
		"failure with streams": {Status: anycablepb.Status_FAILURE, Streams: []string{"s"}},
		"error":                {Status: anycablepb.Status_ERROR, ErrorMsg: "x"},
		"empty presence":       {Status: anycablepb.Status_SUCCESS, Presence: &anycablepb.PresenceResponse{}},
	}
	disconnects := map[string]*anycablepb.DisconnectResponse{
		"success": {Status: anycablepb.Status_SUCCESS},
		"failure": {Status: anycablepb.Status_FAILURE, ErrorMsg: "f"},
		"error":   {Status: anycablepb.Status_ERROR, ErrorMsg: "controller failed"},
	}

	var cur atomic.Value // name of the case being served
	b := &backend{
		connect: func(context.Context, *anycablepb.ConnectionRequest) (*anycablepb.ConnectionResponse, error) {
			return connects[cur.Load().(string)], nil
		},
		command: func(context.Context, *anycablepb.CommandMessage) (*anycablepb.CommandResponse, error) {
			return commands[cur.Load().(string)], nil
		},
		disconnect: func(context.Context, *anycablepb.DisconnectRequest) (*anycablepb.DisconnectResponse, error) {
			return disconnects[cur.Load().(string)], nil
		},
	}
	g := newTestGRPC(t, GRPCOptions{Host: startBackend(t, b)}, nil)
	ctx := context.Background()
	for name, want := range connects {
		cur.Store(name)
		got, err := g.Connect(ctx, "s", &anycablepb.ConnectionRequest{})
		if err != nil || !proto.Equal(got, want) {
			t.Errorf("Connect %s: got %v, %v; want %v", name, got, err, want)
		}
	}
	for name, want := range commands {
		cur.Store(name)
		got, err := g.Command(ctx, "s", &anycablepb.CommandMessage{})
		if err != nil || !proto.Equal(got, want) {
			t.Errorf("Command %s: got %v, %v; want %v", name, got, err, want)
		}
	}
	for name, want := range disconnects {
		cur.Store(name)
		got, err := g.Disconnect(ctx, "s", &anycablepb.DisconnectRequest{})
		if err != nil || !proto.Equal(got, want) {
			t.Errorf("Disconnect %s: got %v, %v; want %v", name, got, err, want)
		}
	}
	// Empty-valued map entries survive: they are what deletes state keys.
	cur.Store("every field")
	got, err := g.Command(ctx, "s", &anycablepb.CommandMessage{})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := got.GetEnv().GetIstate()["k1"]; !ok || v != "" {
		t.Errorf("istate k1 = %q, present %v; want present and empty", v, ok)
	}
	if got.GetPresence() == nil {
		t.Error("presence lost")
	}
}

// TestWireBytesExamples: the generated stubs encode these messages to the
// bytes AnyCable's own generated stubs produce, so the wire format is
// AnyCable's (field numbers, maps as entry messages, ERROR as an absent
// status).
func TestWireBytesExamples(t *testing.T) {
	cases := []struct {
		name string
		msg  proto.Message
		hex  string
	}{
		{"ConnectionRequest", &anycablepb.ConnectionRequest{Env: &anycablepb.Env{
			Url: "http://h/cable", Headers: map[string]string{"cookie": "a=1"}}},
			"1a1f 0a0e 687474703a2f2f682f6361626c65 120d 0a06 636f6f6b6965 1203 613d31"},
		{"CommandResponse", &anycablepb.CommandResponse{Status: anycablepb.Status_SUCCESS,
			Streams: []string{"s"}, Transmissions: []string{"{}"},
			Env: &anycablepb.EnvResponse{Istate: map[string]string{"k": ""}}},
			"0801 220173 2a027b7d 3a07 1205 0a016b 1200"},
		{"ConnectionResponse", &anycablepb.ConnectionResponse{Status: anycablepb.Status_ERROR, ErrorMsg: "x"},
			"220178"},
	}
	for _, c := range cases {
		want, err := hex.DecodeString(strings.ReplaceAll(c.hex, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		got, err := proto.MarshalOptions{Deterministic: true}.Marshal(c.msg)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: marshal = %x, want %x", c.name, got, want)
		}
		back := c.msg.ProtoReflect().New().Interface()
		if err := proto.Unmarshal(want, back); err != nil || !proto.Equal(back, c.msg) {
			t.Errorf("%s: unmarshal of the wanted bytes = %v, %v; want %v", c.name, back, err, c.msg)
		}
	}
}

// TestGRPCMaxRecvSize: an answer above MaxRecvSize fails with gRPC's
// ResourceExhausted instead of being delivered.
func TestGRPCMaxRecvSize(t *testing.T) {
	b := &backend{connect: func(context.Context, *anycablepb.ConnectionRequest) (*anycablepb.ConnectionResponse, error) {
		return &anycablepb.ConnectionResponse{Status: anycablepb.Status_SUCCESS, Identifiers: strings.Repeat("x", 4096)}, nil
	}}
	g := newTestGRPC(t, GRPCOptions{Host: startBackend(t, b), MaxRecvSize: 1024, CommandTimeout: 300 * time.Millisecond}, nil)
	_, err := g.Connect(context.Background(), "s", &anycablepb.ConnectionRequest{})
	if c := codeOf(err); c != codes.ResourceExhausted {
		t.Fatalf("err = %v (code %v), want ResourceExhausted", err, c)
	}
}
