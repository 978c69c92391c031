// Package ws is Cablehub's WebSocket transport: the upgrade, then
// connections whose frames Cablehub reads and writes itself, so that an
// idle connection costs no goroutine and no buffer. Its Handler hands
// upgraded connections to the node's gate. The same poller and flushers
// also serve streamed HTTP answers (Stream), which the Server-Sent Events
// transport uses.
//
// Upgrades arrive two ways. The listener reads most of them itself and
// hands them over with the raw connection (ParseRequest, UpgradeRaw),
// which costs no net/http connection state; requests that path declines,
// and every refusal, go through net/http and gorilla/websocket (Upgrade),
// so their answers are net/http's.
//
// On Linux, plain TCP connections are read through one epoll instance
// (itself parked in Go's netpoller): a goroutine runs only while a
// connection has input to process, and writes the replies it queued before
// it goes. Other output (broadcasts, pings) is queued per connection and
// written by a few flusher goroutines with non-blocking writes, all frames
// queued by then in one syscall, so the busier the server the more frames
// per write; while nothing coalesces (a publication at a time reaching idle
// connections), a flusher submits a batch of connections' writes with one
// io_uring_enter instead, where the kernel allows it. Only a connection
// whose socket is full gets a writer goroutine of its own, which blocks
// (bounded by the write timeout) until the client reads. Elsewhere, and
// for connections without a descriptor, each connection has a reading
// goroutine, and a writer goroutine while it has output.
//
// Connections that owe the server a frame (not heard from since the
// upgrade, or with a frame or fragmented message unfinished) are listed
// with one watcher goroutine, which pings the silent and closes those that
// owe a frame too long (Options.FrameTimeout, FirstFrameTimeout); the
// others are in no list and have no timer.
package ws

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cablehub/cablehub/server/origins"
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
	// MaxMessageSize limits a client message; larger ones close with 1009.
	MaxMessageSize int64
	// MaxPending is the most bytes a connection may have queued before it is
	// cut as too slow; 0 is unlimited.
	MaxPending int
	// WriteTimeout bounds how long a write may wait for a client to read.
	WriteTimeout time.Duration
	// Header is added to the upgrade response.
	Header http.Header
	// FrameTimeout bounds how long a client may leave a frame, or a
	// fragmented message, unfinished before the connection is closed with
	// 1008, so a stalled client does not hold its buffered input forever.
	// Zero is DefaultFrameTimeout; negative is no limit.
	FrameTimeout time.Duration
	// FirstFrameTimeout bounds how long after Serve a client may send no
	// frame at all before the connection is closed with 1008. A client
	// still silent at half of it gets a ping, which WebSocket clients
	// answer by themselves, so a live client with nothing to say (an
	// Action Cable consumer without subscriptions) is kept. Zero is
	// DefaultFirstFrameTimeout; negative is no limit.
	FirstFrameTimeout time.Duration
	// CloseGrace is how long a connection waits for the client's close
	// frame after sending its own before dropping the socket, so a client
	// that never answers cannot hold it. Zero is DefaultCloseGrace.
	CloseGrace time.Duration
	// OnSent, if set, is told after each write how many text frames and
	// bytes of them were handed to the socket (or, when it was full, to the
	// connection's writer), for metrics.
	OnSent func(frames, bytes int)
	// IOURing lets the flushers submit their writes through io_uring, a
	// batch of connections per system call, while their writes do not
	// coalesce (see flusher), where the kernel allows it; else, and
	// without it, they write with write(2).
	IOURing bool
	// Compression accepts permessage-deflate (RFC 7692) from clients that
	// offer it; the others get plain frames from the same server.
	Compression bool
	// CompressionMinSize is the smallest server message sent compressed to
	// such clients; smaller ones go out plain (RFC 7692 lets any message be
	// uncompressed), as deflate saves little on them and costs both ends
	// CPU. Zero is DefaultCompressionMinSize.
	CompressionMinSize int
}

// DefaultCompressionMinSize is Options.CompressionMinSize when unset.
const DefaultCompressionMinSize = 256

func (o *Options) compressionMinSize() int {
	if o.CompressionMinSize > 0 {
		return o.CompressionMinSize
	}
	return DefaultCompressionMinSize
}

func (o *Options) closeGrace() time.Duration {
	if o.CloseGrace > 0 {
		return o.CloseGrace
	}
	return DefaultCloseGrace
}

// DefaultOptions are the transport's settings without flags: AnyCable's
// --max_message_size, Cablehub's --ws_max_pending_size and
// --ws_write_timeout, and io_uring where the kernel allows it. Callers
// start from these and add Header and OnSent.
func DefaultOptions() Options {
	return Options{
		MaxMessageSize: 65536,
		MaxPending:     1 << 20,
		WriteTimeout:   2 * time.Second,
		IOURing:        true,

		CompressionMinSize: DefaultCompressionMinSize,
	}
}

// Transport upgrades HTTP requests to connections. It is safe for
// concurrent use. Its background goroutines start with the first
// connection and stop at Close.
type Transport struct {
	opts     Options
	upgrader websocket.Upgrader

	start    sync.Once
	stop     sync.Once
	noPoller bool    // tests: read and write on goroutines, as without epoll
	noRing   bool    // tests: as if io_uring could not be set up
	poller   *poller // nil: connections read on goroutines of their own
	flushers []*flusher
	watcher  *watcher // nil: no frame limits
	next     atomic.Uint32
	// deflate compresses and inflates for the connections that agreed
	// permessage-deflate; nil without Options.Compression.
	deflate *deflateCodec

	readBufs   sync.Pool // *[]byte of readBufSize, for input
	writeBufs  sync.Pool // *[]byte, for writer goroutines
	rawWriters sync.Pool // *rawWriter, for writes on a connection's own goroutines
}

// readBufSize is the buffer a connection's input is read into while it is
// processed; one is borrowed per read, none is held by idle connections.
const readBufSize = 4096

// NewTransport returns a transport for opts.
func NewTransport(opts Options) *Transport {
	t := &Transport{opts: opts, watcher: newWatcher(opts)}
	if opts.Compression {
		t.deflate = &deflateCodec{}
	}
	t.readBufs.New = func() any { b := make([]byte, readBufSize); return &b }
	t.writeBufs.New = func() any { b := make([]byte, 0, 4096); return &b }
	t.rawWriters.New = func() any { w := &rawWriter{}; w.init(); return w }
	t.upgrader = websocket.Upgrader{
		// Subprotocols stays nil: gorilla would prefer the server's order,
		// while AnyCable picks the client's first supported offer.
		//
		// Gorilla only performs the handshake. With no buffer sizes set it
		// borrows net/http's buffers for it, and its connection is dropped
		// right after, so a connection keeps nothing of it.
		CheckOrigin: t.checkOrigin,
	}
	return t
}

func (t *Transport) init() {
	t.start.Do(func() {
		if !t.noPoller {
			if p, err := newPoller(); err == nil {
				t.poller = p
				go p.run()
			}
		}
		t.flushers = make([]*flusher, runtime.GOMAXPROCS(0))
		for i := range t.flushers {
			t.flushers[i] = newFlusher(t.opts.IOURing && !t.noRing)
			go t.flushers[i].run()
		}
		if t.watcher != nil {
			go t.watcher.run()
		}
	})
}

// Close stops the transport's background goroutines. Connections still open
// are not closed, but stop being read; call it after they are gone.
func (t *Transport) Close() {
	t.init()
	t.stop.Do(func() {
		if t.poller != nil {
			t.poller.close()
		}
		for _, f := range t.flushers {
			f.close()
		}
		if t.watcher != nil {
			t.watcher.close()
		}
	})
}

func (t *Transport) checkOrigin(r *http.Request) bool {
	if len(t.opts.AllowedOrigins) == 0 {
		return true
	}
	return origins.Match(r.Header.Get("Origin"), t.opts.AllowedOrigins)
}

// Upgrade turns the request into a connection. On failure the HTTP error
// (400 for a plain GET, 403 for a rejected origin, 426 for a WebSocket
// version other than 13) has been written. The connection reads nothing
// until Serve.
func (t *Transport) Upgrade(w http.ResponseWriter, r *http.Request) (*Conn, error) {
	t.init()
	if hasToken(r.Header, "Upgrade", "websocket") && !hasToken(r.Header, "Sec-WebSocket-Version", "13") {
		refuseVersion(w)
		return nil, errVersion
	}
	header := t.opts.Header.Clone()
	if header == nil {
		header = http.Header{}
	}
	if p := selectSubprotocol(websocket.Subprotocols(r)); p != "" {
		header.Set("Sec-WebSocket-Protocol", p)
	}
	var captured *captureConn
	hw := &hijackWriter{ResponseWriter: w, wrap: func(nc net.Conn) net.Conn {
		captured = &captureConn{Conn: nc}
		return captured
	}}
	wsConn, err := t.upgrader.Upgrade(hw, r, header)
	if err != nil {
		return nil, err
	}
	// Gorilla negotiates no extension (its compression is off): the
	// agreed one, if any, joins its response after the subprotocol.
	deflate, compress := t.negotiate(r.Header)
	prefix := captured.buf
	if compress {
		prefix = insertExtension(prefix, deflate.response)
	}
	// Gorilla refuses clients that send before the handshake completes, so
	// nothing is buffered in it: the socket is all there is.
	return t.newConn(unwrapConn(captured.Conn), wsConn.Subprotocol(), prefix, deflate, compress), nil
}

// negotiate is the permessage-deflate agreement for a request's offers;
// compress is false when compression is off or no offer is acceptable.
func (t *Transport) negotiate(h http.Header) (p deflateParams, compress bool) {
	if t.deflate == nil {
		return p, false
	}
	return negotiateDeflate(h)
}

// newConn is an upgraded connection on nc whose handshake response, not
// sent yet, is prefix; compress says the client agreed deflate.
func (t *Transport) newConn(nc net.Conn, subprotocol string, prefix []byte, deflate deflateParams, compress bool) *Conn {
	c := &Conn{t: t, nc: nc, subprotocol: subprotocol, prefix: prefix}
	c.fr.limit = t.opts.MaxMessageSize
	if compress {
		c.deflateBits = deflate.windowBits
		c.fr.inflate = t.deflate
	}
	if t.poller != nil {
		if s := tlsSocket(c.nc); s != nil {
			c.raw, c.tlsSock = s.raw, s
		} else {
			c.raw = rawConn(c.nc)
		}
	}
	if c.raw != nil && c.tlsSock == nil {
		c.flusher = t.flushers[int(t.next.Add(1))%len(t.flushers)]
	}
	if c.raw != nil {
		// The upgrading goroutine sends the handshake response together
		// with the first frames (welcome or refusal) at Serve.
		c.writer = writerDeferred
	}
	return c
}

// ReplayConn is a connection that first gives back bytes already read
// from the connection under it. The runner's front (replayConn in
// server/runner) is one: it reads a request head to serve WebSocket
// upgrades itself (UpgradeRaw) and replays what it does not take to
// net/http, wrapped so. An upgrade can be among those (its head longer
// than MaxRequestHead, say) and reach Upgrade on such a connection.
//
// Only a plain *net.TCPConn can be read by the poller, which reads its
// socket directly and would miss bytes the wrapper still holds. Upgrade
// therefore asks Drained: once everything replayed has been read (ok),
// the connection is inner from then on, which the poller can read;
// otherwise it is read through the wrapper by a goroutine of its own, as
// on a system without the poller.
type ReplayConn interface {
	net.Conn
	// Drained returns the connection under the wrapper, and whether all
	// the bytes replayed have been read, so that inner can be read in its
	// place. It does not read.
	Drained() (inner net.Conn, ok bool)
}

// unwrapConn returns the connection under a ReplayConn once it has given
// back all it held, so that the poller can read it; otherwise nc itself.
func unwrapConn(nc net.Conn) net.Conn {
	if w, ok := nc.(ReplayConn); ok {
		if inner, ok := w.Drained(); ok {
			return inner
		}
	}
	return nc
}

var errVersion = errors.New("websocket: unsupported version")

// refuseVersion answers an upgrade request for a WebSocket version other
// than 13 as RFC 6455 §4.4 asks: 426 naming the version the server speaks,
// so a client that can speak several may retry with it. (Gorilla would
// answer 400, which tells the client nothing.)
func refuseVersion(w http.ResponseWriter) {
	h := w.Header()
	h["Sec-WebSocket-Version"] = []string{"13"} // as RFC 6455 spells it
	// RFC 9110 §15.5.22: a 426 names the protocol to upgrade to.
	h.Set("Upgrade", "websocket")
	h.Set("Connection", "Upgrade")
	http.Error(w, "426 Upgrade Required: this server speaks WebSocket version 13", http.StatusUpgradeRequired)
}

// hasToken reports whether header name, a comma-separated list in one or
// more fields, holds token (compared case-insensitively).
func hasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// selectSubprotocol returns the first offered protocol the server speaks,
// as the package's constant: the offered string may be a slice of the
// whole request head (ParseRequest), which a connection must not keep.
func selectSubprotocol(offered []string) string {
	for _, p := range offered {
		switch p {
		case ProtocolActionCable:
			return ProtocolActionCable
		case ProtocolExtended:
			return ProtocolExtended
		}
	}
	return ""
}

// hijackWriter hands gorilla a capturing connection when it hijacks.
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

// captureConn keeps what gorilla writes (the handshake response) instead of
// sending it, so it leaves in one write with the first frames: a client
// gets its upgrade and welcome in one segment, and one read.
type captureConn struct {
	net.Conn
	buf []byte
}

func (c *captureConn) Write(p []byte) (int, error) {
	c.buf = append(c.buf, p...)
	return len(p), nil
}
