package node

import "github.com/cablehub/cablehub/server/ws"

// Connection is what a session needs from its client's socket, declared
// here so that sessions run without one in tests; *ws.Conn is the one the
// server uses. Send, Close and Abort never block: a session calls them
// while it holds its lock and while the hub fans a publication out.
type Connection interface {
	// Send queues frame for the client and reports whether it was taken; a
	// dropped frame means the connection is closing (or was just cut as too
	// slow), so a caller producing many frames can stop. A client that does
	// not keep up is cut: it gets slow as its last frame, then a close. The
	// frame must not be modified after.
	Send(frame, slow []byte) bool
	// Close queues last (unless nil) and a close frame with code and
	// reason; frames sent after are dropped, and later calls do nothing.
	// The connection ends soon after.
	Close(code int, reason string, last []byte)
	// Abort ends the connection at once, without a close frame.
	Abort()
	// OnSlow sets a function called once if the connection is cut as too
	// slow.
	OnSlow(f func())
	// Serve starts reading: each message from the client goes to handle,
	// one at a time, and end runs once when the connection has ended,
	// never while handle runs. It returns at once.
	Serve(handle func(frame []byte), end func())
	// Subprotocol is the negotiated WebSocket subprotocol ("" when none).
	Subprotocol() string
}

var _ Connection = (*ws.Conn)(nil)
