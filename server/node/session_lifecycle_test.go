package node

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cablehub/cablehub/server/pubsub"
)

// A subscription is confirmed, gets its stream's publications, and after
// unsubscribe gets none; subscribing again works.
func TestSessionSubscribeAndUnsubscribe(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := e.connect(t, "a")
	subscribe(t, c, "chat")
	e.publish(t, "chat", `{"text":"hi"}`)
	c.expect(t, e.frame("chat", `{"text":"hi"}`, 1))

	c.command(`{"command":"unsubscribe","identifier":"chat"}`)
	e.publish(t, "chat", "2")
	pingPong(t, c)
	if n := e.node.Hub().Streams(); n != 0 {
		t.Fatalf("%d streams in the hub after unsubscribe", n)
	}

	subscribe(t, c, "chat")
	e.publish(t, "chat", "3")
	c.expect(t, e.frame("chat", "3", 3))
}

// The router's refusal is a reject_subscription; a second subscribe to an
// identifier is ignored (as in AnyCable); past MaxSubscriptions the client
// gets a reject_subscription and earlier subscriptions keep working.
func TestSessionSubscribeRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{MaxSubscriptions: 2})
	c := e.connect(t, "a")
	c.command(`{"command":"subscribe","identifier":"rejected"}`)
	c.expect(t, `{"type":"reject_subscription","identifier":"rejected"}`)

	subscribe(t, c, "one")
	c.command(`{"command":"subscribe","identifier":"one"}`)
	c.expectNone(t)
	subscribe(t, c, "two")
	c.command(`{"command":"subscribe","identifier":"three"}`)
	c.expect(t, `{"type":"reject_subscription","identifier":"three"}`)

	e.publish(t, "one", "1")
	e.publish(t, "three", "1")
	c.expect(t, e.frame("one", "1", 1))
	pingPong(t, c)
}

// Live publications reach a subscription once each, in offset order,
// however often the cluster delivers them.
func TestSessionLiveOffsetsExactlyOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := e.connect(t, "a")
	subscribe(t, c, "s")
	e.publish(t, "s", "1", "2", "3")
	c.expect(t, e.frame("s", "1", 1), e.frame("s", "2", 2), e.frame("s", "3", 3))
	pubs := e.history(t, "s")
	for _, i := range []int{0, 2, 1, 2} {
		e.node.HandlePublication(&pubs[i])
	}
	e.publish(t, "s", "4")
	c.expect(t, e.frame("s", "4", 4))
	pingPong(t, c)
}

// A whisper reaches the stream's other subscribers, not its sender, and is
// kept in no history.
func TestSessionWhisper(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	a, b := e.connect(t, "a"), e.connect(t, "b")
	subscribe(t, a, "room")
	subscribe(t, b, "room")
	a.command(`{"command":"whisper","identifier":"room","data":{"typing":true}}`)
	b.expect(t, `{"identifier":"room","message":{"typing":true}}`)
	pingPong(t, a)
	if h := e.history(t, "room"); len(h) != 0 {
		t.Fatalf("a whisper in history: %+v", h)
	}
}

// BenchmarkChannel echoes "echo" back, and "broadcast" reaches every
// subscriber and comes back to its sender as "broadcastResult"; other
// channels perform nothing.
func TestSessionBenchmarkChannel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	a, b := e.connect(t, "a"), e.connect(t, "b")
	subscribe(t, a, "bench")
	subscribe(t, b, "bench")
	subscribe(t, a, "chat")

	a.command(`{"command":"message","identifier":"bench","data":"{\"action\":\"echo\",\"n\":1}"}`)
	a.expect(t, `{"identifier":"bench","message":{"action":"echo","n":1}}`)
	a.command(`{"command":"message","identifier":"bench","data":"{\"action\":\"broadcast\",\"n\":2}"}`)
	a.expect(t,
		`{"identifier":"bench","message":{"action":"broadcast","n":2}}`,
		`{"identifier":"bench","message":{"action":"broadcastResult","n":2}}`)
	b.expect(t, `{"identifier":"bench","message":{"action":"broadcast","n":2}}`)

	a.command(`{"command":"message","identifier":"chat","data":"{\"action\":\"echo\"}"}`)
	a.command(`{"command":"message","identifier":"bench","data":"not json"}`)
	pingPong(t, a)
}

// A remote disconnect closes every session of the identifiers, telling the
// client whether to reconnect; their end releases what they held.
func TestSessionRemoteDisconnect(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	a := e.connect(t, "a", "X-Identifiers: user-1")
	a2 := e.connect(t, "a2", "X-Identifiers: user-1")
	other := e.connect(t, "b", "X-Identifiers: user-2")
	subscribe(t, a, "chat")
	subscribe(t, other, "chat")

	if err := e.node.Disconnect(context.Background(), "user-1", false); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*fakeConn{a, a2} {
		c.expect(t, `{"type":"disconnect","reason":"remote","reconnect":false}`)
		c.expectClosed(t, 1000, "Closed remotely")
		c.waitEnded(t)
	}
	if n := e.node.Sessions(); n != 1 {
		t.Fatalf("%d sessions after the disconnect, want 1", n)
	}
	e.publish(t, "chat", "1")
	other.expect(t, e.frame("chat", "1", 1))
}

// A client that goes away takes its subscriptions with it.
func TestSessionEndReleasesSubscriptions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := e.connect(t, "a")
	subscribe(t, c, "one")
	subscribe(t, c, "two")
	c.goAway(t)
	if s, n := e.node.Sessions(), e.node.Hub().Streams(); s != 0 || n != 0 {
		t.Fatalf("after the end: %d sessions, %d streams", s, n)
	}
}

// Refused credentials get an unauthorized disconnect and close 1000 "Auth
// Failed"; the session is never registered.
func TestSessionAuthRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := e.open("/cable", "X-Identifiers: bad")
	c.expect(t, `{"type":"disconnect","reason":"unauthorized","reconnect":false}`)
	c.expectClosed(t, 1000, "Auth Failed")
	c.waitEnded(t)
	if n := e.node.Sessions(); n != 0 {
		t.Fatalf("%d sessions", n)
	}
}

// A node shutting down refuses new sessions with server_restart.
func TestSessionRefusedWhileShuttingDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.node.Shutdown(context.Background())
	c := e.open("/cable")
	c.expect(t, `{"type":"disconnect","reason":"server_restart","reconnect":true}`)
	c.expectClosed(t, 1001, "Server restart")
}

// Broker calls made for a session are bounded by brokerTimeout and end
// with the session.
func TestSessionBrokerContextEndsWithSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := e.connect(t, "a")
	subscribe(t, c, "s")
	before := time.Now()
	c.command(`{"command":"history","identifier":"s","history":{"since":1}}`)
	c.expect(t, `{"type":"confirm_history","identifier":"s"}`)
	e.broker.mu.Lock()
	ctx := e.broker.historyCtxs[0]
	e.broker.mu.Unlock()
	deadline, ok := ctx.Deadline()
	if !ok || deadline.Before(before.Add(brokerTimeout)) || deadline.After(time.Now().Add(brokerTimeout)) {
		t.Fatalf("history read deadline %v (set %v), want brokerTimeout from the call", deadline, ok)
	}

	// A broker call in progress when the session ends is cut.
	s := sessionOf(t, e, "a")
	ctx, cancel := s.brokerContext()
	defer cancel()
	c.goAway(t)
	select {
	case <-ctx.Done():
	case <-time.After(waitFor):
		t.Fatal("a session's broker context outlived the session")
	}
	if s.ctx.Err() != context.Canceled {
		t.Fatalf("session context: %v", s.ctx.Err())
	}
}

// sessionOf returns the registered session with sid.
func sessionOf(t *testing.T, e *env, sid string) *Session {
	t.Helper()
	e.node.mu.Lock()
	defer e.node.mu.Unlock()
	s := e.node.bySID[sid]
	if s == nil {
		t.Fatalf("no session %q", sid)
	}
	return s
}

// refusingPubSub delivers locally but cannot listen to the stream "down",
// as a cluster pub/sub whose server is down or does not confirm.
type refusingPubSub struct{ *pubsub.Local }

func (p refusingPubSub) Subscribe(stream string) *pubsub.Ready {
	if stream == "down" {
		return pubsub.ReadyNow(errors.New("pub/sub did not confirm"))
	}
	return pubsub.ReadyNow(nil)
}

// A subscription whose stream the pub/sub cannot listen to is not
// confirmed: the client is told to reconnect (and subscribe again), and
// nothing of it stays in the hub.
func TestSessionStreamUnavailable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.node.SetPubSub(refusingPubSub{pubsub.NewLocal(e.node)})
	c := e.connect(t, "a")
	subscribe(t, c, "up")
	c.command(`{"command":"subscribe","identifier":"down"}`)
	c.expect(t, `{"type":"disconnect","reason":"stream_unavailable","reconnect":true}`)
	c.expectClosed(t, 1000, "")
	c.waitEnded(t)
	if n := e.node.Hub().Streams(); n != 0 {
		t.Errorf("%d streams in the hub", n)
	}
}

// gatedPubSub delivers locally and makes the node's subscription to a
// stream ready only when the test opens its gate.
type gatedPubSub struct {
	*pubsub.Local
	gate chan error
}

func (p gatedPubSub) Subscribe(string) *pubsub.Ready {
	r := pubsub.NewReady()
	go func() { r.Finish(<-p.gate) }()
	return r
}

// While the pub/sub confirms a subscription, the session goes on with the
// client's next commands; the confirmation follows once the node listens.
// A subscription left before that is never confirmed.
func TestSessionConfirmsOnceListening(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	gate := make(chan error)
	e.node.SetPubSub(gatedPubSub{pubsub.NewLocal(e.node), gate})
	c := e.connect(t, "a")
	c.command(`{"command":"subscribe","identifier":"s"}`)
	pingPong(t, c)
	gate <- nil
	c.expect(t, `{"type":"confirm_subscription","identifier":"s"}`)
	e.publish(t, "s", "1")
	c.expect(t, e.frame("s", "1", 1))

	c.command(`{"command":"subscribe","identifier":"left"}`)
	c.command(`{"command":"unsubscribe","identifier":"left"}`)
	pingPong(t, c)
	gate <- nil
	pingPong(t, c)
	c.expectNone(t)
}
