package node

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	anycablepb "github.com/cablehub/cablehub/gen/anycable"
	"github.com/cablehub/cablehub/server/broker"
)

// A session a remote disconnect closes cannot be restored, whether its
// client is told to reconnect or not: its restore state is dropped, and a
// connection naming it identifies afresh (here with no credentials: an
// anonymous session, which the next disconnect of the user misses).
func TestRemoteDisconnectRevokesRestore(t *testing.T) {
	t.Parallel()
	for _, reconnect := range []bool{false, true} {
		t.Run(fmt.Sprint("reconnect ", reconnect), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, Options{SessionsTTL: time.Minute})
			a := e.connect(t, "a", "X-Identifiers: user-1")
			a2 := e.connect(t, "a2", "X-Identifiers: user-1")
			subscribe(t, a, "s")
			subscribe(t, a2, "s")
			if err := e.node.Disconnect(context.Background(), "user-1", reconnect); err != nil {
				t.Fatal(err)
			}
			for _, c := range []*fakeConn{a, a2} {
				c.expect(t, fmt.Sprintf(`{"type":"disconnect","reason":"remote","reconnect":%v}`, reconnect))
				c.expectClosed(t, 1000, "Closed remotely")
				c.waitEnded(t)
			}
			if _, err := e.broker.Memory.RestoreSession(context.Background(), "a"); !errors.Is(err, broker.ErrSessionNotFound) {
				t.Fatalf("the state of a session disconnected remotely is still cached: %v", err)
			}
			b := e.open("/cable", "X-AnyCable-Restore-Sid: a2", "X-Test-Sid: b")
			b.expect(t, `{"type":"welcome","sid":"b"}`)
			e.publish(t, "s", "1")
			if err := e.node.Disconnect(context.Background(), "user-1", reconnect); err != nil {
				t.Fatal(err)
			}
			pingPong(t, b)
		})
	}
}

// A session that ended before a remote disconnect of its identifiers (its
// state cached already) is not restored after it either; other users'
// sessions are, and so is a session of the user identified after the
// disconnect.
func TestRemoteDisconnectRevokesCachedSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{SessionsTTL: time.Minute})
	a := e.connect(t, "a", "X-Identifiers: user-1")
	subscribe(t, a, "s")
	a.goAway(t)
	other := e.connect(t, "other", "X-Identifiers: user-2")
	subscribe(t, other, "s")
	other.goAway(t)
	if err := e.node.Disconnect(context.Background(), "user-1", false); err != nil {
		t.Fatal(err)
	}

	b := e.open("/cable", "X-AnyCable-Restore-Sid: a", "X-Test-Sid: b")
	b.expect(t, `{"type":"welcome","sid":"b"}`)
	c := e.open("/cable", "X-AnyCable-Restore-Sid: other", "X-Test-Sid: c")
	expectRestored(t, c, "c", "s")

	d := e.connect(t, "d", "X-Identifiers: user-1")
	subscribe(t, d, "s")
	d.goAway(t)
	f := e.open("/cable", "X-AnyCable-Restore-Sid: d", "X-Test-Sid: f")
	expectRestored(t, f, "f", "s")
}

// A remote disconnect that arrives while a session ends, after it wrote
// its restore state, still drops that state.
func TestRemoteDisconnectWhileSessionEnds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{SessionsTTL: time.Minute})
	a := e.connect(t, "a", "X-Identifiers: user-1")
	subscribe(t, a, "s")
	e.broker.mu.Lock()
	e.broker.duringPresenceDisconnect = func() {
		if err := e.node.Disconnect(context.Background(), "user-1", false); err != nil {
			t.Error(err)
		}
	}
	e.broker.mu.Unlock()
	a.goAway(t)
	if _, err := e.broker.Memory.RestoreSession(context.Background(), "a"); !errors.Is(err, broker.ErrSessionNotFound) {
		t.Fatalf("the state of a session disconnected as it ended is still cached: %v", err)
	}
}

// A restored session keeps its identity's expiry (the JWT's exp): it can
// be restored before it, and neither it nor a session restored from it
// can be after it. The connection then identifies as new, with the
// credentials it carries: none (a fresh anonymous session) or the expired
// token (token_expired, as for any connection with it).
func TestRestoreKeepsIdentityExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{SessionsTTL: time.Minute})
	exp := time.Now().Add(3 * time.Second)
	expires := fmt.Sprintf("X-Expires: %d", exp.UnixMilli())
	a := e.connect(t, "a", "X-Identifiers: user-1", expires)
	subscribe(t, a, "s")
	a.goAway(t)
	b := e.open("/cable", "X-AnyCable-Restore-Sid: a", "X-Test-Sid: b")
	expectRestored(t, b, "b", "s")
	b.goAway(t)
	a2 := e.connect(t, "a2", "X-Identifiers: user-1", expires)
	subscribe(t, a2, "s")
	a2.goAway(t)

	time.Sleep(time.Until(exp))
	c := e.open("/cable", "X-AnyCable-Restore-Sid: b", "X-Test-Sid: c")
	c.expect(t, `{"type":"welcome","sid":"c"}`)
	d := e.open("/cable", "X-AnyCable-Restore-Sid: a2", "X-Test-Sid: d", "X-Identifiers: expired")
	d.expect(t, `{"type":"disconnect","reason":"token_expired","reconnect":false}`)
	d.expectClosed(t, 1000, "Auth Failed")
}

// A session's sid is never the client's X-Request-ID: two connections
// sending the same one get distinct random sids, and a client naming a live
// or cached session's sid in it gets another sid, so it can neither share
// that session's presence and exclude_socket nor overwrite its restore
// state.
func TestRequestIDIsNotTheSID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{SessionsTTL: time.Minute})
	e.handler.testSID = nil
	sidRe := regexp.MustCompile(`^[A-Za-z0-9_-]{21}$`)
	open := func(requestID string) (*fakeConn, string) {
		t.Helper()
		c := e.open("/cable", "X-Request-ID: "+requestID)
		w := c.next(t, "the welcome")
		sid, ok := strings.CutPrefix(w, `{"type":"welcome","sid":"`)
		sid, ok2 := strings.CutSuffix(sid, `"}`)
		if !ok || !ok2 || !sidRe.MatchString(sid) {
			t.Fatalf("welcome %s, want a random 21-character sid", w)
		}
		return c, sid
	}
	a, sidA := open("same1")
	_, sidB := open("same1")
	if sidA == sidB {
		t.Fatalf("two connections with one X-Request-ID share sid %s", sidA)
	}
	if _, sid := open(sidA); sid == sidA {
		t.Fatal("a client took a live session's sid")
	}
	subscribe(t, a, "mine")
	a.goAway(t)
	c, sidC := open(sidA)
	if sidC == sidA {
		t.Fatal("a client took a cached session's sid")
	}
	subscribe(t, c, "theirs")
	c.goAway(t)
	r := e.open("/cable", "X-AnyCable-Restore-Sid: "+sidA, "X-Test-Sid: r")
	w := r.next(t, "the welcome")
	if !strings.Contains(w, `"restored":true`) || !strings.Contains(w, `"restored_ids":["mine"]`) {
		t.Fatalf("restore of the first session: %s", w)
	}
}

// kicks forgets a disconnect after the TTL, and past its bound it refuses
// every identity established before the disconnects it dropped.
func TestKicksExpireAndFailClosed(t *testing.T) {
	t.Parallel()
	now := time.Now()
	k := newKicks(time.Minute)
	before := now.Add(-time.Second).UnixNano()
	k.add("user-1", now)
	if !k.revoked("user-1", before, now) || k.revoked("user-2", before, now) {
		t.Fatal("revoked the wrong identities")
	}
	if k.revoked("user-1", now.Add(time.Nanosecond).UnixNano(), now) {
		t.Fatal("revoked an identity established after the disconnect")
	}
	if k.revoked("user-1", before, now.Add(time.Minute+time.Second)) || len(k.latest) != 0 || k.bytes != 0 {
		t.Fatalf("disconnect remembered past the TTL: %d entries, %d bytes", len(k.latest), k.bytes)
	}

	big := strings.Repeat("x", 1<<20)
	for i := range maxKickBytes>>20 + 1 {
		k.add(fmt.Sprint(i, big), now.Add(time.Duration(i)))
	}
	if k.bytes > maxKickBytes {
		t.Fatalf("%d bytes remembered, bound %d", k.bytes, maxKickBytes)
	}
	if !k.revoked("user-3", before, now) {
		t.Fatal("an identity older than a dropped disconnect is restorable")
	}
	if k.revoked("user-3", now.Add(time.Hour).UnixNano(), now) {
		t.Fatal("an identity newer than every disconnect is revoked")
	}
}

// A session the App disconnects (disconnect: true in a command's answer)
// cannot be restored: its client must connect through the App again.
func TestAppDisconnectRevokesRestore(t *testing.T) {
	t.Parallel()
	app := &scriptedApp{}
	app.command = func(req *anycablepb.CommandMessage) (*anycablepb.CommandResponse, error) {
		if req.Command == "message" {
			return &anycablepb.CommandResponse{Status: anycablepb.Status_SUCCESS, Disconnect: true}, nil
		}
		return chat(req)
	}
	e := newAppEnv(t, app, Options{SessionsTTL: time.Minute})
	c := e.connect(t, "a", "X-Identifiers: user-1")
	c.command(`{"command":"subscribe","identifier":"app1"}`)
	c.expect(t, `{"identifier":"app1","type":"confirm_subscription"}`)
	c.command(`{"command":"message","identifier":"app1","data":"{\"action\":\"kick_me\"}"}`)
	c.expectClosed(t, 1000, "Command Failed")
	c.waitEnded(t)
	if _, err := e.broker.Memory.RestoreSession(context.Background(), "a"); !errors.Is(err, broker.ErrSessionNotFound) {
		t.Fatalf("the state of a session the App disconnected is still cached: %v", err)
	}
}
