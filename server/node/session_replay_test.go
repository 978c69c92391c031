package node

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cablehub/cablehub/server/protocol"
)

// positionRequest is a history request from epoch and offset on stream.
func positionRequest(stream, epoch string, offset int) string {
	return fmt.Sprintf(`{"streams":{%q:{"epoch":%q,"offset":%d}}}`, stream, epoch, offset)
}

// A subscription asked with history gets its confirmation, the history,
// confirm_history, then the live publications that arrived meanwhile:
// after the history, in offset order, each once (a publication both in
// history and delivered live is sent once).
func TestSubscribeWithHistoryHoldsLiveUntilReplayed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.publish(t, "s", "1", "2")
	c := e.connect(t, "a")
	e.broker.duringNextRead(func() {
		kept := e.history(t, "s")
		e.node.HandlePublication(&kept[1]) // 2 again, live: history has it
		e.publish(t, "s", "3")
		e.node.HandlePublication(&kept[1])
		e.publish(t, "s", "4")
	})
	c.command(`{"command":"subscribe","identifier":"s","history":` + positionRequest("s", e.broker.Epoch(), 1) + `}`)
	c.expect(t,
		`{"type":"confirm_subscription","identifier":"s"}`,
		e.frame("s", "2", 2),
		`{"type":"confirm_history","identifier":"s"}`,
		e.frame("s", "3", 3),
		e.frame("s", "4", 4))
	pingPong(t, c)
	e.publish(t, "s", "5")
	c.expect(t, e.frame("s", "5", 5))
}

// A history request on a subscription holds its live publications too: one
// the node missed comes from history, those arriving during the read
// after it, and nothing twice.
func TestHistoryRequestHoldsLive(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := e.connect(t, "a")
	subscribe(t, c, "s")
	e.publish(t, "s", "1")
	c.expect(t, e.frame("s", "1", 1))
	lost := protocol.Publication{Stream: "s", Data: "2"}
	if err := e.broker.Stamp(context.Background(), &lost); err != nil {
		t.Fatal(err)
	}
	e.broker.duringNextRead(func() {
		e.publish(t, "s", "3")
		c.expectNone(t)
	})
	c.command(`{"command":"history","identifier":"s","history":` + positionRequest("s", e.broker.Epoch(), 1) + `}`)
	c.expect(t,
		e.frame("s", "2", 2),
		`{"type":"confirm_history","identifier":"s"}`,
		e.frame("s", "3", 3))
	pingPong(t, c)
}

// History by time (since) works as by position: what was kept since then,
// confirm_history, then what arrived during the read.
func TestSubscribeWithHistorySince(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.publish(t, "s", "1", "2")
	c := e.connect(t, "a")
	e.broker.duringNextRead(func() { e.publish(t, "s", "3") })
	since := time.Now().Add(-time.Minute).Unix()
	c.command(fmt.Sprintf(`{"command":"subscribe","identifier":"s","history":{"since":%d}}`, since))
	c.expect(t,
		`{"type":"confirm_subscription","identifier":"s"}`,
		e.frame("s", "1", 1),
		e.frame("s", "2", 2),
		`{"type":"confirm_history","identifier":"s"}`,
		e.frame("s", "3", 3))
}

// History the broker cannot serve (an epoch it does not know) is a
// reject_history; the live publications held meanwhile follow.
func TestSubscribeWithHistoryRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := e.connect(t, "a")
	e.broker.duringNextRead(func() { e.publish(t, "s", "1") })
	c.command(`{"command":"subscribe","identifier":"s","history":` + positionRequest("s", "gone", 5) + `}`)
	c.expect(t,
		`{"type":"confirm_subscription","identifier":"s"}`,
		`{"type":"reject_history","identifier":"s"}`,
		e.frame("s", "1", 1))
}

// A history request with neither since nor streams asks for nothing: the
// subscription is confirmed and live publications flow.
func TestSubscribeWithEmptyHistoryRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := e.connect(t, "a")
	c.command(`{"command":"subscribe","identifier":"s","history":{}}`)
	c.expect(t, `{"type":"confirm_subscription","identifier":"s"}`)
	e.publish(t, "s", "1")
	c.expect(t, e.frame("s", "1", 1))
}

// A client that does not read its history while the stream runs on is as
// slow as one whose queue overflows: past maxHeldBytes held, it is
// disconnected as too slow, and gets nothing more.
func TestHeldLiveOverLimitIsTooSlow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.publish(t, "s", "1")
	c := e.connect(t, "a")
	big := `"` + strings.Repeat("x", 1<<20) + `"`
	e.broker.duringNextRead(func() {
		for range maxHeldBytes>>20 + 1 {
			e.publish(t, "s", big)
		}
	})
	c.command(`{"command":"subscribe","identifier":"s","history":{"since":1}}`)
	c.expect(t,
		`{"type":"confirm_subscription","identifier":"s"}`,
		`{"type":"disconnect","reason":"too_slow","reconnect":true}`)
	c.expectClosed(t, 1000, "")
	c.expectNone(t)
}
