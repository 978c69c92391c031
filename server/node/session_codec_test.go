package node

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cablehub/cablehub/server/protocol"
)

// bracketCodec wraps every server message in "<...>" and drops pings; a
// publication is "[identifier|data|offset]". Client frames are commands
// without their braces: "command identifier".
type bracketCodec struct{}

func (bracketCodec) Decode(frame []byte) (*protocol.Command, error) {
	cmd, id, ok := strings.Cut(string(frame), " ")
	if !ok {
		return nil, fmt.Errorf("not a command: %q", frame)
	}
	return &protocol.Command{Command: cmd, Identifier: id}, nil
}

func (bracketCodec) Encode(frame []byte) []byte {
	if strings.HasPrefix(string(frame), `{"type":"ping"`) {
		return nil
	}
	return []byte("<" + string(frame) + ">")
}

func (bracketCodec) AppendBroadcast(dst []byte, identifier string, p *protocol.Publication, _ []byte) []byte {
	return fmt.Appendf(dst, "[%s|%s|%d]", identifier, p.Data, p.Offset)
}

// A session speaks its transport's codec in every direction: welcome and
// confirmations through Encode, publications (live and replayed) through
// AppendBroadcast, client frames through Decode; the transport's initial
// commands run before the client's own; and an Action Cable subscriber of
// the same stream still gets Action Cable frames.
func TestSessionSpeaksItsCodec(t *testing.T) {
	e := newEnv(t, Options{PingInterval: 0})
	e.publish(t, "chat", `"old"`)
	ac := e.connect(t, "ac")
	subscribe(t, ac, "chat")

	c := newFakeConn()
	r := httptest.NewRequest("GET", "/events", nil)
	r.Header.Set("X-Test-Sid", "sse")
	history := []byte(`{"since":1}`)
	e.handler.serve(c, r, &SessionOptions{Codec: bracketCodec{}, Commands: []*protocol.Command{
		{Command: "subscribe", Identifier: "chat", History: history},
	}})
	c.expect(t,
		`<{"type":"welcome","sid":"sse"}>`,
		`<{"type":"confirm_subscription","identifier":"chat"}>`,
		`[chat|"old"|1]`,
		`<{"type":"confirm_history","identifier":"chat"}>`,
	)
	e.publish(t, "chat", `"new"`)
	c.expect(t, `[chat|"new"|2]`)
	ac.expect(t, e.frame("chat", `"new"`, 2))
	c.command("ping x")
	c.expect(t, `<{"type":"pong"}>`)
	c.command(`{"command":"ping"}`) // not this codec's: ignored
	c.command("unsubscribe chat")
	c.command("ping x")
	c.expect(t, `<{"type":"pong"}>`)
	e.publish(t, "chat", `"gone"`)
	ac.expect(t, e.frame("chat", `"gone"`, 3))
	c.expectNone(t)
}

// The too_slow disconnect is encoded once per codec and shared by its
// sessions, in the codec's form.
func TestTooSlowSharedPerCodec(t *testing.T) {
	var shared tooSlowFrames
	a, b := shared.in(bracketCodec{}), shared.in(bracketCodec{})
	if want := "<" + string(tooSlowFrame) + ">"; string(a) != want {
		t.Fatalf("too_slow %q, want %q", a, want)
	}
	if &a[0] != &b[0] {
		t.Error("two sessions of one codec hold two copies of too_slow")
	}
}
