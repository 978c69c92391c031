package node

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/cablehub/cablehub/server/broker"
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

// A join of a new id on a stream at the broker's limit of ids is a
// presence error to the joiner only, and its session goes on: it still
// gets events and answers, and joins once a place is free.
func TestPresenceStreamFull(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, Options{}, broker.MemoryOptions{PresenceTTL: presenceTTL, PresenceMaxMembers: 1})
	a, b := e.connect(t, "a"), e.connect(t, "b")
	subscribe(t, a, "room")
	subscribe(t, b, "room")
	a.command(`{"command":"join","identifier":"room","presence":{"id":"u1"}}`)
	join := presenceEvent("room", `{"id":"u1","type":"join"}`)
	a.expect(t, join)
	b.expect(t, join)
	b.command(`{"command":"join","identifier":"room","presence":{"id":"u2","info":"B"}}`)
	b.expect(t, presenceEvent("room", `{"type":"error","reason":"presence_stream_full"}`))
	pingPong(t, a) // nobody else heard of it
	b.command(`{"command":"presence","identifier":"room"}`)
	b.expect(t, presenceEvent("room", `{"type":"info","total":1,"records":[{"id":"u1"}]}`))

	a.command(`{"command":"leave","identifier":"room"}`)
	b.expect(t, presenceEvent("room", `{"id":"u1","type":"leave"}`))
	b.command(`{"command":"join","identifier":"room","presence":{"id":"u2","info":"B"}}`)
	b.expect(t, presenceEvent("room", `{"id":"u2","info":"B","type":"join"}`))
}

// A presence reply stays within Options.MaxPresenceReply: the records that
// fit, in id order, the real total, and "truncated":true.
func TestPresenceReplyWithinLimit(t *testing.T) {
	t.Parallel()
	const limit = 1000
	e := newEnv(t, Options{MaxPresenceReply: limit})
	watcher := e.connect(t, "watcher")
	subscribe(t, watcher, "room")
	info := `"` + strings.Repeat("i", 90) + `"`
	for i := range 20 {
		c := e.connect(t, fmt.Sprint("s", i))
		subscribe(t, c, "room")
		c.command(fmt.Sprintf(`{"command":"join","identifier":"room","presence":{"id":"u%02d","info":%s}}`, i, info))
		watcher.next(t, "join event")
	}
	watcher.command(`{"command":"presence","identifier":"room"}`)
	got := watcher.next(t, "presence reply")
	var reply struct {
		Message struct {
			Total     int
			Truncated bool
			Records   []struct{ ID, Info string }
		}
	}
	if err := json.Unmarshal([]byte(got), &reply); err != nil || len(got) > limit {
		t.Fatalf("reply of %d bytes (limit %d): %v\n%s", len(got), limit, err, got)
	}
	m := reply.Message
	if m.Total != 20 || !m.Truncated || len(m.Records) == 0 || len(m.Records) == 20 {
		t.Fatalf("total %d, truncated %v, %d records", m.Total, m.Truncated, len(m.Records))
	}
	for i, r := range m.Records {
		if r.ID != fmt.Sprintf("u%02d", i) || `"`+r.Info+`"` != info {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	// One more record would not have fitted.
	if len(got)+len(`,{"info":`+info+`,"id":"u00"}`) <= limit {
		t.Errorf("%d records (%d bytes) left room for another", len(m.Records), len(got))
	}
}

// presenceReply fills the limit exactly: a reply that fits is sent whole,
// one byte less leaves the last record out; a limit no record fits in
// leaves the records out.
func TestPresenceReplyBoundary(t *testing.T) {
	info := &broker.PresenceInfo{Total: 3, Records: []broker.PresenceRecord{
		{ID: "a", Info: json.RawMessage(`{"n":1}`)}, {ID: "b"}, {ID: "c<", Info: json.RawMessage(`"x"`)},
	}}
	full := `{"type":"presence","identifier":"room","message":{"type":"info","total":3,"records":[{"info":{"n":1},"id":"a"},{"id":"b"},{"info":"x","id":"c\u003c"}]}}`
	room := len(full) + len(`,"truncated":true`)
	none := `{"type":"presence","identifier":"room","message":{"type":"info","total":3,"truncated":true}}`
	cases := []struct {
		max  int
		want string
	}{
		{DefaultMaxPresenceReply, full},
		{room, full},
		{room - 1, `{"type":"presence","identifier":"room","message":{"type":"info","total":3,"records":[{"info":{"n":1},"id":"a"},{"id":"b"}],"truncated":true}}`},
		{len(none) + len(`,"records":[]`) + len(`{"info":{"n":1},"id":"a"}`) - 1, none},
	}
	for _, c := range cases {
		got := string(presenceReply("room", info, c.max))
		if got != c.want || len(got) > c.max {
			t.Errorf("max %d:\n got %s (%d bytes)\nwant %s", c.max, got, len(got), c.want)
		}
	}
	if got := string(presenceReply("room", &broker.PresenceInfo{}, 10)); got != `{"type":"presence","identifier":"room","message":{"type":"info","total":0}}` {
		t.Errorf("empty: %s", got)
	}
}
