package ws

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"net"
	"net/http"
	"sort"
	"strings"

	"github.com/gorilla/websocket"
)

// UpgradeRaw answers r, an upgrade request read off nc by the listener
// (ParseRequest), without net/http: it checks what the net/http path
// (Upgrade) checks, and when the request passes every check it returns the
// connection, whose 101 response — the same bytes Upgrade sends — leaves
// with the first frames at Serve. Otherwise it reports false and has
// written nothing, so the caller hands the request to net/http, which gives
// the refusal (400, 403, 426...) exactly as before.
//
// The request's token lists must be plain (every comma-separated element a
// token): where gorilla's and Cablehub's readings of a malformed list might
// differ, the request takes the net/http path.
func (t *Transport) UpgradeRaw(nc net.Conn, r *http.Request) (*Conn, bool) {
	t.init()
	h := r.Header
	if r.Method != http.MethodGet ||
		!plainTokenList(h, "Connection", "upgrade") ||
		!plainTokenList(h, "Upgrade", "websocket") ||
		!plainTokenList(h, "Sec-Websocket-Version", "13") ||
		!t.checkOrigin(r) {
		return nil, false
	}
	key := h.Get("Sec-Websocket-Key")
	if k, err := base64.StdEncoding.DecodeString(key); err != nil || len(k) != 16 {
		return nil, false
	}
	subprotocol := selectSubprotocol(websocket.Subprotocols(r))
	deflate, compress := t.negotiate(h)
	return t.newConn(nc, subprotocol, t.handshake(key, subprotocol, deflate.response), deflate, compress), true
}

// handshake is the 101 response to a request with key, in the form gorilla
// writes it: status line, Upgrade, Connection, Sec-WebSocket-Accept, the
// subprotocol, the agreed extension (as Upgrade inserts it; "" for none),
// then Options.Header (sorted; control bytes in values become spaces).
func (t *Transport) handshake(key, subprotocol, extension string) []byte {
	p := make([]byte, 0, 256)
	p = append(p, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	p = append(p, acceptKey(key)...)
	p = append(p, "\r\n"...)
	if subprotocol != "" {
		p = append(p, "Sec-WebSocket-Protocol: "...)
		p = append(p, subprotocol...)
		p = append(p, "\r\n"...)
	}
	if extension != "" {
		p = append(p, extensionsHeader+": "...)
		p = append(p, extension...)
		p = append(p, "\r\n"...)
	}
	names := make([]string, 0, len(t.opts.Header))
	for k := range t.opts.Header {
		if k != "Sec-Websocket-Protocol" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		for _, v := range t.opts.Header[k] {
			p = append(p, k...)
			p = append(p, ": "...)
			for i := 0; i < len(v); i++ {
				b := v[i]
				if b <= 31 {
					b = ' '
				}
				p = append(p, b)
			}
			p = append(p, "\r\n"...)
		}
	}
	return append(p, "\r\n"...)
}

// insertExtension adds the Sec-WebSocket-Extensions line to resp, a 101
// response, where handshake puts it: after Sec-WebSocket-Protocol, or
// after Sec-WebSocket-Accept when there is no subprotocol.
func insertExtension(resp []byte, extension string) []byte {
	at := -1
	for _, name := range []string{"\r\nSec-WebSocket-Protocol:", "\r\nSec-WebSocket-Accept:"} {
		if i := bytes.Index(resp, []byte(name)); i >= 0 {
			at = i + 2 + bytes.Index(resp[i+2:], []byte("\r\n")) + 2
			break
		}
	}
	if at < 2 {
		return resp
	}
	line := extensionsHeader + ": " + extension + "\r\n"
	out := make([]byte, 0, len(resp)+len(line))
	out = append(out, resp[:at]...)
	out = append(out, line...)
	return append(out, resp[at:]...)
}

// acceptKey is RFC 6455's Sec-WebSocket-Accept for a client's key.
func acceptKey(key string) string {
	h := sha1.New()
	h.Write([]byte(key))
	h.Write([]byte("258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// plainTokenList reports whether header name holds token and every
// comma-separated element of its fields is a token (empty elements, as in
// "a, , b", are not).
func plainTokenList(h http.Header, name, token string) bool {
	found := false
	for _, v := range h[name] {
		for _, e := range strings.Split(v, ",") {
			e = strings.Trim(e, " \t")
			if !isToken(e) {
				return false
			}
			found = found || strings.EqualFold(e, token)
		}
	}
	return found
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
