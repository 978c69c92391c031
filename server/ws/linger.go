package ws

import (
	"net"
	"time"
)

// Bounds on draining a connection that ends after our close frame: enough
// for a client to read the close frame and answer, not enough for a client
// that keeps sending to hold the connection.
const (
	drainTimeout = time.Second
	drainLimit   = 64 << 10
)

// finishAfterClose ends the connection once our close frame is on the
// wire (the close handshake is complete, or will not be), like finish but
// closing the socket with lingerClose.
func (c *Conn) finishAfterClose() { c.end(true) }

// lingerClose closes the socket so that the client gets our close frame.
// Closing a socket with unread input makes the kernel reset the
// connection (RFC 1122 §4.2.2.13), and a client that gets the reset
// before it has read the close frame may lose it and see an abnormal
// closure (1006) instead of our code. So the write side is shut first
// (the client reads the close frame, then end of stream), and what the
// client still sends is read and dropped until it closes too, or for at
// most drainTimeout and drainLimit bytes, on a goroutine of its own: only
// connections that are ending pay for it.
func (c *Conn) lingerClose() {
	tc, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || tc.CloseWrite() != nil {
		c.nc.Close()
		return
	}
	if c.tlsSock != nil {
		c.tlsSock.nonblocking.Store(false) // drain waits for the client
	}
	go c.drain(c.nc)
}

func (c *Conn) drain(nc net.Conn) {
	defer nc.Close()
	nc.SetReadDeadline(time.Now().Add(drainTimeout))
	bp := c.t.readBufs.Get().(*[]byte)
	defer c.t.readBufs.Put(bp)
	for n := 0; n < drainLimit; {
		m, err := nc.Read(*bp)
		if err != nil {
			return
		}
		n += m
	}
}
