package pusher

import (
	"encoding/json"
	"testing"

	"github.com/cablehub/cablehub/server/protocol"
)

// Every client event Pusher defines maps onto its command: subscribe
// keeps its whole data (auth, channel_data) for the Router, a client
// event becomes a whisper of {"event":..,"data":..} and nothing else.
func TestDecode(t *testing.T) {
	cases := []struct {
		name, frame string
		want        protocol.Command
	}{
		{"subscribe", `{"event":"pusher:subscribe","data":{"channel":"news"}}`,
			protocol.Command{Command: "subscribe", Identifier: "news", Data: json.RawMessage(`{"channel":"news"}`)}},
		{"subscribe with auth", `{"event":"pusher:subscribe","data":{"channel":"private-a","auth":"k:s"}}`,
			protocol.Command{Command: "subscribe", Identifier: "private-a", Data: json.RawMessage(`{"channel":"private-a","auth":"k:s"}`)}},
		{"subscribe with channel_data",
			`{"event":"pusher:subscribe","data":{"channel":"presence-r","auth":"k:s","channel_data":"{\"user_id\":1}"}}`,
			protocol.Command{Command: "subscribe", Identifier: "presence-r",
				Data: json.RawMessage(`{"channel":"presence-r","auth":"k:s","channel_data":"{\"user_id\":1}"}`)}},
		{"unsubscribe", `{"event":"pusher:unsubscribe","data":{"channel":"news","auth":"x"}}`,
			protocol.Command{Command: "unsubscribe", Identifier: "news"}},
		{"ping", `{"event":"pusher:ping","data":{}}`, protocol.Command{Command: "ping"}},
		{"pong", `{"event":"pusher:pong"}`, protocol.Command{Command: "pong"}},
		{"client event", `{"event":"client-typing","channel":"private-chat","data":{ "who" : "me" }}`,
			protocol.Command{Command: "whisper", Identifier: "private-chat",
				Data: json.RawMessage(`{"event":"client-typing","data":{"who":"me"}}`)}},
		{"client event, string data", `{"event":"client-x","channel":"presence-r","data":"hi"}`,
			protocol.Command{Command: "whisper", Identifier: "presence-r", Data: json.RawMessage(`{"event":"client-x","data":"hi"}`)}},
		{"client event without data", `{"event":"client-x","channel":"private-a"}`,
			protocol.Command{Command: "whisper", Identifier: "private-a", Data: json.RawMessage(`{"event":"client-x","data":null}`)}},
		// The sender's user_id is the server's to add (TagWhisper): one
		// the client sends is dropped, one inside data is only data.
		{"client event with a forged user_id",
			`{"event":"client-x","channel":"presence-r","data":{"user_id":"in-data"},"user_id":"forged"}`,
			protocol.Command{Command: "whisper", Identifier: "presence-r",
				Data: json.RawMessage(`{"event":"client-x","data":{"user_id":"in-data"}}`)}},
	}
	for _, c := range cases {
		got, err := Codec{}.Decode([]byte(c.frame))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !sameCommand(got, &c.want) {
			t.Errorf("%s:\n got %s\nwant %s", c.name, commandString(got), commandString(&c.want))
		}
	}
}

// Frames that are not a client event Pusher defines, or not JSON, are
// errors (the connection answers them before they reach the session).
func TestDecodeRefuses(t *testing.T) {
	for _, frame := range []string{
		``, `not json`, `[]`, `{"event":1}`,
		`{"event":"pusher:signin","data":{}}`,
		`{"event":"pusher:connection_established","data":"{}"}`,
		`{"event":"something","channel":"private-a"}`,
		`{"event":"client-x","data":{}}`, // no channel
		`{"event":"client-x","channel":"private-a","data":{`,
		`{"event":"pusher:subscribe"}`,
		`{"event":"pusher:subscribe","data":"news"}`,
		`{"event":"pusher:subscribe","data":{"channel":1}}`,
		`{"event":"pusher:unsubscribe","data":[]}`,
	} {
		if cmd, err := (Codec{}).Decode([]byte(frame)); err == nil {
			t.Errorf("%s: decoded as %s", frame, commandString(cmd))
		}
	}
}

func sameCommand(a, b *protocol.Command) bool {
	return a.Command == b.Command && a.Identifier == b.Identifier && string(a.Data) == string(b.Data) &&
		len(a.History) == 0 && len(a.Presence) == 0
}

func commandString(c *protocol.Command) string {
	b, _ := json.Marshal(c)
	return string(b)
}

// Each server message a session composes becomes its Pusher frame, or
// nothing when Pusher has none.
func TestEncode(t *testing.T) {
	codec := Codec{ActivityTimeout: 30}
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"welcome", protocol.Welcome("1234.5678", nil),
			`{"event":"pusher:connection_established","data":"{\"socket_id\":\"1234.5678\",\"activity_timeout\":30}"}`},
		{"confirm public", protocol.Confirm("news"),
			`{"event":"pusher_internal:subscription_succeeded","data":"{}","channel":"news"}`},
		{"confirm private", protocol.Confirm("private-a"),
			`{"event":"pusher_internal:subscription_succeeded","data":"{}","channel":"private-a"}`},
		{"confirm presence", protocol.Confirm("presence-r"), ""}, // the roster confirms
		{"confirm user stream", protocol.Confirm("#server-to-user-u1"),
			`{"event":"pusher_internal:subscription_succeeded","data":"{}","channel":"#server-to-user-u1"}`},
		{"reject", protocol.Reject("private-a"),
			`{"event":"pusher:subscription_error","channel":"private-a","data":{"type":"AuthError",` +
				`"error":"Subscription to private-a refused: invalid or missing authorization, or an invalid channel name","status":403}}`},
		{"ping", protocol.Ping(1700000000), `{"event":"pusher:ping","data":{}}`},
		{"pong", protocol.Pong(), `{"event":"pusher:pong","data":{}}`},
		{"history confirmed", protocol.ConfirmHistory("news"), ""},
		{"history rejected", protocol.RejectHistory("news"), ""},
		{"transmission", protocol.Transmission("news", []byte(`{"a":1}`)), ""},
		{"not json", []byte(`{"type":`), ""},
		{"unknown type", []byte(`{"type":"whatever","identifier":"news"}`), ""},
	}
	for _, c := range cases {
		if got := codec.Encode(c.in); string(got) != c.want || (c.want == "" && got != nil) {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}

// A presence channel's subscriber is confirmed by the roster: every
// member with its info (null for none), the ids in the order the node
// lists them, the count the node's total. A refused join is a
// subscription error.
func TestEncodePresence(t *testing.T) {
	cases := []struct {
		name, message, want string
	}{
		{"roster", `{"type":"info","total":2,"records":[{"info":{"name":"A"},"id":"u1"},{"id":"u2"}]}`,
			`{"event":"pusher_internal:subscription_succeeded","data":"{\"presence\":{\"count\":2,\"ids\":[\"u1\",\"u2\"],` +
				`\"hash\":{\"u1\":{\"name\":\"A\"},\"u2\":null}}}","channel":"presence-r"}`},
		{"explicit null info", `{"type":"info","total":1,"records":[{"info":null,"id":"10"}]}`,
			`{"event":"pusher_internal:subscription_succeeded","data":"{\"presence\":{\"count\":1,\"ids\":[\"10\"],` +
				`\"hash\":{\"10\":null}}}","channel":"presence-r"}`},
		// A reply the node truncated: the count stays the node's total.
		{"truncated roster", `{"type":"info","total":3,"records":[{"id":"u1"}],"truncated":true}`,
			`{"event":"pusher_internal:subscription_succeeded","data":"{\"presence\":{\"count\":3,\"ids\":[\"u1\"],` +
				`\"hash\":{\"u1\":null}}}","channel":"presence-r"}`},
		{"empty roster", `{"type":"info","total":0}`,
			`{"event":"pusher_internal:subscription_succeeded","data":"{\"presence\":{\"count\":0,\"ids\":[],\"hash\":{}}}","channel":"presence-r"}`},
		{"refused join", `{"type":"error","reason":"presence_limit"}`,
			`{"event":"pusher:subscription_error","channel":"presence-r","data":{"type":"PresenceError",` +
				`"error":"Presence unavailable on presence-r: presence_limit","status":503}}`},
		{"broker failure", `{"type":"error","total":0}`,
			`{"event":"pusher:subscription_error","channel":"presence-r","data":{"type":"PresenceError",` +
				`"error":"Presence unavailable on presence-r","status":503}}`},
		{"join (a broadcast, not a reply)", `{"id":"u1","type":"join"}`, ""},
		{"not an object", `"info"`, ""},
	}
	for _, c := range cases {
		got := Codec{}.Encode(protocol.Presence("presence-r", []byte(c.message)))
		if string(got) != c.want || (c.want == "" && got != nil) {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}

// A disconnect is a pusher:error whose code tells pusher-js what to do:
// 4200 reconnect at once, 4201 (no pong) reconnect, 4100 back off, 4009
// do not reconnect.
func TestEncodeDisconnect(t *testing.T) {
	cases := []struct {
		in   []byte
		want string
	}{
		{protocol.Disconnect(protocol.ReasonServerRestart, true), `{"event":"pusher:error","data":{"code":4200,"message":"Server restarting"}}`},
		{protocol.Disconnect(protocol.ReasonNoPong, true), `{"event":"pusher:error","data":{"code":4201,"message":"Pong reply not received"}}`},
		{protocol.Disconnect(protocol.ReasonTooSlow, true), `{"event":"pusher:error","data":{"code":4100,"message":"Client too slow: messages were not read"}}`},
		{protocol.Disconnect(protocol.ReasonTooManyConnections, true), `{"event":"pusher:error","data":{"code":4100,"message":"Over connection limit"}}`},
		{protocol.Disconnect(protocol.ReasonUnauthorized, false), `{"event":"pusher:error","data":{"code":4009,"message":"Closed by the server: unauthorized"}}`},
		{protocol.Disconnect(protocol.ReasonRemote, true), `{"event":"pusher:error","data":{"code":4200,"message":"Closed by the server: remote"}}`},
		{protocol.Disconnect(protocol.ReasonRemote, false), `{"event":"pusher:error","data":{"code":4009,"message":"Closed by the server: remote"}}`},
		{protocol.Disconnect("", false), `{"event":"pusher:error","data":{"code":4009,"message":"Closed by the server"}}`},
		{[]byte(`{"type":"disconnect","reason":"stream_gap"}`), `{"event":"pusher:error","data":{"code":4200,"message":"Closed by the server: stream_gap"}}`},
	}
	for _, c := range cases {
		if got := (Codec{}).Encode(c.in); string(got) != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.in, got, c.want)
		}
	}
}

// A publication reaches Pusher clients as an event when it is an object
// with a string "event", its data as published; presence publications
// become member events; a terminate closes; everything else is not
// delivered.
func TestAppendBroadcast(t *testing.T) {
	cases := []struct {
		name, channel, kind, data, want string
	}{
		{"string data", "news", "", `{"event":"my-event","data":"{\"a\":1}"}`,
			`{"event":"my-event","data":"{\"a\":1}","channel":"news"}`},
		{"object data", "news", "", `{"event":"e","data":{"b":2,"a":1}}`,
			`{"event":"e","data":{"a":1,"b":2},"channel":"news"}`},
		{"no data", "news", "", `{"event":"e"}`, `{"event":"e","data":null,"channel":"news"}`},
		{"user_id", "presence-r", "", `{"event":"client-x","data":1,"user_id":"u1"}`,
			`{"event":"client-x","data":1,"channel":"presence-r","user_id":"u1"}`},
		{"member added", "presence-r", "presence", `{"id":"u1","info":{"name":"A"},"type":"join"}`,
			`{"event":"pusher_internal:member_added","data":"{\"user_id\":\"u1\",\"user_info\":{\"name\":\"A\"}}","channel":"presence-r"}`},
		{"member added without info", "presence-r", "presence", `{"id":"10","type":"join"}`,
			`{"event":"pusher_internal:member_added","data":"{\"user_id\":\"10\"}","channel":"presence-r"}`},
		{"member removed", "presence-r", "presence", `{"id":"u1","type":"leave"}`,
			`{"event":"pusher_internal:member_removed","data":"{\"user_id\":\"u1\"}","channel":"presence-r"}`},
		{"terminate", "#server-to-user-u1", terminateType, `{}`, string(terminateFrame)},
		{"a string", "news", "", `"hello"`, ""},
		{"a number", "news", "", `42`, ""},
		{"an array", "news", "", `[{"event":"e"}]`, ""},
		{"no event", "news", "", `{"data":1}`, ""},
		{"empty event", "news", "", `{"event":"","data":1}`, ""},
		{"event not a string", "news", "", `{"event":1,"data":1}`, ""},
		{"not json", "news", "", `{"event":`, ""},
		{"another broadcast type", "news", "custom", `{"event":"e","data":1}`, ""},
		{"presence not json", "presence-r", "presence", `x`, ""},
	}
	for _, c := range cases {
		p := &protocol.Publication{Stream: c.channel, Data: c.data, BroadcastType: c.kind}
		got := Codec{}.AppendBroadcast(nil, c.channel, p, protocol.EncodeMessage(c.data))
		if string(got) != c.want || (c.want == "" && got != nil) {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
		prefix := "prefix"
		if got := (Codec{}).AppendBroadcast([]byte(prefix), c.channel, p, protocol.EncodeMessage(c.data)); string(got) != prefix+c.want {
			t.Errorf("%s, appended:\n got %s\nwant %s", c.name, got, prefix+c.want)
		}
	}
	tp := TerminatePublication("u1")
	if tp.Stream != "#server-to-user-u1" || tp.BroadcastType != terminateType || !tp.Transient {
		t.Errorf("terminate publication %+v", tp)
	}
}

// TagWhisper sets the sender's user_id on a client event, over any the
// data held; what is not a client event passes unchanged.
func TestTagWhisper(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{"event":"client-x","data":{"a":1}}`, `{"event":"client-x","data":{"a":1},"user_id":"u1"}`},
		{`{"event":"client-x","data":"s","user_id":"forged"}`, `{"event":"client-x","data":"s","user_id":"u1"}`},
		{`not json`, `not json`},
		{`{"event":1}`, `{"event":1}`},
	}
	for _, c := range cases {
		if got := (Codec{}).TagWhisper([]byte(c.in), "u1"); string(got) != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.in, got, c.want)
		}
	}
	// Decoded, tagged, delivered: the relayed event names the sender.
	cmd, err := Codec{}.Decode([]byte(`{"event":"client-x","channel":"presence-r","data":{"a":1},"user_id":"forged"}`))
	if err != nil {
		t.Fatal(err)
	}
	data := string(Codec{}.TagWhisper(cmd.Data, "10"))
	p := &protocol.Publication{Stream: "presence-r", Data: data}
	got := Codec{}.AppendBroadcast(nil, "presence-r", p, protocol.EncodeMessage(data))
	if want := `{"event":"client-x","data":{"a":1},"channel":"presence-r","user_id":"10"}`; string(got) != want {
		t.Errorf("relayed:\n got %s\nwant %s", got, want)
	}
}

// closeCodeOf reads the close code of the pusher:error frames errorFrame
// builds, and nothing else.
func TestCloseCodeOf(t *testing.T) {
	cases := []struct {
		frame []byte
		want  int
	}{
		{errorFrame(4009, "x"), 4009},
		{errorFrame(4200, "Server restarting"), 4200},
		{errorFrame(4301, "rate"), 4301},
		{terminateFrame, 4009},
		{Codec{}.Encode(protocol.Disconnect(protocol.ReasonNoPong, true)), 4201},
		{errorFrame(0, "code null"), 0},
		{errorFrame(999, "short"), 0},
		{errorFrame(5000, "out of range"), 0},
		{errorFrame(3999, "out of range"), 0},
		{[]byte(`{"event":"pusher:error","data":{"code":40`), 0},
		{[]byte(`{"event":"pusher:error","data":{"code":4x09}}`), 0},
		{pingFrame, 0},
		{nil, 0},
	}
	for _, c := range cases {
		if got := closeCodeOf(c.frame); got != c.want {
			t.Errorf("%s: %d, want %d", c.frame, got, c.want)
		}
	}
	if got := string(errorFrame(0, `say "hi"`)); got != `{"event":"pusher:error","data":{"code":null,"message":"say \"hi\""}}` {
		t.Errorf("errorFrame: %s", got)
	}
}
