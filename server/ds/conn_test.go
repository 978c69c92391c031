package ds

import (
	"testing"
	"time"

	"github.com/cablehub/cablehub/server/protocol"
)

func rec(epoch string, seq uint64, msg string) []byte {
	return Codec{}.AppendBroadcast(nil, "id", &protocol.Publication{Epoch: epoch, Offset: seq}, []byte(msg))
}

func TestCodecRecord(t *testing.T) {
	r, err := parseRecord(rec("E1", 42, `{"a":"x\u0000y"}`))
	if err != nil || r.seq != 42 || r.epoch != "E1" || string(r.message) != `{"a":"x\u0000y"}` {
		t.Errorf("%+v %v", r, err)
	}
	for _, f := range [][]byte{nil, []byte(`{"type":"welcome"}`), {recordMark}, {recordMark, 'x', recordMark, 'E', recordMark}} {
		if _, err := parseRecord(f); err == nil {
			t.Errorf("%q parsed", f)
		}
	}
	if messageType([]byte(`{"type":"reject_history","identifier":"x"}`)) != "reject_history" || messageType(rec("E", 1, "1")) != "" {
		t.Error("messageType")
	}
}

// A long-poll gathers what follows its position, skips what it has, waits
// a moment for what arrives together, and keeps later ones for the next
// request.
func TestLongPollGathers(t *testing.T) {
	c := &conn{}
	c.goLive(longPoll, "E", 3)
	c.Send(rec("E", 3, `"old"`), nil)
	c.Send(rec("E", 4, `"a"`), nil)
	c.Send(rec("E", 5, `"b"`), nil)
	select {
	case <-c.done:
	case <-time.After(time.Second):
		t.Fatal("not woken")
	}
	c.Send(rec("E", 6, `"late"`), nil)
	c.mu.Lock()
	defer c.mu.Unlock()
	if string(c.body) != `"a","b"` || c.count != 2 || c.seq != 5 || c.gone {
		t.Errorf("body %q count %d seq %d gone %v", c.body, c.count, c.seq, c.gone)
	}
}

// Another epoch, or a refused history, means the position is lost: 410.
func TestLongPollGone(t *testing.T) {
	for name, frame := range map[string][]byte{
		"epoch":   rec("F", 1, "1"),
		"history": []byte(`{"type":"reject_history","identifier":"x"}`),
	} {
		c := &conn{}
		c.goLive(longPoll, "E", 3)
		c.Send(frame, nil)
		select {
		case <-c.done:
		default:
			t.Fatalf("%s: not woken", name)
		}
		if !c.gone || c.count != 0 {
			t.Errorf("%s: gone %v count %d", name, c.gone, c.count)
		}
	}
}

// A reader of a stream the broker did not know takes the epoch of the
// first publication.
func TestLongPollUnknownStream(t *testing.T) {
	c := &conn{}
	c.goLive(longPoll, "", 0)
	c.Send(rec("N", 1, "1"), nil)
	<-c.done
	if c.epoch != "N" || c.seq != 1 || string(c.body) != "1" {
		t.Errorf("%+v", c)
	}
}

// A long-poll answer is sent at once past its bounds.
func TestLongPollBounded(t *testing.T) {
	c := &conn{wait: time.Hour} // only the bound may end the wait
	c.goLive(longPoll, "E", 0)
	for i := uint64(1); i <= maxLiveItems+5; i++ {
		c.Send(rec("E", i, "1"), nil)
	}
	<-c.done
	if c.count != maxLiveItems || c.seq != maxLiveItems {
		t.Errorf("count %d seq %d", c.count, c.seq)
	}
}

// The session's close ends the wait; a refusal before Serve is seen.
func TestConnClose(t *testing.T) {
	c := &conn{}
	c.Close(1000, "Auth Failed", nil)
	c.Serve(nil, nil)
	if c.accepted || !c.authFailed {
		t.Errorf("accepted %v authFailed %v", c.accepted, c.authFailed)
	}
	c = &conn{}
	ended := 0
	c.Serve(func([]byte) {}, func() { ended++ })
	c.goLive(longPoll, "E", 1)
	c.Close(1001, "Server restart", nil)
	<-c.done
	c.finish()
	c.finish()
	if !c.accepted || ended != 1 {
		t.Errorf("accepted %v ended %d", c.accepted, ended)
	}
}

func TestEvents(t *testing.T) {
	got := string(appendEvent(nil, "data", '[', []byte("{\n\"a\":1}"), ']'))
	if got != "event: data\ndata:[{\ndata:\"a\":1}]\n\n" {
		t.Errorf("%q", got)
	}
	got = string(appendControl(nil, "7", "0", false))
	if got != "event: control\ndata:{\"streamCursor\":\"7\",\"streamNextOffset\":\"0\"}\n\n" {
		t.Errorf("%q", got)
	}
}
