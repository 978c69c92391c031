package node

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	anycablepb "github.com/cablehub/cablehub/gen/anycable"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// scriptedApp is an App in memory: it answers each call with what its
// functions return (SUCCESS with nothing by default) and records the
// calls, so tests assert what the node sends and what the client gets.
type scriptedApp struct {
	connect    func(*anycablepb.ConnectionRequest) (*anycablepb.ConnectionResponse, error)
	command    func(*anycablepb.CommandMessage) (*anycablepb.CommandResponse, error)
	disconnect func(*anycablepb.DisconnectRequest) (*anycablepb.DisconnectResponse, error)

	mu    sync.Mutex
	calls []appCall
}

type appCall struct {
	sid string
	req proto.Message
}

func (a *scriptedApp) record(sid string, req proto.Message) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, appCall{sid, proto.Clone(req)})
}

func (a *scriptedApp) Connect(_ context.Context, sid string, req *anycablepb.ConnectionRequest) (*anycablepb.ConnectionResponse, error) {
	a.record(sid, req)
	if a.connect != nil {
		return a.connect(req)
	}
	return &anycablepb.ConnectionResponse{Status: anycablepb.Status_SUCCESS, Identifiers: `{"user":"ann"}`,
		Transmissions: []string{`{"type":"welcome","sid":"` + sid + `"}`}}, nil
}

func (a *scriptedApp) Command(_ context.Context, sid string, req *anycablepb.CommandMessage) (*anycablepb.CommandResponse, error) {
	a.record(sid, req)
	if a.command != nil {
		return a.command(req)
	}
	return &anycablepb.CommandResponse{Status: anycablepb.Status_SUCCESS}, nil
}

func (a *scriptedApp) Disconnect(_ context.Context, sid string, req *anycablepb.DisconnectRequest) (*anycablepb.DisconnectResponse, error) {
	a.record(sid, req)
	if a.disconnect != nil {
		return a.disconnect(req)
	}
	return &anycablepb.DisconnectResponse{Status: anycablepb.Status_SUCCESS}, nil
}

// requests returns the recorded requests of type T, in order.
func requests[T proto.Message](a *scriptedApp) []T {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []T
	for _, c := range a.calls {
		if r, ok := c.req.(T); ok {
			out = append(out, r)
		}
	}
	return out
}

// awaitRequests waits until n requests of type T were made.
func awaitRequests[T proto.Message](t *testing.T, a *scriptedApp, n int) []T {
	t.Helper()
	c := newFakeConn()
	var got []T
	c.await(t, fmt.Sprintf("%d %T calls", n, *new(T)), func() bool {
		got = requests[T](a)
		return len(got) >= n
	})
	return got
}

// newAppEnv is newEnv with app as the App.
func newAppEnv(t *testing.T, app *scriptedApp, opts Options) *env {
	t.Helper()
	opts.App = app
	if opts.AppOptions.Headers == nil {
		opts.AppOptions = DefaultAppOptions()
	}
	return newEnv(t, opts)
}

// chat answers subscribe with confirm_subscription and stream
// "room:<identifier>", and message with an echo of the data.
func chat(req *anycablepb.CommandMessage) (*anycablepb.CommandResponse, error) {
	id := req.Identifier
	switch req.Command {
	case "subscribe":
		return &anycablepb.CommandResponse{Status: anycablepb.Status_SUCCESS, Streams: []string{"room:" + id},
			Transmissions: []string{`{"identifier":"` + id + `","type":"confirm_subscription"}`}}, nil
	case "message":
		return &anycablepb.CommandResponse{Status: anycablepb.Status_SUCCESS,
			Transmissions: []string{`{"identifier":"` + id + `","message":` + req.Data + `}`}}, nil
	}
	return &anycablepb.CommandResponse{Status: anycablepb.Status_SUCCESS}, nil
}

func TestAppConnectSuccess(t *testing.T) {
	app := &scriptedApp{connect: func(*anycablepb.ConnectionRequest) (*anycablepb.ConnectionResponse, error) {
		return &anycablepb.ConnectionResponse{Status: anycablepb.Status_SUCCESS, Identifiers: `{"user":"ann"}`,
			Transmissions: []string{"not json", `{"type":"welcome"}`},
			Env:           &anycablepb.EnvResponse{Cstate: map[string]string{"lang": "en"}, Istate: map[string]string{"ignored": "1"}}}, nil
	}}
	opts := Options{AppOptions: DefaultAppOptions()}
	opts.AppOptions.Headers = []string{"cookie", "x-api-token"}
	opts.AppOptions.Cookies = []string{"_session", "b64"}
	e := newAppEnv(t, app, opts)
	c := e.open("/cable?user=ann", "X-Identifiers: none", "X-Test-Sid: s1",
		"Cookie: _session=abc; theme=dark; b64=YQ==", "X-Api-Token: t", "X-Other: no")
	c.expect(t, "not json", `{"type":"welcome"}`) // verbatim, and no welcome of ours
	req := requests[*anycablepb.ConnectionRequest](app)[0]
	want := &anycablepb.Env{Url: "http://example.com/cable?user=ann", Headers: map[string]string{
		"cookie": "_session=abc; b64=YQ==", "x-api-token": "t", "REMOTE_ADDR": "192.0.2.1"}}
	if !proto.Equal(req.Env, want) {
		t.Fatalf("connect env %v, want %v", req.Env, want)
	}
	if sid := app.calls[0].sid; sid != "s1" {
		t.Fatalf("sid %q", sid)
	}
	c.command(`{"command":"subscribe","identifier":"app1"}`)
	cmd := awaitRequests[*anycablepb.CommandMessage](t, app, 1)[0]
	if cmd.ConnectionIdentifiers != `{"user":"ann"}` || cmd.Env.Cstate["lang"] != "en" || len(cmd.Env.Istate) != 0 {
		t.Fatalf("command %v", cmd)
	}
	// Remote disconnects find the session by the App's identifiers.
	if err := e.node.Disconnect(context.Background(), `{"user":"ann"}`, false); err != nil {
		t.Fatal(err)
	}
	c.expect(t, `{"type":"disconnect","reason":"remote","reconnect":false}`)
	c.expectClosed(t, 1000, "Closed remotely")
}

func TestAppConnectRefused(t *testing.T) {
	cases := []struct {
		name   string
		resp   *anycablepb.ConnectionResponse
		err    error
		frames []string
		code   int
		reason string
	}{
		{"failure", &anycablepb.ConnectionResponse{Status: anycablepb.Status_FAILURE,
			Transmissions: []string{`{"type":"disconnect","reason":"unauthorized"}`}},
			nil, []string{`{"type":"disconnect","reason":"unauthorized"}`}, 1000, "Auth Failed"},
		{"failure without transmissions", &anycablepb.ConnectionResponse{Status: anycablepb.Status_FAILURE}, nil, nil, 1000, "Auth Failed"},
		{"error", &anycablepb.ConnectionResponse{Status: anycablepb.Status_ERROR, ErrorMsg: "boom",
			Transmissions: []string{"discarded"}}, nil, nil, 1011, "Auth Error"},
		{"unreachable", nil, status.Error(codes.Unavailable, "down"), nil, 1011, "Auth Error"},
		{"timeout", nil, status.Error(codes.DeadlineExceeded, "slow"), nil, 1011, "Auth Error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			app := &scriptedApp{connect: func(*anycablepb.ConnectionRequest) (*anycablepb.ConnectionResponse, error) {
				return tc.resp, tc.err
			}}
			e := newAppEnv(t, app, Options{})
			c := e.open("/cable", "X-Identifiers: none")
			c.expect(t, tc.frames...)
			c.expectClosed(t, tc.code, tc.reason)
			c.expectNone(t)
			c.goAway(t)
			if e.node.Sessions() != 0 {
				t.Fatal("a refused session is still registered")
			}
			if n := len(requests[*anycablepb.DisconnectRequest](app)); n != 0 {
				t.Fatalf("%d Disconnect calls for a refused session", n)
			}
		})
	}
}

// Locally identified sessions (JWT, --noauth) never call Connect; without
// an App, a session nothing identifies is refused as unauthorized and the
// log says how to configure one, once.
func TestAppConnectSkippedOrMissing(t *testing.T) {
	app := &scriptedApp{}
	e := newAppEnv(t, app, Options{})
	e.connect(t, "local", "X-Identifiers: jwt-user")
	if n := len(requests[*anycablepb.ConnectionRequest](app)); n != 0 {
		t.Fatalf("%d Connect calls for a session identified locally", n)
	}

	bare := newEnv(t, Options{})
	for range 2 {
		c := bare.open("/cable", "X-Identifiers: none")
		c.expect(t, `{"type":"disconnect","reason":"unauthorized","reconnect":false}`)
		c.expectClosed(t, 1000, "Auth Failed")
	}
	if n := strings.Count(bare.logs.String(), "no RPC back end configured"); n != 1 {
		t.Fatalf("the missing back end was logged %d times at warn level, want 1:\n%s", n, bare.logs.String())
	}
	if !strings.Contains(bare.logs.String(), "--rpc_host") {
		t.Fatal("the log does not say how to configure a back end")
	}
}
