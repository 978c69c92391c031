package runner

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/cablehub/cablehub/server/ws"
)

// rawUpgrader serves an upgrade request read off the raw connection;
// *ws.Handler is one. It reports false, having written nothing, for a
// request it does not upgrade.
type rawUpgrader interface {
	ServeRaw(nc net.Conn, r *http.Request) bool
}

// wsFront answers WebSocket upgrade requests for the listener's WebSocket
// paths on the raw connection, before net/http: the request head is read
// into a pooled buffer, parsed (ws.ParseRequest) and upgraded (the
// handler's ServeRaw), so an upgrade costs no net/http connection state and
// none of the 8 KiB of bufio buffers net/http allocates per connection and
// cannot reuse after a hijack. Everything else it reads — other paths,
// requests ParseRequest does not take, upgrades the handler refuses, heads
// longer than ws.MaxRequestHead — is replayed to net/http unchanged, so
// those requests get exactly the answers they got before.
type wsFront struct {
	// mounts are the transports with a raw hook (mount.raw).
	mounts []mount
	bufs   sync.Pool // *[]byte of ws.MaxRequestHead
	onRaw  func()    // tests: told of each upgrade answered here
}

func newWSFront(mounts []mount) *wsFront {
	f := &wsFront{}
	for _, m := range mounts {
		if m.raw != nil {
			f.mounts = append(f.mounts, m)
		}
	}
	f.bufs.New = func() any { b := make([]byte, ws.MaxRequestHead); return &b }
	return f
}

// serve reads c's request head (within timeout) and upgrades it, or hands
// c to httpLn with what was read.
func (f *wsFront) serve(c net.Conn, httpLn *chanListener, timeout time.Duration) {
	bp := f.bufs.Get().(*[]byte)
	n, complete, err := readHead(c, *bp, timeout)
	// The buffer goes back before the upgrade, which may wait on the
	// application's Connect: a storm must not hold one per handshake.
	head := string((*bp)[:n])
	f.bufs.Put(bp)
	if complete {
		if r, ok := ws.ParseRequest(head); ok && f.mount(r.URL.Path) != nil {
			r.RemoteAddr = c.RemoteAddr().String()
			if tc, ok := c.(*tls.Conn); ok {
				state := tc.ConnectionState()
				r.TLS = &state
			}
			if f.mount(r.URL.Path).raw.ServeRaw(c, r) {
				if f.onRaw != nil {
					f.onRaw()
				}
				return
			}
		}
	}
	if n == 0 || errors.Is(err, os.ErrDeadlineExceeded) {
		// As net/http does with a request that does not arrive in time.
		c.Close()
		return
	}
	httpLn.push(&replayConn{Conn: c, pending: []byte(head)})
}

// mount returns the transport with a raw hook serving path, nil for none.
func (f *wsFront) mount(path string) *mount {
	for i := range f.mounts {
		if f.mounts[i].matches(path) {
			return &f.mounts[i]
		}
	}
	return nil
}

// readHead reads into buf until it holds a whole request head and nothing
// after it (complete), buf is full, the connection fails or timeout passes.
func readHead(c net.Conn, buf []byte, timeout time.Duration) (n int, complete bool, err error) {
	c.SetReadDeadline(time.Now().Add(timeout))
	defer c.SetReadDeadline(time.Time{})
	end := -1
	for end < 0 && n < len(buf) && err == nil {
		var m int
		m, err = c.Read(buf[n:])
		end = ws.HeadEnd(buf[:n+m], n)
		n += m
	}
	return n, end == n, err
}

// replayConn gives net/http the bytes the front read before the
// connection's own. It is a ws.ReplayConn, so that a WebSocket upgraded
// through net/http is read by the poller once they are read.
type replayConn struct {
	net.Conn
	pending []byte
}

var _ ws.ReplayConn = (*replayConn)(nil)

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// Drained returns the connection under c, and whether everything
// replayed has been read (see ws.ReplayConn).
func (c *replayConn) Drained() (net.Conn, bool) {
	return c.Conn, len(c.pending) == 0
}
