package node

import (
	"net/http"
	"sync"

	"github.com/gorilla/websocket"
)

// wsConn is a Connection over a gorilla WebSocket, for tests that drive a
// node with a real WebSocket client (the server's own transport, package
// ws, depends on this package). Frames are written in order by one
// goroutine; nothing is ever cut as too slow.
type wsConn struct {
	c      *websocket.Conn
	out    chan []byte
	mu     sync.Mutex
	closed bool
	done   chan struct{}
}

// serveWS upgrades r with gorilla and serves the connection through g as
// an extended-protocol session.
func serveWS(g *Gate) http.Handler {
	up := websocket.Upgrader{Subprotocols: []string{"actioncable-v1-ext-json"}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		conn := &wsConn{c: c, out: make(chan []byte, 1024), done: make(chan struct{})}
		go conn.write()
		g.Serve(conn, r, SessionOptions{Extended: c.Subprotocol() == "actioncable-v1-ext-json"})
	})
}

func (w *wsConn) write() {
	for f := range w.out {
		if f[0] == 0 { // a close: code in f[1:3], reason after
			w.c.WriteMessage(websocket.CloseMessage, f[1:])
			w.c.Close()
			return
		}
		w.c.WriteMessage(websocket.TextMessage, f)
	}
}

func (w *wsConn) Send(frame, _ []byte) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	w.out <- frame
	return true
}

func (w *wsConn) Close(code int, reason string, last []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	if last != nil {
		w.out <- last
	}
	w.closed = true
	w.out <- append([]byte{0}, websocket.FormatCloseMessage(code, reason)...)
}

func (w *wsConn) Abort()          { w.c.Close() }
func (w *wsConn) OnSlow(f func()) {}

func (w *wsConn) Serve(handle func([]byte), end func()) {
	go func() {
		for {
			_, msg, err := w.c.ReadMessage()
			if err != nil {
				break
			}
			if handle != nil {
				handle(msg)
			}
		}
		w.Close(1000, "", nil)
		if end != nil {
			end()
		}
	}()
}
