package node

import (
	"testing"

	"github.com/cablehub/cablehub/server/protocol"
)

// countingConn takes frames and counts them: a Connection that costs
// nothing, so a benchmark measures the session's share of a delivery.
type countingConn struct {
	*fakeConn
	frames int
}

func (c *countingConn) Send([]byte, []byte) bool { c.frames++; return true }

// BenchmarkSessionDeliver measures a session's share of one fan-out: a
// publication's shared frame checked against the subscription's position
// and handed to the connection. It does not allocate.
func BenchmarkSessionDeliver(b *testing.B) {
	e := newEnv(b, Options{})
	conn := &countingConn{fakeConn: newFakeConn()}
	s := newSession(e.node, conn, &SessionOptions{})
	s.subs.set("chat", &subscription{})
	p := &protocol.Publication{Stream: "chat", Data: `{"text":"hello"}`, Epoch: "e"}
	frame := protocol.AppendBroadcast(nil, "chat", p, protocol.EncodeMessage(p.Data))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		p.Offset++
		s.Deliver("chat", p, frame)
		n++
	}
	if conn.frames != n {
		b.Fatalf("%d frames for %d deliveries", conn.frames, n)
	}
}
