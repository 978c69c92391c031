package node

import (
	"testing"
)

// presenceEvent is the frame every subscriber of room gets when id joins
// or leaves it; message is the event's JSON.
func presenceEvent(room, message string) string {
	return `{"type":"presence","identifier":"` + room + `","message":` + message + `}`
}

// A join tells every subscriber of the stream (the joiner too) once per
// presence id; presence lists the records; the id leaves when its last
// session leaves.
func TestPresenceJoinInfoLeave(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	a, b := e.connect(t, "a"), e.connect(t, "b")
	subscribe(t, b, "room")
	a.command(`{"command":"subscribe","identifier":"room","presence":{"id":"u1","info":{"z":1, "name":"A"}}}`)
	join := presenceEvent("room", `{"id":"u1","info":{"name":"A","z":1},"type":"join"}`)
	a.expect(t, `{"type":"confirm_subscription","identifier":"room"}`, join)
	b.expect(t, join)

	b.command(`{"command":"presence","identifier":"room"}`)
	b.expect(t, presenceEvent("room", `{"type":"info","total":1,"records":[{"info":{"name":"A","z":1},"id":"u1"}]}`))

	// The same id again, from a's session and from b's: no new event.
	a.command(`{"command":"join","identifier":"room","presence":{"id":"u1"}}`)
	b.command(`{"command":"join","identifier":"room","presence":{"id":"u1"}}`)
	a.command(`{"command":"leave","identifier":"room"}`) // b still holds u1
	pingPong(t, a)
	pingPong(t, b)

	b.command(`{"command":"leave","identifier":"room"}`)
	leave := presenceEvent("room", `{"id":"u1","type":"leave"}`)
	a.expect(t, leave)
	b.expect(t, leave)
	a.command(`{"command":"presence","identifier":"room"}`)
	a.expect(t, presenceEvent("room", `{"type":"info","total":0}`))
}

// A session is present on at most MaxPresence streams, with info of at
// most MaxPresenceInfo bytes; a refused join is a presence error to the
// joiner only.
func TestPresenceLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{MaxPresence: 1, MaxPresenceInfo: 12})
	c := e.connect(t, "a")
	subscribe(t, c, "one")
	subscribe(t, c, "two")
	c.command(`{"command":"join","identifier":"one","presence":{"id":"u1"}}`)
	c.expect(t, presenceEvent("one", `{"id":"u1","type":"join"}`))
	c.command(`{"command":"join","identifier":"two","presence":{"id":"u1"}}`)
	c.expect(t, presenceEvent("two", `{"type":"error","reason":"presence_limit"}`))
	c.command(`{"command":"join","identifier":"one","presence":{"id":"u1","info":"far too long"}}`)
	c.expect(t, presenceEvent("one", `{"type":"error","reason":"presence_info_too_large"}`))
	c.command(`{"command":"join","identifier":"one","presence":{"id":"u1","info":"short"}}`)
	pingPong(t, c) // already present: the info changes, no event

	c.command(`{"command":"leave","identifier":"one"}`)
	c.expect(t, presenceEvent("one", `{"id":"u1","type":"leave"}`))
	c.command(`{"command":"join","identifier":"two","presence":{"id":"u1"}}`)
	c.expect(t, presenceEvent("two", `{"id":"u1","type":"join"}`))
}

// With PresenceFromIdentifiers the presence id is the connection's
// identifiers, whatever the client says; anonymous sessions cannot join.
func TestPresenceFromIdentifiers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{PresenceFromIdentifiers: true})
	anon, user := e.connect(t, "a"), e.connect(t, "b", "X-Identifiers: user-1")
	subscribe(t, anon, "room")
	subscribe(t, user, "room")
	anon.command(`{"command":"join","identifier":"room","presence":{"id":"someone"}}`)
	anon.expect(t, presenceEvent("room", `{"type":"error","reason":"presence_requires_identifiers"}`))
	user.command(`{"command":"join","identifier":"room","presence":{"id":"someone"}}`)
	join := presenceEvent("room", `{"id":"user-1","type":"join"}`)
	user.expect(t, join)
	anon.expect(t, join)
}

// Unsubscribing leaves the stream's presence at once; a session that ends
// stays present for the broker's presence TTL, then leaves.
func TestPresenceLeftOnUnsubscribeAndEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	a, b := e.connect(t, "a"), e.connect(t, "b")
	subscribe(t, b, "room")
	join := presenceEvent("room", `{"id":"u1","type":"join"}`)
	leave := presenceEvent("room", `{"id":"u1","type":"leave"}`)

	a.command(`{"command":"subscribe","identifier":"room","presence":{"id":"u1"}}`)
	a.expect(t, `{"type":"confirm_subscription","identifier":"room"}`, join)
	b.expect(t, join)
	a.command(`{"command":"unsubscribe","identifier":"room"}`)
	b.expect(t, leave)
	pingPong(t, a)

	a.command(`{"command":"subscribe","identifier":"room","presence":{"id":"u1"}}`)
	a.expect(t, `{"type":"confirm_subscription","identifier":"room"}`, join)
	b.expect(t, join)
	a.goAway(t)
	b.expect(t, leave) // once presenceTTL has passed
}
