package runner

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"time"

	"github.com/cablehub/cablehub/server/ws"
)

// tlsFront is the front of a listener serving TLS: it makes each
// connection's handshake (within the route timeout) off the accept loop,
// then hands the connection on as the plain front does: WebSocket upgrades
// (and Server-Sent Events) to the raw front, read through the TLS layer,
// everything else to net/http as a *tls.Conn. Connections are made on
// ws.TLSSocket, so the WebSocket transport's poller can read them once
// upgraded, and an idle wss:// connection holds no goroutine.
//
// A client speaking plain HTTP to the port gets net/http's answer to it,
// byte for byte ("HTTP/1.0 400 Bad Request", "Client sent an HTTP request
// to an HTTPS server."), and the connection is closed.
type tlsFront struct {
	inner   net.Listener
	config  *tls.Config
	http    *chanListener
	ws      *wsFront // nil: every connection goes to net/http
	timeout time.Duration
}

// newTLSFront starts serving inner's connections with TLS and returns the
// listener net/http accepts from.
func newTLSFront(inner net.Listener, config *tls.Config, ws *wsFront, timeout time.Duration) net.Listener {
	f := &tlsFront{inner: inner, config: config, http: newChanListener(inner), ws: ws, timeout: timeout}
	go f.run()
	return f.http
}

func (f *tlsFront) run() {
	acceptEach(f.inner, f.http.fail, func(c net.Conn) { go f.serve(c) })
}

// serve handshakes c and hands it on.
func (f *tlsFront) serve(raw net.Conn) {
	tc := tls.Server(ws.NewTLSSocket(raw), f.config)
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
			re.Conn.SetWriteDeadline(time.Now().Add(f.timeout))
			io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		}
		raw.Close()
		return
	}
	if f.ws != nil && tc.ConnectionState().NegotiatedProtocol != "h2" {
		f.ws.serve(tc, f.http, f.timeout)
		return
	}
	f.http.push(tc)
}

// looksLikeHTTP reports whether a TLS record header is the start of a
// plain HTTP request, as net/http tells them.
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// tlsState gives net/http's requests on a connection the front replayed
// (a replayConn over a *tls.Conn, whose head the front read) the TLS state
// net/http would have set itself on the *tls.Conn: r.TLS, which the RPC
// back end's request environment reads (wss:// and https:// URLs).
type tlsStateKey struct{}

func withTLSState(ctx context.Context, c net.Conn) context.Context {
	if rc, ok := c.(*replayConn); ok {
		if tc, ok := rc.Conn.(*tls.Conn); ok {
			state := tc.ConnectionState()
			return context.WithValue(ctx, tlsStateKey{}, &state)
		}
	}
	return ctx
}

func tlsStateOf(ctx context.Context) *tls.ConnectionState {
	s, _ := ctx.Value(tlsStateKey{}).(*tls.ConnectionState)
	return s
}
