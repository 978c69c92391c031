package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cablehub/cablehub/server/streams"
)

func signFor(name, key string) string { return streams.Sign(name, key) }

func historyCmd(id, history string) string {
	return `{"command":"history","identifier":` + quoted(id) + `,"history":` + history + `}`
}

func TestHistorySinceInSubscribe(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public")
	for i := 1; i <= 3; i++ {
		publish(t, s, fmt.Sprintf(`{"stream":"hist","data":"{\"m\":%d}"}`, i))
	}
	publish(t, s, `{"stream":"hist","data":"{\"m\":\"t\"}","meta":{"transient":true}}`)
	c := dialWS(t, s, dialOpts{})
	c.welcome()
	id := identifier("hist")
	q := quoted(id)
	since := time.Now().Add(-time.Minute).Unix()
	c.send(`{"command":"subscribe","identifier":` + q + `,"history":{"since":` + fmt.Sprint(since) + `}}`)
	c.expect(`{"type":"confirm_subscription","identifier":` + q + `}`)
	for i := 1; i <= 3; i++ {
		c.expect(`{"identifier":` + q + `,"message":{"m":` + fmt.Sprint(i) + `}` + s.stamp("hist", i) + `}`)
	}
	c.expect(`{"type":"confirm_history","identifier":` + q + `}`)
	publish(t, s, `{"stream":"hist","data":"{\"m\":4}"}`)
	c.expect(`{"identifier":` + q + `,"message":{"m":4}` + s.stamp("hist", 4) + `}`)
}

func TestHistoryByOffsetAndRejections(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public", "--history_limit", "3")
	for i := 1; i <= 5; i++ { // retained: 3, 4, 5
		publish(t, s, fmt.Sprintf(`{"stream":"h","data":"%d"}`, i))
	}
	c := dialWS(t, s, dialOpts{})
	c.welcome()
	id := c.subscribe("h")
	q := quoted(id)
	pos := func(stream, epoch string, offset int) string {
		return fmt.Sprintf(`{"streams":{%q:{"epoch":%q,"offset":%d}}}`, stream, epoch, offset)
	}
	c.send(historyCmd(id, pos("h", s.Epoch, 3)))
	c.expect(`{"identifier":` + q + `,"message":4` + s.stamp("h", 4) + `}`)
	c.expect(`{"identifier":` + q + `,"message":5` + s.stamp("h", 5) + `}`)
	c.expect(`{"type":"confirm_history","identifier":` + q + `}`)

	// A fresh subscription to replay again (the first one has seen 5).
	c2 := dialWS(t, s, dialOpts{})
	c2.welcome()
	c2.subscribe("h")
	c2.send(historyCmd(id, pos("h", s.Epoch, 5)))
	c2.expect(`{"type":"confirm_history","identifier":` + q + `}`)
	for name, req := range map[string]string{
		"wrong epoch":         pos("h", "nope", 3),
		"below retained":      pos("h", s.Epoch, 1),
		"zero below retained": pos("h", s.Epoch, 0),
		"beyond latest":       pos("h", s.Epoch, 9),
	} {
		c2.send(historyCmd(id, req))
		if got := c2.next(5 * time.Second); got != `{"type":"reject_history","identifier":`+q+`}` {
			t.Errorf("%s: %s", name, got)
		}
	}
	// Unknown stream by offset: reject; by since: empty success.
	u := dialWS(t, s, dialOpts{})
	u.welcome()
	uid := u.subscribe("never-published")
	u.send(historyCmd(uid, pos("never-published", s.Epoch, 1)))
	u.expect(`{"type":"reject_history","identifier":` + quoted(uid) + `}`)
	u.send(historyCmd(uid, `{"since":1}`))
	u.expect(`{"type":"confirm_history","identifier":` + quoted(uid) + `}`)
	// Neither since nor streams: nothing.
	u.send(historyCmd(uid, `{}`))
	u.barrier()
	// A streams map not naming this stream (and no since): empty success.
	u.send(historyCmd(uid, pos("other", s.Epoch, 1)))
	u.expect(`{"type":"confirm_history","identifier":` + quoted(uid) + `}`)
}

func TestSessionRestoreFillsTheGap(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public")
	a := dialWS(t, s, dialOpts{})
	oldSID := a.welcome()
	id := a.subscribe("restore")
	q := quoted(id)
	publish(t, s, `{"stream":"restore","data":"1"}`)
	a.expect(`{"identifier":` + q + `,"message":1` + s.stamp("restore", 1) + `}`)
	a.conn.UnderlyingConn().Close() // dropped, no close frame

	publish(t, s, `{"stream":"restore","data":"2"}`)
	publish(t, s, `{"stream":"restore","data":"3"}`)

	b := dialWS(t, s, dialOpts{query: "?sid=" + oldSID})
	welcome := b.next(5 * time.Second)
	if !strings.HasPrefix(welcome, `{"type":"welcome","sid":"`) || !strings.HasSuffix(welcome, `","restored":true,"restored_ids":[`+q+`]}`) || strings.Contains(welcome, oldSID) {
		t.Fatalf("restore welcome: %s", welcome)
	}
	// Published after the restore but before the client asks for history:
	// held back so the client sees 2, 3, 4 in order, each once.
	publish(t, s, `{"stream":"restore","data":"4"}`)
	b.send(historyCmd(id, fmt.Sprintf(`{"streams":{"restore":{"epoch":%q,"offset":1}}}`, s.Epoch)))
	b.expect(`{"identifier":` + q + `,"message":2` + s.stamp("restore", 2) + `}`)
	b.expect(`{"identifier":` + q + `,"message":3` + s.stamp("restore", 3) + `}`)
	b.expect(`{"identifier":` + q + `,"message":4` + s.stamp("restore", 4) + `}`)
	b.expect(`{"type":"confirm_history","identifier":` + q + `}`)
	publish(t, s, `{"stream":"restore","data":"5"}`)
	b.expect(`{"identifier":` + q + `,"message":5` + s.stamp("restore", 5) + `}`)

	// A sid is restorable once: the restored session took the entry over.
	again := dialWS(t, s, dialOpts{query: "?sid=" + oldSID})
	if w := again.next(5 * time.Second); strings.Contains(w, `"restored"`) {
		t.Errorf("second restore of %s: %s", oldSID, w)
	}
	// The restored session is itself restorable, by the header too.
	newSID := strings.TrimSuffix(strings.TrimPrefix(welcome, `{"type":"welcome","sid":"`), `","restored":true,"restored_ids":[`+q+`]}`)
	b.conn.UnderlyingConn().Close()
	h := dialWS(t, s, dialOpts{header: http.Header{"X-Anycable-Restore-Sid": {newSID}}})
	if w := h.next(5 * time.Second); !strings.Contains(w, `"restored":true,"restored_ids":[`+q+`]`) {
		t.Errorf("header restore of %s: %s", newSID, w)
	}
	// Plain protocol or unknown sid: a fresh session.
	p := dialWS(t, s, dialOpts{query: "?sid=" + oldSID, protocols: []string{"actioncable-v1-json"}})
	p.welcome()
	u := dialWS(t, s, dialOpts{query: "?sid=doesnotexist"})
	u.welcome()
}

func TestSessionRestoreDisabled(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public", "--sessions_ttl", "0")
	a := dialWS(t, s, dialOpts{})
	sid := a.welcome()
	a.subscribe("x")
	a.conn.UnderlyingConn().Close()
	b := dialWS(t, s, dialOpts{query: "?sid=" + sid})
	b.welcome()
}
