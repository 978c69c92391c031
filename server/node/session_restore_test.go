package node

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"
)

// expectRestored takes a welcome and checks that it restores sid with ids
// (in any order: the cache keeps a set).
func expectRestored(t *testing.T, c *fakeConn, sid string, ids ...string) {
	t.Helper()
	frame := c.next(t, "the welcome")
	var w struct {
		Type        string   `json:"type"`
		SID         string   `json:"sid"`
		Restored    bool     `json:"restored"`
		RestoredIDs []string `json:"restored_ids"`
	}
	if err := json.Unmarshal([]byte(frame), &w); err != nil {
		t.Fatal(err)
	}
	slices.Sort(w.RestoredIDs)
	slices.Sort(ids)
	if w.Type != "welcome" || w.SID != sid || !w.Restored || !slices.Equal(w.RestoredIDs, ids) {
		t.Fatalf("welcome %s, want sid %s restoring %v", frame, sid, ids)
	}
}

// A session that ends is restorable once: the next connection naming it
// gets its identifiers and subscriptions back, with their live
// publications held until the client asks their history, so what it
// missed comes first and nothing twice. A second restore of the same sid
// is a fresh session.
func TestSessionRestoredOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{SessionsTTL: time.Minute})
	a := e.connect(t, "a", "X-Identifiers: user-1")
	subscribe(t, a, "s1")
	subscribe(t, a, "s2")
	e.publish(t, "s1", "1")
	a.expect(t, e.frame("s1", "1", 1))
	a.goAway(t)
	e.publish(t, "s1", "2")
	e.publish(t, "s2", "1")

	b := e.open("/cable", "X-AnyCable-Restore-Sid: a", "X-Test-Sid: b")
	expectRestored(t, b, "b", "s1", "s2")
	e.publish(t, "s1", "3")
	e.publish(t, "s2", "2")
	b.expectNone(t) // held for the history request

	e.broker.duringNextRead(func() { e.publish(t, "s1", "4") })
	b.command(`{"command":"history","identifier":"s1","history":` + positionRequest("s1", e.broker.Epoch(), 1) + `}`)
	b.expect(t,
		e.frame("s1", "2", 2),
		e.frame("s1", "3", 3), // also held live: not sent again
		`{"type":"confirm_history","identifier":"s1"}`,
		e.frame("s1", "4", 4))
	pingPong(t, b) // s2 is still held
	b.command(`{"command":"history","identifier":"s2","history":{"since":1}}`)
	b.expect(t,
		e.frame("s2", "1", 1),
		e.frame("s2", "2", 2),
		`{"type":"confirm_history","identifier":"s2"}`)
	pingPong(t, b) // s2's held 2 was in the history: not sent again

	// The identifiers came back with the session.
	if err := e.node.Disconnect(context.Background(), "user-1", true); err != nil {
		t.Fatal(err)
	}
	b.expect(t, `{"type":"disconnect","reason":"remote","reconnect":true}`)
	b.waitEnded(t)

	c := e.open("/cable", "X-AnyCable-Restore-Sid: a", "X-Test-Sid: c")
	c.expect(t, `{"type":"welcome","sid":"c"}`)
	e.publish(t, "s1", "4")
	pingPong(t, c)
}

// A restored subscription whose history the client does not ask for gets
// its held publications after Options.RestoreHold.
func TestRestoreHoldEnds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{SessionsTTL: time.Minute, RestoreHold: 500 * time.Millisecond})
	a := e.connect(t, "a")
	subscribe(t, a, "s")
	a.goAway(t)

	b := e.open("/cable", "X-AnyCable-Restore-Sid: a", "X-Test-Sid: b")
	expectRestored(t, b, "b", "s")
	e.publish(t, "s", "1")
	b.expectNone(t)
	b.expect(t, e.frame("s", "1", 1)) // after the hold
	e.publish(t, "s", "2")
	b.expect(t, e.frame("s", "2", 2))
}

// A restore that a node shutting down cannot serve is refused with
// server_restart, and the state it took is returned to the broker, so the
// client can restore on another node.
func TestRestoreRefusedWhileShuttingDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{SessionsTTL: time.Minute})
	a := e.connect(t, "a")
	subscribe(t, a, "s")
	a.goAway(t)
	e.node.Shutdown(context.Background())

	b := e.open("/cable", "X-AnyCable-Restore-Sid: a")
	b.expect(t, `{"type":"disconnect","reason":"server_restart","reconnect":true}`)
	b.expectClosed(t, 1001, "Server restart")
	b.waitEnded(t)
	if _, err := e.broker.RestoreSession(context.Background(), "a"); err != nil {
		t.Fatalf("the refused restore's state is not restorable again: %v", err)
	}
}

// A session whose state is larger than MaxCachedSession is not cached, and
// a session without SessionsTTL is never: both reconnect as new.
func TestSessionNotCached(t *testing.T) {
	t.Parallel()
	for name, opts := range map[string]Options{
		"too large": {SessionsTTL: time.Minute, MaxCachedSession: 40},
		"no ttl":    {},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, opts)
			a := e.connect(t, "a")
			subscribe(t, a, "a-long-identifier")
			subscribe(t, a, "another-long-identifier")
			a.goAway(t)
			b := e.open("/cable", "X-AnyCable-Restore-Sid: a", "X-Test-Sid: b")
			b.expect(t, `{"type":"welcome","sid":"b"}`)
		})
	}
}
