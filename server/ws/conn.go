// Package ws is Cablehub's WebSocket transport: the upgrade (gorilla/
// websocket) and a connection with a bounded write queue whose writer
// coalesces queued frames into one socket write.
package ws

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"cablehub/server/origins"
)

// Subprotocols the server speaks, in no particular order: the client's
// first offered match wins.
const (
	ProtocolActionCable = "actioncable-v1-json"
	ProtocolExtended    = "actioncable-v1-ext-json"
)

// Options configure the transport.
type Options struct {
	// AllowedOrigins lists Origin hosts to accept ("*.example.com" matches
	// subdomains); empty accepts any origin.
	AllowedOrigins []string
	// MaxMessageSize limits a client frame; larger ones close with 1009.
	MaxMessageSize int64
	// MaxPending is the most bytes a connection may have queued before it is
	// cut as too slow; 0 is unlimited.
	MaxPending int
	// WriteTimeout bounds each socket write.
	WriteTimeout time.Duration
	// Header is added to the upgrade response.
	Header http.Header
	// OnSent, if set, is told after each flush how many text frames and
	// bytes of them went out, for metrics.
	OnSent func(frames, bytes int)
}

// Transport upgrades HTTP requests to connections. It is safe for
// concurrent use.
type Transport struct {
	opts     Options
	upgrader websocket.Upgrader
	batches  sync.Pool
}

// NewTransport returns a transport for opts.
func NewTransport(opts Options) *Transport {
	t := &Transport{opts: opts}
	t.batches.New = func() any { b := make([]byte, 0, 4096); return &b }
	t.upgrader = websocket.Upgrader{
		// Subprotocols stays nil: gorilla would prefer the server's order,
		// while AnyCable picks the client's first supported offer.
		WriteBufferPool: &sync.Pool{},
		// A small reader of its own instead of keeping net/http's 4 KiB one:
		// client frames are small, and idle connections hold this buffer.
		ReadBufferSize: 1024,
		CheckOrigin:    t.checkOrigin,
	}
	return t
}

func (t *Transport) checkOrigin(r *http.Request) bool {
	if len(t.opts.AllowedOrigins) == 0 {
		return true
	}
	return origins.Match(r.Header.Get("Origin"), t.opts.AllowedOrigins)
}

// Upgrade turns the request into a connection. On failure the HTTP error
// (400 for a plain GET, 403 for a rejected origin) has been written.
func (t *Transport) Upgrade(w http.ResponseWriter, r *http.Request) (*Conn, error) {
	var bc *batchConn
	hw := &hijackWriter{ResponseWriter: w, wrap: func(c net.Conn) net.Conn {
		bc = &batchConn{Conn: c, writeTimeout: t.opts.WriteTimeout, pool: &t.batches}
		return bc
	}}
	header := t.opts.Header.Clone()
	if header == nil {
		header = http.Header{}
	}
	if p := selectSubprotocol(websocket.Subprotocols(r)); p != "" {
		header.Set("Sec-WebSocket-Protocol", p)
	}
	wsConn, err := t.upgrader.Upgrade(hw, r, header)
	if err != nil {
		return nil, err
	}
	if t.opts.MaxMessageSize > 0 {
		wsConn.SetReadLimit(t.opts.MaxMessageSize)
	}
	return &Conn{ws: wsConn, raw: bc, maxPending: t.opts.MaxPending, onSent: t.opts.OnSent}, nil
}

// selectSubprotocol returns the first offered protocol the server speaks.
func selectSubprotocol(offered []string) string {
	for _, p := range offered {
		if p == ProtocolActionCable || p == ProtocolExtended {
			return p
		}
	}
	return ""
}

// hijackWriter hands gorilla a wrapped connection when it hijacks.
type hijackWriter struct {
	http.ResponseWriter
	wrap func(net.Conn) net.Conn
}

func (h *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	return h.wrap(c), brw, nil
}

// closeGrace is how long a connection waits for the client's close frame
// after sending its own, before dropping the socket.
const closeGrace = 2 * time.Second

// item is one queued output: a text frame, or a close frame.
type item struct {
	data   []byte
	close  bool
	code   int
	reason string
}

// Conn is one client connection. Send never blocks; a single writer
// goroutine, started when there is something to write and gone when the
// queue is empty, drains the queue and flushes all drained frames at once.
type Conn struct {
	ws         *websocket.Conn
	raw        *batchConn
	maxPending int
	onSent     func(frames, bytes int)

	mu      sync.Mutex
	queue   []item
	pending int
	writing bool
	closing bool
	onSlow  func()
}

// Subprotocol is the negotiated subprotocol ("" when none).
func (c *Conn) Subprotocol() string { return c.ws.Subprotocol() }

// OnSlow sets a function called once if the connection is cut as too slow.
func (c *Conn) OnSlow(f func()) {
	c.mu.Lock()
	c.onSlow = f
	c.mu.Unlock()
}

// Send queues a text frame. It reports false when the frame was dropped:
// the connection is closing, or this frame put it over its pending limit,
// in which case the client gets a too_slow disconnect (slowFrame) and the
// connection closes.
func (c *Conn) Send(frame []byte, slowFrame []byte) bool {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false
	}
	if c.maxPending > 0 && c.pending+len(frame) > c.maxPending {
		// Drop the backlog: the client could not take it anyway.
		c.queue = append(c.queue[:0], item{data: slowFrame}, item{close: true, code: websocket.CloseNormalClosure})
		c.pending = 0
		c.closing = true
		onSlow := c.onSlow
		c.startWriter()
		c.mu.Unlock()
		if onSlow != nil {
			onSlow()
		}
		return false
	}
	c.queue = append(c.queue, item{data: frame})
	c.pending += len(frame)
	c.startWriter()
	c.mu.Unlock()
	return true
}

// Close queues an optional last text frame and a close frame with code and
// reason; later sends are dropped. The socket closes once the client
// answers, or after a grace period.
func (c *Conn) Close(code int, reason string, last []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	c.closing = true
	if last != nil {
		c.queue = append(c.queue, item{data: last})
	}
	c.queue = append(c.queue, item{close: true, code: code, reason: reason})
	c.startWriter()
}

// startWriter runs the writer unless it is running; c.mu is held.
func (c *Conn) startWriter() {
	if !c.writing {
		c.writing = true
		go c.write()
	}
}

func (c *Conn) write() {
	var batch []item
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.writing = false
			c.mu.Unlock()
			return
		}
		batch, c.queue = c.queue, batch[:0]
		c.pending = 0
		c.mu.Unlock()

		closed := false
		frames, bytes := 0, 0
		c.raw.begin()
		var err error
		for _, it := range batch {
			if it.close {
				msg := websocket.FormatCloseMessage(it.code, it.reason)
				err = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeGrace))
				closed = true
				break
			}
			if err = c.ws.WriteMessage(websocket.TextMessage, it.data); err != nil {
				break
			}
			frames++
			bytes += len(it.data)
		}
		if ferr := c.raw.flush(); err == nil {
			err = ferr
		}
		if err == nil && c.onSent != nil && frames > 0 {
			c.onSent(frames, bytes)
		}
		clear(batch)
		if err != nil {
			// The client cannot be written to: drop it. The read loop ends
			// and cleans up.
			c.raw.Conn.Close()
			c.drop()
			return
		}
		if closed {
			// Let the read loop see the client's close frame, or give up.
			c.raw.Conn.SetReadDeadline(time.Now().Add(closeGrace))
			c.drop()
			return
		}
	}
}

// drop ends writing for good: the queue is discarded.
func (c *Conn) drop() {
	c.mu.Lock()
	c.closing = true
	c.queue = nil
	c.pending = 0
	c.writing = false
	c.mu.Unlock()
}

// ReadLoop reads client text frames and hands each to handle, until the
// client goes away, the connection is closed, or a frame is too large. It
// closes the socket before returning.
func (c *Conn) ReadLoop(handle func([]byte)) error {
	defer c.raw.Conn.Close()
	for {
		kind, data, err := c.ws.ReadMessage()
		if err != nil {
			return err
		}
		if kind == websocket.TextMessage || kind == websocket.BinaryMessage {
			handle(data)
		}
	}
}

// Abort closes the socket at once, without a close frame.
func (c *Conn) Abort() {
	c.drop()
	c.raw.Conn.Close()
}
