package node

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cablehub/cablehub/server/broker"
	"github.com/cablehub/cablehub/server/identity"
	"github.com/cablehub/cablehub/server/protocol"
	"github.com/cablehub/cablehub/server/streams"
)

// The sessions below are a transport's that authorizes per connection
// (Pusher's): SessionOptions.Router, Member, NewSID, Anonymous,
// LeaveOnClose and PongTimeout.

// memberRouter routes every identifier to the stream of its name, with
// whispers and presence; a subscribe whose data is a JSON string joins as
// that member, with info {"name":<id>}; identifiers starting with
// "rejected" are refused, those starting with "notrouted" are not routed
// (streams.ErrNotRouted). It records the sids it routes for.
type memberRouter struct {
	mu   sync.Mutex
	sids []string
}

func (r *memberRouter) Route(sid string, cmd *protocol.Command) (*streams.Subscription, error) {
	r.mu.Lock()
	r.sids = append(r.sids, sid)
	r.mu.Unlock()
	switch {
	case strings.HasPrefix(cmd.Identifier, "rejected"):
		return nil, errors.New("not authorized")
	case strings.HasPrefix(cmd.Identifier, "notrouted"):
		return nil, streams.ErrNotRouted
	}
	sub := &streams.Subscription{Stream: cmd.Identifier, Whisper: true, Presence: true}
	var id string
	if json.Unmarshal(cmd.Data, &id) == nil {
		sub.Member = &streams.Member{ID: id, Info: json.RawMessage(`{"name":"` + id + `"}`)}
	}
	return sub, nil
}

func (r *memberRouter) routed() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.sids...)
}

// openOn serves a new connection through g with options o, named sid
// (unless empty: the node's choice), its request carrying headers.
func openOn(g *Gate, sid string, o SessionOptions, headers ...string) *fakeConn {
	r := httptest.NewRequest("GET", "/app/key", nil)
	if sid != "" {
		r.Header.Set("X-Test-Sid", sid)
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ": ")
		r.Header.Set(name, value)
	}
	c := newFakeConn()
	g.serve(c, r, &o)
	return c
}

// connectWith opens a session named sid with options o and takes its
// welcome.
func (e *env) connectWith(t *testing.T, sid string, o SessionOptions) *fakeConn {
	t.Helper()
	c := openOn(e.handler, sid, o)
	c.expect(t, `{"type":"welcome","sid":"`+sid+`"}`)
	return c
}

// subscribeMember subscribes c to room as member id (through memberRouter)
// and takes the confirmation, then the presence info it gets instead of
// its own join event: records, the stream's members.
func subscribeMember(t *testing.T, c *fakeConn, room, id string, total int, records string) {
	t.Helper()
	c.command(`{"command":"subscribe","identifier":"` + room + `","data":"` + id + `"}`)
	info := `{"type":"info","total":` + strconv.Itoa(total) + `,"records":[` + records + `]}`
	c.expect(t, presenceEvent(room, info), `{"type":"confirm_subscription","identifier":"`+room+`"}`)
}

// record is member id's presence record, as memberRouter joins it.
func record(id string) string { return `{"info":{"name":"` + id + `"},"id":"` + id + `"}` }

// memberJoined is the event the other subscribers of room get when id
// joins it.
func memberJoined(room, id string) string {
	return presenceEvent(room, `{"id":"`+id+`","info":{"name":"`+id+`"},"type":"join"}`)
}

// A route with a Member joins the session to the stream's presence before
// it is confirmed: the others get the join event, the joiner does not,
// and gets the presence info (itself included), then its confirmation.
// The router decides every subscription, for the session's sid.
func TestSessionRouterMember(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	r := &memberRouter{}
	o := SessionOptions{Router: r}
	watcher := e.connectWith(t, "w", o)
	subscribe(t, watcher, "room")
	a := e.connectWith(t, "a", o)
	subscribeMember(t, a, "room", "u1", 1, record("u1"))
	watcher.expect(t, memberJoined("room", "u1"))
	pingPong(t, a) // no join event of its own

	// The same member from another session: nobody is told, the session
	// gets the roster.
	b := e.connectWith(t, "b", o)
	subscribeMember(t, b, "room", "u1", 1, record("u1"))
	c := e.connectWith(t, "c", o)
	subscribeMember(t, c, "room", "u2", 2, record("u1")+","+record("u2"))
	watcher.expect(t, memberJoined("room", "u2"))
	a.expect(t, memberJoined("room", "u2"))
	b.expect(t, memberJoined("room", "u2"))
	pingPong(t, watcher)

	a.command(`{"command":"subscribe","identifier":"rejected-1","data":"u1"}`)
	a.expect(t, `{"type":"reject_subscription","identifier":"rejected-1"}`)
	// In place of the node's channels: testRouter leaves "app" ones to an
	// App, and this node has none.
	subscribe(t, a, "app-room")
	if got, want := strings.Join(r.routed(), ","), "w,a,b,c,a,a"; got != want {
		t.Errorf("routed for %s, want %s", got, want)
	}
}

// With LeaveOnClose a session's presence ends with it: the others see it
// leave at once (the broker would keep it a minute). Without, it stays.
func TestSessionLeaveOnClose(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, Options{}, broker.MemoryOptions{SessionsTTL: time.Minute, HistoryTTL: time.Minute, PresenceTTL: time.Minute})
	r := &memberRouter{}
	watcher := e.connectWith(t, "w", SessionOptions{Router: r})
	subscribe(t, watcher, "room")
	leaving := e.connectWith(t, "leaving", SessionOptions{Router: r, LeaveOnClose: true})
	subscribeMember(t, leaving, "room", "u1", 1, record("u1"))
	watcher.expect(t, memberJoined("room", "u1"))
	staying := e.connectWith(t, "staying", SessionOptions{Router: r})
	subscribeMember(t, staying, "room", "u2", 2, record("u1")+","+record("u2"))
	watcher.expect(t, memberJoined("room", "u2"))
	leaving.expect(t, memberJoined("room", "u2"))

	leaving.goAway(t)
	watcher.expect(t, presenceEvent("room", `{"id":"u1","type":"leave"}`))
	staying.goAway(t)
	pingPong(t, watcher)
	watcher.command(`{"command":"presence","identifier":"room"}`)
	watcher.expect(t, presenceEvent("room", `{"type":"info","total":1,"records":[`+record("u2")+`]}`))
}

// countingAuth is headerAuth, counting its calls.
type countingAuth struct{ calls atomic.Int32 }

func (a *countingAuth) Authenticate(r *http.Request) (identity.Identity, error) {
	a.calls.Add(1)
	return headerAuth{}.Authenticate(r)
}

// Anonymous sessions are welcomed without asking the authenticator, and
// have no identifiers, whatever the request carries.
func TestSessionAnonymous(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	auth := &countingAuth{}
	g := &Gate{node: e.node, auth: auth, testSID: testSID}
	refused := openOn(g, "refused", SessionOptions{}, "X-Identifiers: bad")
	refused.expectClosed(t, 1000, "Auth Failed")
	if auth.calls.Load() != 1 {
		t.Fatalf("%d authentications", auth.calls.Load())
	}
	for _, sid := range []string{"bad", "user-1"} {
		c := openOn(g, sid, SessionOptions{Anonymous: true}, "X-Identifiers: "+sid)
		c.expect(t, `{"type":"welcome","sid":"`+sid+`"}`)
		e.node.mu.Lock()
		s := e.node.bySID[sid]
		e.node.mu.Unlock()
		if s == nil || s.identifiers != "" {
			t.Errorf("%s: session %v", sid, s)
		}
	}
	if auth.calls.Load() != 1 {
		t.Errorf("anonymous sessions authenticated: %d calls", auth.calls.Load())
	}
}

// On a node with an App, an anonymous routed session is welcomed by the
// node and never reaches the App: what its router does not route is
// rejected, not sent to the App as a channel of its own.
func TestSessionRouterWithApp(t *testing.T) {
	t.Parallel()
	app := &scriptedApp{}
	e := newAppEnv(t, app, Options{})
	c := openOn(e.handler, "p", SessionOptions{Anonymous: true, Router: &memberRouter{}}, "X-Identifiers: none")
	c.expect(t, `{"type":"welcome","sid":"p"}`)
	c.command(`{"command":"subscribe","identifier":"notrouted-1"}`)
	c.expect(t, `{"type":"reject_subscription","identifier":"notrouted-1"}`)
	subscribe(t, c, "room")
	c.goAway(t)
	app.mu.Lock()
	defer app.mu.Unlock()
	if len(app.calls) != 0 {
		t.Errorf("the App was called: %+v", app.calls)
	}
}

// NewSID names the session, and is asked again while the name it gives is
// taken; the router decides for the sid it made.
func TestSessionNewSID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.connect(t, "taken")
	ids := []string{"taken", "taken", "fresh"}
	calls := 0
	r := &memberRouter{}
	o := SessionOptions{Router: r, NewSID: func() string {
		calls++
		return ids[min(calls, len(ids))-1]
	}}
	c := openOn(e.handler, "", o)
	c.expect(t, `{"type":"welcome","sid":"fresh"}`)
	if calls != 3 {
		t.Errorf("NewSID called %d times", calls)
	}
	subscribe(t, c, "room")
	if got := r.routed(); len(got) != 1 || got[0] != "fresh" {
		t.Errorf("routed for %q", got)
	}
}

// With a PongTimeout of its own a session that does not answer a ping
// within it is closed, even when the node requires no pongs; one that
// answers stays, and so does one without it (outside the extended
// protocol, pongs are not due).
func TestSessionPongTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	pings := SessionOptions{PingInterval: 300 * time.Millisecond}
	required := pings
	required.PongTimeout = time.Second
	silent := e.connectWith(t, "silent", required)
	answering := e.connectWith(t, "answering", required)
	plain := e.connectWith(t, "plain", pings)

	for i := range 6 {
		if got := answering.next(t, "a ping"); !strings.HasPrefix(got, `{"type":"ping","message":`) {
			t.Fatalf("ping %d: %s", i, got)
		}
		answering.command(`{"command":"pong"}`)
	}
	silent.expectClosed(t, 1000, "No Pong")
	for {
		got := silent.next(t, "the disconnect")
		if strings.HasPrefix(got, `{"type":"ping"`) {
			continue
		}
		if got != `{"type":"disconnect","reason":"no_pong","reconnect":true}` {
			t.Fatalf("last frame %s", got)
		}
		break
	}
	// The plain session has been pinged long enough to have been closed.
	plain.await(t, "three pings", func() bool { return len(plain.frames) >= 3 })
	for _, c := range []*fakeConn{answering, plain} {
		c.mu.Lock()
		closing, frames := c.closing, len(c.frames)
		c.mu.Unlock()
		if closing {
			t.Errorf("closed (%d frames pending)", frames)
		}
	}
}

// tagCodec is Action Cable with whispers that carry their sender's member
// (as the Pusher codec adds user_id).
type tagCodec struct{ protocol.ActionCable }

func (tagCodec) TagWhisper(data []byte, member string) []byte {
	return []byte(`{"from":"` + member + `","whisper":` + string(data) + `}`)
}

// A whisper on a subscription with a Member is tagged by a codec that
// tags: every other subscriber gets the tagged data. Without a member, or
// with a codec that does not tag, it goes as sent.
func TestSessionWhisperTagged(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	r := &memberRouter{}
	tagging := SessionOptions{Router: r, Codec: tagCodec{}}
	anon := e.connectWith(t, "anon", tagging)
	subscribe(t, anon, "room")
	member := e.connectWith(t, "member", tagging)
	subscribeMember(t, member, "room", "u1", 1, record("u1"))
	anon.expect(t, memberJoined("room", "u1"))
	plain := e.connectWith(t, "plain", SessionOptions{Router: r})
	subscribeMember(t, plain, "room", "u2", 2, record("u1")+","+record("u2"))
	anon.expect(t, memberJoined("room", "u2"))
	member.expect(t, memberJoined("room", "u2"))

	member.command(`{"command":"whisper","identifier":"room","data":{"typing":true}}`)
	tagged := `{"identifier":"room","message":{"from":"u1","whisper":{"typing":true}}}`
	anon.expect(t, tagged)
	plain.expect(t, tagged)
	anon.command(`{"command":"whisper","identifier":"room","data":{"typing":1}}`)
	member.expect(t, `{"identifier":"room","message":{"typing":1}}`)
	plain.expect(t, `{"identifier":"room","message":{"typing":1}}`)
	plain.command(`{"command":"whisper","identifier":"room","data":{"typing":2}}`)
	member.expect(t, `{"identifier":"room","message":{"typing":2}}`)
	anon.expect(t, `{"identifier":"room","message":{"typing":2}}`)
	pingPong(t, member)
}

// What reaches a joining member's stream while its roster is read comes
// after the roster and the confirmation: a client that takes the roster
// as the whole truth would otherwise lose a member whose join came first.
func TestSessionRouterMemberHoldsLiveUntilRoster(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	a := e.connectWith(t, "a", SessionOptions{Router: &memberRouter{}})
	e.broker.mu.Lock()
	e.broker.duringPresenceInfo = func() {
		pub := protocol.Publication{Stream: "room", Data: `{"x":1}`, Transient: true}
		if err := e.node.Broadcast(context.Background(), []protocol.Publication{pub}); err != nil {
			t.Error(err)
		}
	}
	e.broker.mu.Unlock()
	subscribeMember(t, a, "room", "u1", 1, record("u1"))
	a.expect(t, `{"identifier":"room","message":{"x":1}}`)
}
