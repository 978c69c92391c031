package node

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	anycablepb "github.com/cablehub/cablehub/gen/anycable"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// appFrame is the frame a subscriber of identifier gets for the first
// publication of "room:<identifier>".
func (e *env) appFrame(identifier, stream, message string, offset int) string {
	return `{"identifier":"` + identifier + `","message":` + message + `,"stream_id":"` + stream +
		`","epoch":"` + e.broker.Epoch() + `","offset":` + itoa(offset) + `}`
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// An App channel: subscribe with the App's confirmation and streams,
// actions with the client's data verbatim and the channel state, replies
// applied in AnyCable's order (streams stopped, added, state merged with
// empty values deleting, transmissions), and unsubscribe.
func TestAppChannel(t *testing.T) {
	app := &scriptedApp{}
	app.command = func(req *anycablepb.CommandMessage) (*anycablepb.CommandResponse, error) {
		if req.Command == "message" && req.Data == `{"action":"state"}` {
			return &anycablepb.CommandResponse{Status: anycablepb.Status_SUCCESS,
				StoppedStreams: []string{"s1"}, Streams: []string{"s3"},
				Env:           &anycablepb.EnvResponse{Istate: map[string]string{"k1": "", "k3": "v3"}, Cstate: map[string]string{"c": ""}},
				Transmissions: []string{"plain text", `{"a":1}`}}, nil
		}
		if req.Command == "subscribe" {
			return &anycablepb.CommandResponse{Status: anycablepb.Status_SUCCESS, Streams: []string{"s1", "s2"},
				Env:           &anycablepb.EnvResponse{Istate: map[string]string{"k1": "v1", "k2": "v2"}, Cstate: map[string]string{"c": "x"}},
				Transmissions: []string{`{"identifier":"app1","type":"confirm_subscription"}`}}, nil
		}
		return chat(req)
	}
	e := newAppEnv(t, app, Options{})
	c := e.connect(t, "s1", "X-Identifiers: none")
	c.command(`{"command":"subscribe","identifier":"app1"}`)
	c.expect(t, `{"identifier":"app1","type":"confirm_subscription"}`)
	e.publish(t, "s1", `"one"`)
	e.publish(t, "s2", `"two"`)
	c.expect(t, e.appFrame("app1", "s1", `"one"`, 1), e.appFrame("app1", "s2", `"two"`, 1))

	c.command(`{"command":"message","identifier":"app1","data":"{\"action\":\"state\"}"}`)
	c.expect(t, "plain text", `{"a":1}`)
	c.command(`{"command":"message","identifier":"app1","data":"{\"action\":\"echo\"}"}`)
	c.expect(t, `{"identifier":"app1","message":{"action":"echo"}}`)
	msgs := requests[*anycablepb.CommandMessage](app)
	last := msgs[len(msgs)-1]
	if last.Data != `{"action":"echo"}` || len(last.Env.Istate) != 2 || last.Env.Istate["k2"] != "v2" || last.Env.Istate["k3"] != "v3" || len(last.Env.Cstate) != 0 {
		t.Fatalf("state after the merge: %v", last.Env)
	}
	e.publish(t, "s1", `"gone"`)
	e.publish(t, "s3", `"three"`)
	e.publish(t, "s2", `"still"`)
	c.expect(t, e.appFrame("app1", "s3", `"three"`, 1), e.appFrame("app1", "s2", `"still"`, 2))

	// Data that is not a JSON string is dropped without a call.
	before := len(requests[*anycablepb.CommandMessage](app))
	c.command(`{"command":"message","identifier":"app1","data":{"action":"echo"}}`)
	pingPong(t, c)
	if n := len(requests[*anycablepb.CommandMessage](app)); n != before {
		t.Fatal("a message with object data reached the App")
	}

	c.command(`{"command":"unsubscribe","identifier":"app1"}`)
	pingPong(t, c)
	e.publish(t, "s2", `"after"`)
	pingPong(t, c)
	msgs = requests[*anycablepb.CommandMessage](app)
	if u := msgs[len(msgs)-1]; u.Command != "unsubscribe" || u.Env.Istate["k2"] != "v2" {
		t.Fatalf("unsubscribe call %v", u)
	}
}

// Failures: a refused subscribe sends the App's rejection and attaches no
// stream (AnyCable attaches them; docs/rails.md lists the difference); an
// ERROR or a failed call sends nothing and changes nothing; an
// unsubscribe that fails keeps the subscription; disconnect:true closes
// after the transmissions.
func TestAppChannelFailures(t *testing.T) {
	app := &scriptedApp{}
	app.command = func(req *anycablepb.CommandMessage) (*anycablepb.CommandResponse, error) {
		switch req.Identifier + "/" + req.Command {
		case "app-rejected/subscribe":
			return &anycablepb.CommandResponse{Status: anycablepb.Status_FAILURE, Streams: []string{"leak"},
				Transmissions: []string{`{"identifier":"app-rejected","type":"reject_subscription"}`}}, nil
		case "app-error/subscribe":
			return &anycablepb.CommandResponse{Status: anycablepb.Status_ERROR, Streams: []string{"leak"}, Transmissions: []string{"no"}}, nil
		case "app-down/subscribe":
			return nil, status.Error(codes.Unavailable, "down")
		case "app1/unsubscribe":
			return nil, status.Error(codes.DeadlineExceeded, "slow")
		case "app1/message":
			return &anycablepb.CommandResponse{Status: anycablepb.Status_SUCCESS, Disconnect: true, Transmissions: []string{`{"bye":1}`}}, nil
		}
		return chat(req)
	}
	e := newAppEnv(t, app, Options{})
	c := e.connect(t, "s1", "X-Identifiers: none")
	c.command(`{"command":"subscribe","identifier":"app-rejected"}`)
	c.expect(t, `{"identifier":"app-rejected","type":"reject_subscription"}`)
	c.command(`{"command":"subscribe","identifier":"app-error"}`)
	c.command(`{"command":"subscribe","identifier":"app-down"}`)
	e.publish(t, "leak", `"x"`)
	pingPong(t, c)

	c.command(`{"command":"subscribe","identifier":"app1"}`)
	c.expect(t, `{"identifier":"app1","type":"confirm_subscription"}`)
	c.command(`{"command":"unsubscribe","identifier":"app1"}`)
	e.publish(t, "room:app1", `"kept"`)
	c.expect(t, e.appFrame("app1", "room:app1", `"kept"`, 1))
	c.command(`{"command":"message","identifier":"app1","data":"{}"}`)
	c.expect(t, `{"bye":1}`)
	c.expectClosed(t, 1000, "Command Failed")
}

// A Command the back end answered with something unusable (here a reply
// over the size limit) drops the command as any failed call does, and is
// logged as a WARN with the reason; a back end that is down is the RPC
// client's to report, so its failed commands stay at debug.
func TestAppCommandUnusableReplyLogged(t *testing.T) {
	app := &scriptedApp{}
	app.command = func(req *anycablepb.CommandMessage) (*anycablepb.CommandResponse, error) {
		switch req.Identifier {
		case "app-huge":
			return nil, status.Error(codes.Unknown, "http rpc command: reply larger than the limit of --rpc_max_call_recv_size (more than 4194304 bytes)")
		case "app-down":
			return nil, status.Error(codes.Unavailable, "down")
		}
		return chat(req)
	}
	e := newAppEnv(t, app, Options{})
	c := e.connect(t, "s1", "X-Identifiers: none")
	c.command(`{"command":"subscribe","identifier":"app-huge"}`)
	c.command(`{"command":"subscribe","identifier":"app-down"}`)
	pingPong(t, c)
	logs := e.logs.String()
	if !strings.Contains(logs, `level=WARN msg="RPC command failed"`) || !strings.Contains(logs, "--rpc_max_call_recv_size") {
		t.Errorf("no WARN for the unusable reply:\n%s", logs)
	}
	if strings.Count(logs, "level=WARN") != 1 {
		t.Errorf("want one WARN, for the unusable reply only:\n%s", logs)
	}
}

// Presence from an App answer joins the channel's "$p" stream; "$w" lets
// clients whisper.
func TestAppPresenceAndWhisper(t *testing.T) {
	app := &scriptedApp{}
	app.command = func(req *anycablepb.CommandMessage) (*anycablepb.CommandResponse, error) {
		if req.Command == "subscribe" {
			return &anycablepb.CommandResponse{Status: anycablepb.Status_SUCCESS, Streams: []string{"room"},
				Env:           &anycablepb.EnvResponse{Istate: map[string]string{"$p": "room", "$w": "room"}},
				Transmissions: []string{`{"identifier":"app1","type":"confirm_subscription"}`},
				Presence:      &anycablepb.PresenceResponse{Type: "join", Id: "u1", Info: `{"name":"Ann"}`}}, nil
		}
		return chat(req)
	}
	e := newAppEnv(t, app, Options{})
	a := e.connect(t, "a", "X-Identifiers: none")
	b := e.connect(t, "b", "X-Identifiers: none")
	a.command(`{"command":"subscribe","identifier":"app1"}`)
	a.expect(t, `{"identifier":"app1","type":"confirm_subscription"}`,
		`{"type":"presence","identifier":"app1","message":{"id":"u1","info":{"name":"Ann"},"type":"join"}}`)
	a.command(`{"command":"presence","identifier":"app1"}`)
	a.expect(t, `{"type":"presence","identifier":"app1","message":{"type":"info","total":1,"records":[{"info":{"name":"Ann"},"id":"u1"}]}}`)
	b.command(`{"command":"subscribe","identifier":"app1"}`)
	// The same presence id joining again is no news.
	b.expect(t, `{"identifier":"app1","type":"confirm_subscription"}`)
	b.command(`{"command":"whisper","identifier":"app1","data":{"typing":true}}`)
	a.expect(t, `{"identifier":"app1","message":{"typing":true}}`)
	pingPong(t, b)
}

// Disconnect calls per --disconnect_mode: auto calls it for sessions the
// App answered for (Connect, or a subscribe), always for every session,
// never for none. The call carries the identifiers, the subscriptions and
// each channel's state as JSON.
func TestAppDisconnectModes(t *testing.T) {
	for _, tc := range []struct {
		mode            DisconnectMode
		local, localApp bool // a locally identified session gets the call: without / with an App channel
	}{
		{DisconnectAuto, false, true},
		{DisconnectAlways, true, true},
		{DisconnectNever, false, false},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			app := &scriptedApp{}
			app.command = func(req *anycablepb.CommandMessage) (*anycablepb.CommandResponse, error) {
				return &anycablepb.CommandResponse{Status: anycablepb.Status_SUCCESS,
					Env: &anycablepb.EnvResponse{Istate: map[string]string{"joined": "yes"}}}, nil
			}
			opts := Options{AppOptions: DefaultAppOptions()}
			opts.AppOptions.DisconnectMode = tc.mode
			e := newAppEnv(t, app, opts)
			plain := e.connect(t, "plain", "X-Identifiers: jwt")
			subscribe(t, plain, "builtin")
			plain.goAway(t)
			withApp := e.connect(t, "with-app", "X-Identifiers: jwt2")
			withApp.command(`{"command":"subscribe","identifier":"app1"}`)
			pingPong(t, withApp)
			withApp.goAway(t)
			viaApp := e.open("/cable", "X-Identifiers: none", "X-Test-Sid: via-app")
			viaApp.expect(t, `{"type":"welcome","sid":"via-app"}`)
			viaApp.goAway(t)

			want := map[string]bool{"plain": tc.local, "with-app": tc.localApp, "via-app": tc.mode != DisconnectNever}
			n := 0
			for _, w := range want {
				if w {
					n++
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			e.node.disconnects.drain(ctx)
			got := requests[*anycablepb.DisconnectRequest](app)
			if len(got) != n {
				t.Fatalf("%d Disconnect calls, want %d: %v", len(got), n, got)
			}
			for _, c := range app.calls {
				req, ok := c.req.(*anycablepb.DisconnectRequest)
				if !ok {
					continue
				}
				if !want[c.sid] {
					t.Fatalf("Disconnect for %s", c.sid)
				}
				if c.sid == "with-app" && (req.Identifiers != "jwt2" || len(req.Subscriptions) != 1 ||
					req.Env.Istate["app1"] != `{"joined":"yes"}` || req.Env.Url != "http://example.com/cable") {
					t.Fatalf("Disconnect request %v", req)
				}
			}
		})
	}
}

// A session the App identified is restored without Connect, with its App
// channels' streams and state and its connection state; the history of
// both streams of a channel comes back in one reply.
func TestAppSessionRestored(t *testing.T) {
	app := &scriptedApp{}
	app.command = func(req *anycablepb.CommandMessage) (*anycablepb.CommandResponse, error) {
		if req.Command == "subscribe" {
			return &anycablepb.CommandResponse{Status: anycablepb.Status_SUCCESS, Streams: []string{"s1", "s2"},
				Env:           &anycablepb.EnvResponse{Istate: map[string]string{"k": "v"}, Cstate: map[string]string{"c": "x"}},
				Transmissions: []string{`{"identifier":"app1","type":"confirm_subscription"}`}}, nil
		}
		return chat(req)
	}
	e := newAppEnv(t, app, Options{SessionsTTL: time.Minute})
	a := e.open("/cable", "X-Identifiers: none", "X-Test-Sid: a")
	a.expect(t, `{"type":"welcome","sid":"a"}`)
	a.command(`{"command":"subscribe","identifier":"app1"}`)
	a.expect(t, `{"identifier":"app1","type":"confirm_subscription"}`)
	e.publish(t, "s1", `"1"`)
	a.expect(t, e.appFrame("app1", "s1", `"1"`, 1))
	a.goAway(t)
	e.publish(t, "s1", `"2"`)
	e.publish(t, "s2", `"1"`)

	b := e.open("/cable", "X-AnyCable-Restore-Sid: a", "X-Test-Sid: b")
	expectRestored(t, b, "b", "app1")
	if n := len(requests[*anycablepb.ConnectionRequest](app)); n != 1 {
		t.Fatalf("%d Connect calls, want 1 (restore needs none)", n)
	}
	b.command(`{"command":"history","identifier":"app1","history":{"streams":{"s1":{"epoch":"` + e.broker.Epoch() + `","offset":1}},"since":1}}`)
	b.expect(t,
		e.appFrame("app1", "s1", `"2"`, 2),
		e.appFrame("app1", "s2", `"1"`, 1),
		`{"type":"confirm_history","identifier":"app1"}`)
	b.command(`{"command":"message","identifier":"app1","data":"{}"}`)
	b.expect(t, `{"identifier":"app1","message":{}}`)
	msgs := requests[*anycablepb.CommandMessage](app)
	if last := msgs[len(msgs)-1]; last.ConnectionIdentifiers != `{"user":"ann"}` || last.Env.Istate["k"] != "v" || last.Env.Cstate["c"] != "x" {
		t.Fatalf("restored state: %v", last)
	}
}
