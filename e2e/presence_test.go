package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

func presenceURL(s *server, stream string) string {
	return "http://" + s.Main + "/api/presence/" + stream + "/users"
}

func joinCmd(id, presence string) string {
	return `{"command":"join","identifier":` + quoted(id) + `,"presence":` + presence + `}`
}

func TestPresenceJoinLeaveDedupe(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public")
	p1 := dialWS(t, s, dialOpts{})
	p2 := dialWS(t, s, dialOpts{})
	p3 := dialWS(t, s, dialOpts{protocols: []string{"actioncable-v1-json"}})
	for _, c := range []*wsClient{p1, p2, p3} {
		c.welcome()
	}
	id := p1.subscribe("room-1")
	p2.subscribe("room-1")
	p3.subscribe("room-1")
	q := quoted(id)
	all := []*wsClient{p1, p2, p3}

	p1.send(joinCmd(id, `{"id":"u1","info":{"name":"Alice"}}`))
	for _, c := range all {
		c.expect(`{"type":"presence","identifier":` + q + `,"message":{"id":"u1","info":{"name":"Alice"},"type":"join"}}`)
	}
	p2.send(joinCmd(id, `{"id":"u2","info":"Bob"}`))
	for _, c := range all {
		c.expect(`{"type":"presence","identifier":` + q + `,"message":{"id":"u2","info":"Bob","type":"join"}}`)
	}
	// A second session of u1: no event, info replaced.
	p3.send(joinCmd(id, `{"id":"u1","info":{"name":"Alice (tab 2)"}}`))
	p3.barrier()
	// A session cannot switch ids.
	p2.send(joinCmd(id, `{"id":"u9"}`))
	p2.barrier()
	want := `{"type":"info","total":2,"records":[{"id":"u1","info":{"name":"Alice (tab 2)"}},{"id":"u2","info":"Bob"}]}`
	if r := do(t, "GET", presenceURL(s, "room-1"), ""); r.Body != want {
		t.Fatalf("REST presence %s\nwant %s", r.Body, want)
	}
	p2.send(`{"command":"presence","identifier":` + q + `}`)
	p2.expect(`{"type":"presence","identifier":` + q + `,"message":{"type":"info","total":2,"records":[{"info":{"name":"Alice (tab 2)"},"id":"u1"},{"info":"Bob","id":"u2"}]}}`)

	// u1 leaves only when its last session goes.
	p1.send(`{"command":"leave","identifier":` + q + `}`)
	p1.barrier()
	p3.send(`{"command":"unsubscribe","identifier":` + q + `}`)
	for _, c := range []*wsClient{p1, p2} {
		c.expect(`{"type":"presence","identifier":` + q + `,"message":{"id":"u1","type":"leave"}}`)
	}
	if r := do(t, "GET", presenceURL(s, "room-1"), ""); r.Body != `{"type":"info","total":1,"records":[{"id":"u2","info":"Bob"}]}` {
		t.Errorf("after leave: %s", r.Body)
	}

	// join without presence: nothing; without id: id "".
	p1.send(`{"command":"join","identifier":` + q + `}`)
	p1.barrier()
	p1.send(joinCmd(id, `{"info":{"name":"NoId"}}`))
	p1.expect(`{"type":"presence","identifier":` + q + `,"message":{"id":"","info":{"name":"NoId"},"type":"join"}}`)
	p2.expect(`{"type":"presence","identifier":` + q + `,"message":{"id":"","info":{"name":"NoId"},"type":"join"}}`)
}

func TestPresenceInlineInSubscribe(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public")
	c := dialWS(t, s, dialOpts{})
	c.welcome()
	id := identifier("inline")
	c.send(`{"command":"subscribe","identifier":` + quoted(id) + `,"presence":{"id":"me","info":{"n":1}}}`)
	c.expect(`{"type":"confirm_subscription","identifier":` + quoted(id) + `}`)
	c.expect(`{"type":"presence","identifier":` + quoted(id) + `,"message":{"id":"me","info":{"n":1},"type":"join"}}`)
}

func TestPresenceExpiresAfterDropNotWhileConnected(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public", "--presence_ttl", "1")
	watcher := dialWS(t, s, dialOpts{})
	watcher.welcome()
	id := watcher.subscribe("room")
	q := quoted(id)

	// A plain-protocol client stays present while connected.
	plain := dialWS(t, s, dialOpts{protocols: []string{"actioncable-v1-json"}})
	plain.welcome()
	plain.subscribe("room")
	plain.send(joinCmd(id, `{"id":"plain"}`))
	watcher.expect(`{"type":"presence","identifier":` + q + `,"message":{"id":"plain","type":"join"}}`)

	// Two clients in turn join and drop; each leave comes about one TTL
	// after its drop, so together they show more than 2 x TTL has passed.
	for i := range 2 {
		name := fmt.Sprint("dropped-", i)
		c := dialWS(t, s, dialOpts{})
		c.welcome()
		c.subscribe("room")
		c.send(joinCmd(id, `{"id":"`+name+`"}`))
		watcher.expect(`{"type":"presence","identifier":` + q + `,"message":{"id":"` + name + `","type":"join"}}`)
		dropped := time.Now()
		c.conn.UnderlyingConn().Close()
		watcher.expect(`{"type":"presence","identifier":` + q + `,"message":{"id":"` + name + `","type":"leave"}}`)
		if waited := time.Since(dropped); waited < 900*time.Millisecond {
			t.Errorf("leave came %s after the drop, before the 1s TTL", waited)
		}
	}
	if r := do(t, "GET", presenceURL(s, "room"), ""); r.Body != `{"type":"info","total":1,"records":[{"id":"plain"}]}` {
		t.Errorf("connected plain client's presence: %s", r.Body)
	}
}

func TestPresenceWithoutBroker(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public", "--broker", "none")
	c := dialWS(t, s, dialOpts{})
	c.welcome()
	id := c.subscribe("legacy")
	c.send(joinCmd(id, `{"id":"u"}`))
	c.barrier()
	c.send(`{"command":"presence","identifier":` + quoted(id) + `}`)
	c.expect(`{"type":"presence","identifier":` + quoted(id) + `,"message":{"type":"error","total":0}}`)
	c.send(`{"command":"history","identifier":` + quoted(id) + `,"history":{"since":1}}`)
	c.expect(`{"type":"reject_history","identifier":` + quoted(id) + `}`)
	publish(t, s, `{"stream":"legacy","data":"{\"a\":1}"}`)
	c.expect(`{"identifier":` + quoted(id) + `,"message":{"a":1}}`)
}

func TestPresenceOnSignedStreamsNeedsStreamsPresence(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--noauth", "--secret", "k", "--streams_presence=false")
	c := dialWS(t, s, dialOpts{header: http.Header{}})
	c.welcome()
	id := signedIdentifier(signFor("room", "k"))
	c.send(subscribeCmd(id))
	c.expect(`{"type":"confirm_subscription","identifier":` + quoted(id) + `}`)
	c.send(joinCmd(id, `{"id":"u"}`))
	c.send(`{"command":"presence","identifier":` + quoted(id) + `}`)
	c.barrier()
}
