package e2e

import (
	"context"
	"encoding/json"
	"log/slog"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	anycablepb "github.com/cablehub/cablehub/gen/anycable"
	"github.com/cablehub/cablehub/server/rpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// The Ruby back end (e2e/rpcapp_ruby/server.rb) runs on Debian's ruby with
// ruby-grpc and ruby-google-protobuf, the packages .ci/run installs.
const (
	rubyBin       = "/usr/bin/ruby"
	rubyRPCServer = "rpcapp_ruby/server.rb"
	// rubySID is the session id every call sends; the app echoes it.
	rubySID = "YhOWV3bmwmmO3QT2Z95nj"
	// chatChannel is the identifier of the channel the app serves.
	chatChannel = `{"channel":"ChatChannel","room":"42"}`
)

// rubyApp is a running server.rb: its gRPC address and its stdout lines.
type rubyApp struct {
	*appPeer
	host string
}

// startRubyRPCApp runs server.rb and waits for its "LISTENING <port>" line.
// It skips the test when Ruby or its gRPC gem is missing; the app's output
// is shown when the test fails.
func startRubyRPCApp(t *testing.T) *rubyApp {
	t.Helper()
	if _, err := exec.LookPath(rubyBin); err != nil {
		t.Skipf("%s is missing (Debian's ruby, ruby-grpc and ruby-google-protobuf run the Ruby RPC back end)", rubyBin)
	}
	if out, err := exec.Command(rubyBin, "-e", `require "grpc"; require "google/protobuf"`).CombinedOutput(); err != nil {
		t.Skipf("Ruby's grpc or google-protobuf gem is missing (apt-get install ruby-grpc ruby-google-protobuf): %v\n%s", err, out)
	}
	app := &rubyApp{appPeer: startAppPeer(t, "Ruby RPC app", "CONFIGURED", exec.Command(rubyBin, rubyRPCServer))}
	line := app.waitLine(t, 60*time.Second, func(l string) bool { return strings.HasPrefix(l, "LISTENING ") })
	app.host = "127.0.0.1:" + strings.TrimPrefix(line, "LISTENING ")
	return app
}

// count is how many stdout lines equal line.
func (a *rubyApp) count(line string) int {
	n := 0
	for _, l := range a.snapshot() {
		if l == line {
			n++
		}
	}
	return n
}

// retryCounter is a Metrics that counts retries and remembers final codes.
type retryCounter struct {
	retries atomic.Int32
	mu      sync.Mutex
	done    []codes.Code
}

func (*retryCounter) Pending(int)                {}
func (*retryCounter) InFlight(int)               {}
func (m *retryCounter) Retry(string, codes.Code) { m.retries.Add(1) }
func (m *retryCounter) Done(_ string, c codes.Code, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.done = append(m.done, c)
}

// newRubyClient starts the app and a gRPC client for it.
func newRubyClient(t *testing.T, metrics rpc.Metrics) (*rubyApp, *rpc.GRPC, context.Context) {
	t.Helper()
	app := startRubyRPCApp(t)
	client, err := rpc.NewGRPC(rpc.GRPCOptions{Host: app.host, Metrics: metrics}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return app, client, ctx
}

// wantProto fails the test unless got equals want field by field.
func wantProto(t *testing.T, what string, got, want proto.Message) {
	t.Helper()
	if !proto.Equal(got, want) {
		t.Errorf("%s:\n got  %s\n want %s", what, prototext.Format(got), prototext.Format(want))
	}
}

// TestRubyRPCConnect: identification by cookie and by ?user=, the sid and
// protov metadata echoed (welcome frame, cstate), and a refusal.
func TestRubyRPCConnect(t *testing.T) {
	t.Parallel()
	_, client, ctx := newRubyClient(t, nil)

	welcome := &anycablepb.ConnectionResponse{
		Status:        anycablepb.Status_SUCCESS,
		Transmissions: []string{`{"type":"welcome","sid":"` + rubySID + `"}`},
	}
	for _, tc := range []struct {
		name, user string
		env        *anycablepb.Env
	}{
		{"cookie", "alice", &anycablepb.Env{Url: "http://127.0.0.1/cable?user=ignored",
			Headers: map[string]string{"cookie": "theme=dark; flag; user=alice", "REMOTE_ADDR": "127.0.0.1"}}},
		{"query", "bob", &anycablepb.Env{Url: "http://127.0.0.1/cable?mode=x&user=bob",
			Headers: map[string]string{"cookie": "theme=dark"}}},
	} {
		got, err := client.Connect(ctx, rubySID, &anycablepb.ConnectionRequest{Env: tc.env})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		want := proto.CloneOf(welcome)
		want.Identifiers = `{"user":"` + tc.user + `"}`
		want.Env = &anycablepb.EnvResponse{Cstate: map[string]string{"user": tc.user, "protov": rpc.ProtocolVersion}}
		wantProto(t, "connect by "+tc.name, got, want)
	}

	refused, err := client.Connect(ctx, "sid-2", &anycablepb.ConnectionRequest{Env: &anycablepb.Env{
		Url: "http://127.0.0.1/cable", Headers: map[string]string{"cookie": "user="}}})
	if err != nil {
		t.Fatal(err)
	}
	wantProto(t, "refused connect", refused, &anycablepb.ConnectionResponse{
		Status:        anycablepb.Status_FAILURE,
		ErrorMsg:      "unauthorized",
		Transmissions: []string{`{"type":"disconnect","reason":"unauthorized","reconnect":false}`},
	})
}

// TestRubyRPCCommand: subscribe (confirmed and rejected), an action's reply
// with state changes (an empty value, meaning delete, passed through as
// ""), disconnect and stop_streams actions, unsubscribe's stopped_streams,
// and FAILURE / ERROR answers that are not Go errors.
func TestRubyRPCCommand(t *testing.T) {
	t.Parallel()
	_, client, ctx := newRubyClient(t, nil)
	command := func(cmd, identifier, data string, istate map[string]string) *anycablepb.CommandResponse {
		t.Helper()
		resp, err := client.Command(ctx, rubySID, &anycablepb.CommandMessage{
			Command: cmd, Identifier: identifier, ConnectionIdentifiers: `{"user":"alice"}`, Data: data,
			Env: &anycablepb.Env{Url: "http://127.0.0.1/cable", Cstate: map[string]string{"user": "alice"}, Istate: istate}})
		if err != nil {
			t.Fatalf("%s %s %s: %v", cmd, identifier, data, err)
		}
		return resp
	}
	room := map[string]string{"room": "42"}

	wantProto(t, "subscribe", command("subscribe", chatChannel, "", nil), &anycablepb.CommandResponse{
		Status:        anycablepb.Status_SUCCESS,
		Streams:       []string{"chat:42"},
		Transmissions: []string{`{"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"42\"}","type":"confirm_subscription"}`},
		Env:           &anycablepb.EnvResponse{Istate: map[string]string{"room": "42"}},
	})
	wantProto(t, "subscribe without room", command("subscribe", `{"channel":"ChatChannel"}`, "", nil), &anycablepb.CommandResponse{
		Status:        anycablepb.Status_FAILURE,
		ErrorMsg:      "no room",
		Transmissions: []string{`{"identifier":"{\"channel\":\"ChatChannel\"}","type":"reject_subscription"}`},
	})
	wantProto(t, "speak", command("message", chatChannel, `{"action":"speak","text":"hi there"}`, room), &anycablepb.CommandResponse{
		Status: anycablepb.Status_SUCCESS,
		Transmissions: []string{`{"identifier":"{\"channel\":\"ChatChannel\",\"room\":\"42\"}","message":` +
			`{"text":"hi there","from":"alice","room":"42","sid":"` + rubySID + `","protov":"v1"}}`},
		Env: &anycablepb.EnvResponse{
			Cstate: map[string]string{"last_text": "hi there", "protov": ""},
			Istate: map[string]string{"spoken": "hi there"},
		},
	})
	wantProto(t, "leave", command("message", chatChannel, `{"action":"leave"}`, room),
		&anycablepb.CommandResponse{Status: anycablepb.Status_SUCCESS, Disconnect: true})
	wantProto(t, "mute", command("message", chatChannel, `{"action":"mute"}`, room),
		&anycablepb.CommandResponse{Status: anycablepb.Status_SUCCESS, StopStreams: true})
	wantProto(t, "unknown action", command("message", chatChannel, `{"action":"dance"}`, room),
		&anycablepb.CommandResponse{Status: anycablepb.Status_FAILURE, ErrorMsg: "unknown action dance"})
	wantProto(t, "unsubscribe", command("unsubscribe", chatChannel, "", room), &anycablepb.CommandResponse{
		Status:         anycablepb.Status_SUCCESS,
		StoppedStreams: []string{"chat:42"},
		Env:            &anycablepb.EnvResponse{Istate: map[string]string{"room": ""}},
	})
	wantProto(t, "unknown channel", command("subscribe", `{"channel":"Nope"}`, "", nil),
		&anycablepb.CommandResponse{Status: anycablepb.Status_ERROR, ErrorMsg: "unknown channel Nope"})
}

// TestRubyRPCDisconnect: the app receives the identifiers, subscriptions,
// state (istate as channel → JSON object) and metadata Disconnect sends.
func TestRubyRPCDisconnect(t *testing.T) {
	t.Parallel()
	app, client, ctx := newRubyClient(t, nil)
	istate := map[string]string{chatChannel: `{"room":"42","spoken":"hi"}`}
	resp, err := client.Disconnect(ctx, rubySID, &anycablepb.DisconnectRequest{
		Identifiers:   `{"user":"alice"}`,
		Subscriptions: []string{chatChannel, `{"channel":"ChatChannel","room":"7"}`},
		Env: &anycablepb.Env{Url: "http://127.0.0.1/cable?user=alice",
			Cstate: map[string]string{"user": "alice"}, Istate: istate},
	})
	if err != nil {
		t.Fatal(err)
	}
	wantProto(t, "disconnect", resp, &anycablepb.DisconnectResponse{Status: anycablepb.Status_SUCCESS})

	line := app.waitLine(t, 10*time.Second, func(l string) bool { return strings.HasPrefix(l, "DISCONNECT ") })
	type record struct {
		SID, Protov, Identifiers, URL string
		Subscriptions                 []string
		Cstate, Istate                map[string]string
	}
	var got record
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "DISCONNECT ")), &got); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	want := record{
		SID: rubySID, Protov: rpc.ProtocolVersion, Identifiers: `{"user":"alice"}`, URL: "http://127.0.0.1/cable?user=alice",
		Subscriptions: []string{chatChannel, `{"channel":"ChatChannel","room":"7"}`},
		Cstate:        map[string]string{"user": "alice"}, Istate: istate,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the app recorded %+v, want %+v", got, want)
	}
}

// TestRubyRPCAppRaises: an exception in the Ruby app reaches the client as
// UNKNOWN (grpc-ruby's mapping of an unhandled error) and is not retried:
// the app saw the call once and the client reported no retry.
func TestRubyRPCAppRaises(t *testing.T) {
	t.Parallel()
	metrics := &retryCounter{}
	app, client, ctx := newRubyClient(t, metrics)
	_, err := client.Command(ctx, "boom-sid", &anycablepb.CommandMessage{
		Command: "message", Identifier: chatChannel, ConnectionIdentifiers: `{"user":"alice"}`,
		Data: `{"action":"explode"}`, Env: &anycablepb.Env{Url: "http://127.0.0.1/cable"}})
	if status.Code(err) != codes.Unknown || !strings.Contains(status.Convert(err).Message(), "exploded on purpose") {
		t.Fatalf("err = %v, want Unknown carrying the exception's message", err)
	}
	// Each attempt prints its CALL line before answering, so once this later
	// call's line is in, every attempt of the failed one is too.
	if _, err := client.Disconnect(ctx, "marker-sid", &anycablepb.DisconnectRequest{Env: &anycablepb.Env{}}); err != nil {
		t.Fatal(err)
	}
	app.waitLine(t, 10*time.Second, func(l string) bool { return l == "CALL disconnect marker-sid" })
	if n := app.count("CALL command boom-sid"); n != 1 {
		t.Errorf("the app saw the failing call %d times, want 1 (not retried)", n)
	}
	if n := metrics.retries.Load(); n != 0 {
		t.Errorf("%d retries reported, want 0", n)
	}
	metrics.mu.Lock()
	defer metrics.mu.Unlock()
	if want := []codes.Code{codes.Unknown, codes.OK}; !reflect.DeepEqual(metrics.done, want) {
		t.Errorf("final codes %v, want %v", metrics.done, want)
	}
}
