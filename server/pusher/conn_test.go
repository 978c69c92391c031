package pusher

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/cablehub/cablehub/server/protocol"
)

// recordingConn is the transport under a conn: it records what the conn
// sends and how it closes, and hands frames to the reader Serve got.
type recordingConn struct {
	sent   []string
	closes []closeCall
	handle func([]byte)
	end    func()
	served bool
}

type closeCall struct {
	code   int
	reason string
	last   string
}

func (r *recordingConn) Send(frame, _ []byte) bool {
	r.sent = append(r.sent, string(frame))
	return true
}

func (r *recordingConn) Close(code int, reason string, last []byte) {
	r.closes = append(r.closes, closeCall{code, reason, string(last)})
}

func (r *recordingConn) Abort()          {}
func (r *recordingConn) OnSlow(f func()) {}

func (r *recordingConn) Serve(handle func([]byte), end func()) {
	r.handle, r.end, r.served = handle, end, true
}

// connHarness is a conn of socket docSocket of docApp, served: frames go
// in through the reader and what the session would get is recorded.
type connHarness struct {
	c       *conn
	rec     *recordingConn
	handled []string
}

func newConnHarness() *connHarness {
	h := &connHarness{rec: &recordingConn{}}
	h.c = &conn{Connection: h.rec, app: &docApp, socketID: docSocket}
	h.c.Serve(func(frame []byte) { h.handled = append(h.handled, string(frame)) }, nil)
	return h
}

// frame reads one client frame and returns what it made: the frames sent
// back and the frames passed to the session.
func (h *connHarness) frame(f string) (sent, handled []string) {
	s, d := len(h.rec.sent), len(h.handled)
	h.rec.handle([]byte(f))
	return h.rec.sent[s:], h.handled[d:]
}

// refusal is the pusher:error (code null) answering a frame.
func refusal(msg string) string { return string(errorFrame(0, msg)) }

// The events the session handles go to it as they came, and nothing is
// answered for them here.
func TestConnPassesEvents(t *testing.T) {
	h := newConnHarness()
	for _, f := range []string{
		`{"event":"pusher:subscribe","data":{"channel":"news"}}`,
		`{"event":"pusher:unsubscribe","data":{"channel":"news"}}`,
		`{"event":"pusher:ping","data":{}}`,
		`{"event":"pusher:pong","data":{}}`,
		`{"event":"pusher:subscribe","data":"not an object"}`, // the session's to refuse
		`{"event":"client-x","channel":"private-a","data":{"a":1}}`,
		`{"event":"client-x","channel":"presence-r","data":"s"}`,
	} {
		sent, handled := h.frame(f)
		if len(sent) != 0 || len(handled) != 1 || handled[0] != f {
			t.Errorf("%s: sent %q, handled %q", f, sent, handled)
		}
	}
}

// What is not a Pusher event, an event Pusher does not define, and a
// client event outside private and presence channels are answered with a
// pusher:error of code null, not passed on; the connection keeps working.
func TestConnRefuses(t *testing.T) {
	invalid := refusal(`Invalid message: a JSON object with a string "event" is expected`)
	onlyPrivate := refusal("Client event rejected: only supported on private and presence channels")
	cases := []struct{ frame, want string }{
		{`not json`, invalid},
		{``, invalid},
		{`[]`, invalid},
		{`{}`, invalid},
		{`{"event":""}`, invalid},
		{`{"event":1}`, invalid},
		{`{"event":"client-x","channel":1}`, invalid},
		{`{"event":"pusher:whatever"}`, refusal("Unsupported event: pusher:whatever")},
		{`{"event":"pusher_internal:subscription_succeeded","channel":"news"}`,
			refusal("Unsupported event: pusher_internal:subscription_succeeded")},
		{`{"event":"my-event","channel":"private-a"}`, refusal("Unsupported event: my-event")},
		{`{"event":"client-x","channel":"news","data":{}}`, onlyPrivate},
		{`{"event":"client-x","data":{}}`, onlyPrivate},
		{`{"event":"client-x","channel":"#server-to-user-u1"}`, onlyPrivate},
		{`{"event":"client-x","channel":"Private-a"}`, onlyPrivate},
	}
	h := newConnHarness()
	for _, c := range cases {
		sent, handled := h.frame(c.frame)
		if len(handled) != 0 || len(sent) != 1 || sent[0] != c.want {
			t.Errorf("%s:\n sent %q\n want %s\n handled %q", c.frame, sent, c.want, handled)
		}
	}
	if _, handled := h.frame(`{"event":"pusher:ping"}`); len(handled) != 1 || len(h.rec.closes) != 0 {
		t.Errorf("after the refusals: handled %q, closes %+v", handled, h.rec.closes)
	}
}

// ClientEventLimit client events pass per ClientEventWindow; the next are
// refused with a 4301 pusher:error, not passed on, until a new window
// begins.
func TestConnClientEventLimit(t *testing.T) {
	h := newConnHarness()
	now := int64(5 * time.Second)
	h.c.now = func() int64 { return now }
	event := `{"event":"client-x","channel":"private-a","data":{}}`
	limited := `{"event":"pusher:error","data":{"code":4301,"message":"Client event rejected: rate limit exceeded"}}`
	send := func(what string, wantPassed bool) {
		t.Helper()
		sent, handled := h.frame(event)
		switch {
		case wantPassed && (len(handled) != 1 || len(sent) != 0):
			t.Fatalf("%s: refused: sent %q", what, sent)
		case !wantPassed && (len(handled) != 0 || len(sent) != 1 || sent[0] != limited):
			t.Fatalf("%s: sent %q, handled %q", what, sent, handled)
		}
	}
	for i := range ClientEventLimit {
		send(fmt.Sprint("event ", i+1), true)
	}
	send("one over the limit", false)
	now += int64(ClientEventWindow) - 1
	send("at the window's end", false)
	// Other events are not limited.
	if _, handled := h.frame(`{"event":"pusher:ping"}`); len(handled) != 1 {
		t.Fatal("a ping was limited")
	}
	now++
	for range ClientEventLimit {
		send("in the next window", true)
	}
	send("over the limit again", false)
}

// A sign-in verified against the socket is answered pusher:signin_success
// and subscribes the session to the user's stream, with a subscription
// the Router accepts; one sign-in per connection.
func TestConnSignin(t *testing.T) {
	h := newConnHarness()
	ud := `{"id":"u2"}`
	auth := docApp.UserAuth(docSocket, ud)
	sent, handled := h.frame(signinFrame(ud, auth))
	want := `{"event":"pusher:signin_success","data":"{\"user_data\":\"{\\\"id\\\":\\\"u2\\\"}\"}"}`
	if len(sent) != 1 || sent[0] != want {
		t.Fatalf("sent %q\nwant %s", sent, want)
	}
	wantSub := `{"event":"pusher:subscribe","data":{"channel":"#server-to-user-u2","auth":"` + auth +
		`","channel_data":"","user_data":"{\"id\":\"u2\"}"}}`
	if len(handled) != 1 || handled[0] != wantSub {
		t.Fatalf("handled %q\nwant %s", handled, wantSub)
	}
	cmd, err := Codec{}.Decode([]byte(handled[0]))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := (&Router{App: &docApp}).Route(docSocket, cmd)
	if err != nil || sub.Stream != "#server-to-user-u2" {
		t.Fatalf("the sign-in's subscription: %+v, %v", sub, err)
	}

	other := `{"id":"u3"}`
	sent, handled = h.frame(signinFrame(other, docApp.UserAuth(docSocket, other)))
	if len(handled) != 0 || len(sent) != 1 || sent[0] != refusal("Already signed in") {
		t.Errorf("second sign-in: sent %q, handled %q", sent, handled)
	}
}

// A sign-in with a signature of anything but this socket's user_data, or
// without an id, is refused and changes nothing: a good one still passes.
func TestConnSigninRefused(t *testing.T) {
	ud := `{"id":"u2"}`
	bad := refusal("Sign-in refused: invalid signature or user_data without an id")
	malformed := refusal("Invalid pusher:signin: data must hold user_data and auth")
	forger := App{Key: docApp.Key, Secret: "guess"}
	cases := []struct{ name, frame, want string }{
		{"forged", signinFrame(ud, forger.UserAuth(docSocket, ud)), bad},
		{"other socket", signinFrame(ud, docApp.UserAuth("1234.1235", ud)), bad},
		{"other user_data", signinFrame(`{"id":"u3"}`, docApp.UserAuth(docSocket, ud)), bad},
		{"channel signature", signinFrame(ud, docApp.ChannelAuth(docSocket, "#server-to-user-u2", "")), bad},
		{"no auth", signinFrame(ud, ""), bad},
		{"no id", signinFrame(`{"name":"B"}`, docApp.UserAuth(docSocket, `{"name":"B"}`)), bad},
		{"float id", signinFrame(`{"id":1.5}`, docApp.UserAuth(docSocket, `{"id":1.5}`)), bad},
		{"data a string", `{"event":"pusher:signin","data":"x"}`, malformed},
		{"no data", `{"event":"pusher:signin"}`, malformed},
	}
	h := newConnHarness()
	for _, c := range cases {
		sent, handled := h.frame(c.frame)
		if len(handled) != 0 || len(sent) != 1 || sent[0] != c.want {
			t.Errorf("%s: sent %q, handled %q", c.name, sent, handled)
		}
	}
	if sent, handled := h.frame(signinFrame(ud, docApp.UserAuth(docSocket, ud))); len(sent) != 1 || len(handled) != 1 {
		t.Errorf("a good sign-in after refused ones: sent %q, handled %q", sent, handled)
	}
}

func signinFrame(userData, auth string) string {
	b, _ := json.Marshal(map[string]any{"event": "pusher:signin", "data": signinData{UserData: userData, Auth: auth}})
	return string(b)
}

// The end of a terminated user (terminateFrame, as AppendBroadcast makes
// it) closes the connection with 4009 rather than being sent; other
// frames pass.
func TestConnSendTerminate(t *testing.T) {
	h := newConnHarness()
	frame := Codec{}.AppendBroadcast(nil, "#server-to-user-u1", ptr(TerminatePublication("u1")), []byte(`{}`))
	if h.c.Send(frame, nil) {
		t.Error("the terminate frame was taken as sent")
	}
	want := []closeCall{{4009, "terminated", string(terminateFrame)}}
	if len(h.rec.sent) != 0 || len(h.rec.closes) != 1 || h.rec.closes[0] != want[0] {
		t.Fatalf("sent %q, closes %+v", h.rec.sent, h.rec.closes)
	}
	same := make([]byte, len(terminateFrame))
	copy(same, terminateFrame)
	same[len(same)-3] = 'X' // same length, another frame
	if !h.c.Send(same, nil) || len(h.rec.sent) != 1 || h.rec.sent[0] != string(same) {
		t.Errorf("a frame of the same length: sent %q", h.rec.sent)
	}
}

func ptr[T any](v T) *T { return &v }

// A session's close takes the Pusher code of its last frame, a
// pusher:error; without one, the code it gave.
func TestConnCloseCode(t *testing.T) {
	cases := []struct {
		code int
		last []byte
		want int
	}{
		{1000, Codec{}.Encode(protocol.Disconnect(protocol.ReasonNoPong, true)), 4201},
		{1000, Codec{}.Encode(protocol.Disconnect(protocol.ReasonServerRestart, true)), 4200},
		{1000, Codec{}.Encode(protocol.Disconnect(protocol.ReasonTooSlow, true)), 4100},
		{1000, Codec{}.Encode(protocol.Disconnect(protocol.ReasonUnauthorized, false)), 4009},
		{1011, nil, 1011},
		{1000, pingFrame, 1000},
		{1000, errorFrame(0, "no code"), 1000},
	}
	for _, c := range cases {
		h := newConnHarness()
		h.c.Close(c.code, "why", c.last)
		if len(h.rec.closes) != 1 || h.rec.closes[0] != (closeCall{c.want, "why", string(c.last)}) {
			t.Errorf("%d %s: %+v, want code %d", c.code, c.last, h.rec.closes, c.want)
		}
	}
}

// Serve hands the transport the conn's reader and an end that also counts
// the connection closed; without a handler, none.
func TestConnServe(t *testing.T) {
	gauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "clients"})
	rec := &recordingConn{}
	c := &conn{Connection: rec, app: &docApp, events: &Metrics{Clients: gauge}}
	ended := 0
	c.Serve(func([]byte) {}, func() { ended++ })
	if !rec.served || rec.handle == nil || gaugeValue(gauge) != 1 {
		t.Fatalf("served %v, gauge %v", rec.served, gaugeValue(gauge))
	}
	rec.end()
	if ended != 1 || gaugeValue(gauge) != 0 {
		t.Errorf("ended %d, gauge %v", ended, gaugeValue(gauge))
	}
	refused := &recordingConn{}
	(&conn{Connection: refused, events: &Metrics{Clients: gauge}}).Serve(nil, nil)
	if refused.handle != nil || refused.end == nil {
		t.Fatal("a connection without a session reads frames, or cannot end")
	}
	refused.end()
	if gaugeValue(gauge) != 0 {
		t.Errorf("gauge %v", gaugeValue(gauge))
	}
}

func gaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return -1
	}
	return m.GetGauge().GetValue()
}

// Socket ids are two decimal numbers joined by a dot, as the SDKs check,
// and random; the session's generator keeps the id it gives for
// sign-ins.
func TestNewSocketID(t *testing.T) {
	format := regexp.MustCompile(`^\d+\.\d+$`)
	seen, left, right := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for range 1000 {
		id := NewSocketID()
		if !format.MatchString(id) {
			t.Fatalf("%q", id)
		}
		if seen[id] {
			t.Fatalf("%q twice", id)
		}
		seen[id] = true
		l, r, _ := strings.Cut(id, ".")
		left[l], right[r] = true, true
	}
	// Both numbers are random (of 10^9 values: repeats are rare).
	if len(left) < 990 || len(right) < 990 {
		t.Errorf("%d and %d distinct numbers in 1000 ids", len(left), len(right))
	}
	c := &conn{}
	if id := c.nextSocketID(); id != c.socketID || !format.MatchString(id) {
		t.Errorf("nextSocketID %q, socket %q", id, c.socketID)
	}
}
