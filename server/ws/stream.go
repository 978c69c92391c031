package ws

import (
	"net"
	"strconv"
)

// maxStreamInput is how much a streamed response's client may send before
// the connection is cut: an EventSource sends nothing after its request,
// so anything more than a pipelined request or two is abuse.
const maxStreamInput = 16 << 10

// Stream turns nc, an HTTP/1.1 connection whose request has been read and
// not answered, into a connection that streams the answer: head (the
// status line and header fields, announcing Transfer-Encoding: chunked,
// through the blank line) leaves with the first output at Serve; each
// frame given to Send becomes one chunk of the body; Close sends its last
// frame and the body's final chunk, after which the connection ends (its
// socket shut in order, so the client reads the whole body). The code and
// reason given to Close are not sent: a streamed body has no close frame.
//
// What the client sends is read and dropped (beyond maxStreamInput it
// ends the connection), and the client closing ends it. Like an upgraded
// WebSocket, it is read by the poller and written by a flusher, so an
// idle stream holds no goroutine and no buffer.
func (t *Transport) Stream(nc net.Conn, head []byte) *Conn {
	t.init()
	c := t.newConn(unwrapConn(nc), "", head, deflateParams{}, false)
	c.stream = true
	return c
}

// appendChunk appends payload as one chunk of a chunked body.
func appendChunk(dst, payload []byte) []byte {
	dst = strconv.AppendUint(dst, uint64(len(payload)), 16)
	dst = append(dst, "\r\n"...)
	dst = append(dst, payload...)
	return append(dst, "\r\n"...)
}

// lastChunk ends a chunked body (no trailer).
const lastChunk = "0\r\n\r\n"

// discard counts input a stream's client sent; it reports whether the
// connection may go on.
func (c *Conn) discard(n int) readState {
	c.discarded += n
	if c.discarded > maxStreamInput {
		return readFailed
	}
	return readMore
}
