package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cablehub/cablehub/server/protocol"
	"github.com/cablehub/cablehub/server/pubsub"
)

// readText returns the client's next message.
func readText(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, msg, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(msg)
}

// Publications that reach a node out of order, or past a gap that a
// pub/sub reconnect left, reach the client in order and exactly once:
// held until the missing ones arrive live or are read from history.
func TestGapsAreFilledInOrder(t *testing.T) {
	url, _, n, b := testNode(t, panicRouter{}, Options{})
	c := dial(t, url)
	c.WriteMessage(websocket.TextMessage, []byte(`{"command":"subscribe","identifier":"s"}`))
	if m := readText(t, c); m != `{"type":"confirm_subscription","identifier":"s"}` {
		t.Fatal(m)
	}
	pubs := make([]protocol.Publication, 8)
	for i := range pubs {
		pubs[i] = protocol.Publication{Stream: "s", Data: fmt.Sprint(i + 1)}
		if err := b.Stamp(context.Background(), &pubs[i]); err != nil {
			t.Fatal(err)
		}
	}
	want := func(offset int) string {
		return fmt.Sprintf(`{"identifier":"s","message":%d,"stream_id":"s","epoch":%q,"offset":%d}`, offset, b.Epoch(), offset)
	}
	expect := func(offsets ...int) {
		t.Helper()
		for _, o := range offsets {
			if m := readText(t, c); m != want(o) {
				t.Fatalf("got %s, want offset %d", m, o)
			}
		}
	}
	deliver := func(offsets ...int) {
		for _, o := range offsets {
			n.HandlePublication(&pubs[o-1])
		}
	}
	deliver(1)
	expect(1)
	deliver(3) // 2 was lost: read from history after the wait
	expect(2, 3)
	deliver(5, 4, 4, 3) // crossed on the way, and repeated
	expect(4, 5)
	deliver(8, 6)
	expect(6)
	deliver(7)
	expect(7, 8)

	// A gap history cannot fill: the client is told to reconnect from
	// its position, where its history request will be rejected.
	lost := protocol.Publication{Stream: "s", Data: "10", Epoch: b.Epoch(), Offset: 10}
	n.HandlePublication(&lost)
	if m := readText(t, c); m != `{"type":"disconnect","reason":"stream_gap","reconnect":true}` {
		t.Fatalf("unfillable gap: %s", m)
	}
	_, _, err := c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 1000 {
		t.Fatalf("after stream_gap: %v", err)
	}
}

// Another epoch means the broker started over: the client takes the new
// epoch from its first publication, whatever its offset.
func TestNewEpochIsTakenAsIs(t *testing.T) {
	url, _, n, _ := testNode(t, panicRouter{}, Options{})
	c := dial(t, url)
	c.WriteMessage(websocket.TextMessage, []byte(`{"command":"subscribe","identifier":"s"}`))
	readText(t, c)
	for _, p := range []protocol.Publication{
		{Stream: "s", Data: "1", Epoch: "old", Offset: 40},
		{Stream: "s", Data: "2", Epoch: "new", Offset: 1},
		{Stream: "s", Data: "3", Epoch: "new", Offset: 2},
	} {
		n.HandlePublication(&p)
		if m := readText(t, c); m != fmt.Sprintf(`{"identifier":"s","message":%s,"stream_id":"s","epoch":%q,"offset":%d}`, p.Data, p.Epoch, p.Offset) {
			t.Fatalf("got %s for %+v", m, p)
		}
	}
}

// With a cluster-wide broker, a new epoch means the broker lost its state:
// a client with a position in the old epoch resumes from the new epoch's
// start, the part it missed read from history. Recovered publications (the
// catch-up after a pub/sub reconnect) go only to clients with a position.
func TestNewEpochResumesFromItsStart(t *testing.T) {
	url, _, n, b := testNode(t, panicRouter{}, Options{CatchUp: true})
	withPos, fresh := dial(t, url), dial(t, url)
	for _, c := range []*websocket.Conn{withPos, fresh} {
		c.WriteMessage(websocket.TextMessage, []byte(`{"command":"subscribe","identifier":"s"}`))
		readText(t, c)
	}
	old := protocol.Publication{Stream: "s", Data: "0", Epoch: "old", Offset: 40}
	n.HandlePublication(&old)
	readText(t, withPos)
	readText(t, fresh)
	fresh.WriteMessage(websocket.TextMessage, []byte(`{"command":"unsubscribe","identifier":"s"}`))
	fresh.WriteMessage(websocket.TextMessage, []byte(`{"command":"subscribe","identifier":"s"}`))
	readText(t, fresh) // confirmed again, now without a position

	pubs := make([]protocol.Publication, 3)
	for i := range pubs {
		pubs[i] = protocol.Publication{Stream: "s", Data: fmt.Sprint(i + 1)}
		b.Stamp(context.Background(), &pubs[i])
	}
	line := func(o int) string {
		return fmt.Sprintf(`{"identifier":"s","message":%d,"stream_id":"s","epoch":%q,"offset":%d}`, o, b.Epoch(), o)
	}
	for _, p := range pubs[:2] {
		r := p
		r.Recovered = true
		n.HandlePublication(&r)
	}
	n.HandlePublication(&pubs[2])
	for o := 1; o <= 3; o++ {
		if m := readText(t, withPos); m != line(o) {
			t.Fatalf("client with a position: got %s, want offset %d", m, o)
		}
	}
	if m := readText(t, fresh); m != line(3) {
		t.Fatalf("client without a position: got %s, want offset 3 only", m)
	}
}

func TestNewEpochGapFromItsStartIsFilled(t *testing.T) {
	url, _, n, b := testNode(t, panicRouter{}, Options{CatchUp: true})
	c := dial(t, url)
	c.WriteMessage(websocket.TextMessage, []byte(`{"command":"subscribe","identifier":"s"}`))
	readText(t, c)
	old := protocol.Publication{Stream: "s", Data: "0", Epoch: "old", Offset: 40}
	n.HandlePublication(&old)
	readText(t, c)
	pubs := make([]protocol.Publication, 3)
	for i := range pubs {
		pubs[i] = protocol.Publication{Stream: "s", Data: fmt.Sprint(i + 1)}
		b.Stamp(context.Background(), &pubs[i])
	}
	n.HandlePublication(&pubs[2]) // 1 and 2 went by while this node was away
	for o := 1; o <= 3; o++ {
		want := fmt.Sprintf(`{"identifier":"s","message":%d,"stream_id":"s","epoch":%q,"offset":%d}`, o, b.Epoch(), o)
		if m := readText(t, c); m != want {
			t.Fatalf("got %s, want offset %d", m, o)
		}
	}
}

// With Reorder, a subscription's first publications wait to be sorted: of
// two that crossed on their way, the earlier is not taken for old.
func TestFirstPublicationsSortedWithReorder(t *testing.T) {
	url, _, n, _ := testNode(t, panicRouter{}, Options{Reorder: true})
	c := dial(t, url)
	c.WriteMessage(websocket.TextMessage, []byte(`{"command":"subscribe","identifier":"s"}`))
	readText(t, c)
	for _, o := range []int{8, 7, 9} {
		p := protocol.Publication{Stream: "s", Data: fmt.Sprint(o), Epoch: "e", Offset: uint64(o)}
		n.HandlePublication(&p)
	}
	for _, o := range []int{7, 8, 9} {
		if m := readText(t, c); m != fmt.Sprintf(`{"identifier":"s","message":%d,"stream_id":"s","epoch":"e","offset":%d}`, o, o) {
			t.Fatalf("got %s, want offset %d", m, o)
		}
	}
}

// A publication excluded for a session (exclude_socket) is no gap for it:
// it never gets it, not even from history, and what follows comes at once.
func TestExcludedPublicationIsNoGap(t *testing.T) {
	url, _, n, b := testNode(t, panicRouter{}, Options{})
	d := websocket.Dialer{Subprotocols: []string{"actioncable-v1-ext-json"}}
	c, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var welcome struct{ SID string }
	if err := json.Unmarshal([]byte(readText(t, c)), &welcome); err != nil || welcome.SID == "" {
		t.Fatalf("welcome: %v", err)
	}
	c.WriteMessage(websocket.TextMessage, []byte(`{"command":"subscribe","identifier":"s"}`))
	readText(t, c)
	pubs := []protocol.Publication{{Stream: "s", Data: "1"}, {Stream: "s", Data: "2", ExcludeSocket: welcome.SID}, {Stream: "s", Data: "3"}}
	for i := range pubs {
		b.Stamp(context.Background(), &pubs[i])
		n.HandlePublication(&pubs[i])
	}
	for _, o := range []int{1, 3} {
		if m := readText(t, c); m != fmt.Sprintf(`{"identifier":"s","message":%d,"stream_id":"s","epoch":%q,"offset":%d}`, o, b.Epoch(), o) {
			t.Fatalf("got %s, want offset %d", m, o)
		}
	}
	c.WriteMessage(websocket.TextMessage, []byte(`{"command":"ping"}`))
	if m := readText(t, c); m != `{"type":"pong"}` {
		t.Fatalf("after the excluded publication: %s", m)
	}
}

// failingPubSub takes nothing: every publish fails, as with NATS down.
type failingPubSub struct{}

func (failingPubSub) Publish(context.Context, []protocol.Publication) error {
	return errors.New("pub/sub down")
}
func (failingPubSub) PublishCommand(context.Context, *pubsub.Command) error {
	return errors.New("pub/sub down")
}
func (failingPubSub) Subscribe(string) *pubsub.Ready { return pubsub.ReadyNow(nil) }
func (failingPubSub) Unsubscribe(string)             {}

// A publication stamped but not published is taken back: the publisher's
// error answer means it is in no history, and subscribers pass its hole.
func TestFailedPublishIsVoided(t *testing.T) {
	url, _, n, b := testNode(t, panicRouter{}, Options{})
	c := dial(t, url)
	c.WriteMessage(websocket.TextMessage, []byte(`{"command":"subscribe","identifier":"s"}`))
	readText(t, c)
	ctx := context.Background()
	first := protocol.Publication{Stream: "s", Data: "1"}
	b.Stamp(ctx, &first)
	n.HandlePublication(&first)
	readText(t, c)

	n.SetPubSub(failingPubSub{})
	if err := n.Broadcast(ctx, []protocol.Publication{{Stream: "s", Data: "2"}}); err == nil {
		t.Fatal("a publish the pub/sub refused succeeded")
	}
	if got, _ := b.HistorySince(ctx, "s", 0); len(got) != 1 {
		t.Fatalf("history after a failed publish: %+v", got)
	}
	third := protocol.Publication{Stream: "s", Data: "3"}
	b.Stamp(ctx, &third)
	n.HandlePublication(&third) // offset 3 after 1: the hole is passed
	want := fmt.Sprintf(`{"identifier":"s","message":3,"stream_id":"s","epoch":%q,"offset":3}`, b.Epoch())
	if m := readText(t, c); m != want {
		t.Fatalf("after the hole: %s", m)
	}
}

// After the node's pub/sub connection dropped, a subscription that moves to
// a new epoch may lack the end of the old one (accepted just before the
// drop, never delivered here, gone with the epoch): unless the catch-up
// confirmed its position, it is told to resync instead of moving on.
func TestNewEpochAfterInterruption(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		between func(e *env)
		resync  bool
	}{
		{"no interruption", func(*env) {}, false},
		{"interrupted", func(e *env) { e.node.HandleInterrupted() }, true},
		{"interrupted, then history confirms the position", func(e *env) {
			e.node.HandleInterrupted()
			e.node.HandleResubscribed([]string{"s"})
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, Options{CatchUp: true})
			conn := e.connect(t, "a")
			subscribe(t, conn, "s")
			e.publish(t, "s", "1")
			conn.expect(t, e.frame("s", "1", 1))
			c.between(e)
			if strings.Contains(c.name, "history") {
				deadline := time.Now().Add(waitFor)
				for !strings.Contains(e.logs.String(), "catch-up finished") {
					if time.Now().After(deadline) {
						t.Fatalf("the catch-up did not finish:\n%s", e.logs.String())
					}
					time.Sleep(5 * time.Millisecond) // polling the log
				}
			}
			fresh := protocol.Publication{Stream: "s", Data: "2", Epoch: "other", Offset: 1}
			e.node.HandlePublication(&fresh)
			if c.resync {
				conn.expect(t, `{"type":"disconnect","reason":"stream_gap","reconnect":true}`)
				return
			}
			conn.expect(t, `{"identifier":"s","message":2,"stream_id":"s","epoch":"other","offset":1}`)
		})
	}
}

// When the catch-up after a drop finds a subscription's epoch gone, the
// client is told to resync at once.
func TestCatchUpTellsOfALostEpoch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{CatchUp: true})
	conn := e.connect(t, "a")
	subscribe(t, conn, "s")
	e.node.HandlePublication(&protocol.Publication{Stream: "s", Data: "1", Epoch: "gone", Offset: 7})
	conn.expect(t, `{"identifier":"s","message":1,"stream_id":"s","epoch":"gone","offset":7}`)
	e.node.HandleInterrupted()
	e.node.HandleResubscribed([]string{"s"})
	conn.expect(t, `{"type":"disconnect","reason":"stream_gap","reconnect":true}`)
}
