package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"
)

// benchConn is a minimal WebSocket client: the handshake, masked text
// frames (and pongs) out, unmasked frames in. The load tool has its own because what it
// measures is the server: a general-purpose client (a goroutine, a read
// deadline, an allocation and two read syscalls per message) spent more
// CPU per delivery than the server did, on the same two cores.
//
// With sse set it is instead an event stream's reader (sseclient.go):
// feed then passes on the data of its messages, and it sends nothing.
// With pusher set it is a Pusher client (pusherclient.go): feed answers
// the server's pusher:ping and counts presence member events itself.
type benchConn struct {
	nc      net.Conn
	pending []byte // received bytes not yet parsed into frames
	// message gathers a text message sent in fragments (AnyCable
	// fragments large ones, such as a big presence roster).
	message    []byte
	fragmented bool
	sse        *sseStream
	pusher     *pusherStats
	// agreed is set when the server agreed permessage-deflate; deflate
	// then inflates messages whose first frame has RSV1 set (deflate.go).
	agreed  bool
	deflate *inflater
	// compressed marks the fragmented message in progress as compressed.
	compressed bool
}

const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// dial opens a WebSocket connection offering subprotocol (none if empty),
// adding header (complete request header lines, each ending in CRLF) to
// the request.
func dial(ctx context.Context, target, header, subprotocol string) (*benchConn, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	nc, err := dialTCP(ctx, u.Host)
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(deadlineWithin(ctx, 10*time.Second))
	if u.Scheme == "wss" || u.Scheme == "https" {
		tc := tls.Client(nc, tlsConfig(u.Hostname()))
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	var keyBytes [16]byte
	rand.Read(keyBytes[:])
	key := base64.StdEncoding.EncodeToString(keyBytes[:])
	if subprotocol != "" {
		header = "Sec-WebSocket-Protocol: " + subprotocol + "\r\n" + header
	}
	path := u.RequestURI()
	req := "GET " + path + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key +
		"\r\n" + header + "\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		nc.Close()
		return nil, err
	}
	head, rest, err := readHead(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	sum := sha1.Sum([]byte(key + websocketGUID))
	accept := base64.StdEncoding.EncodeToString(sum[:])
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 101 ")) || !hasHeader(head, "sec-websocket-accept", accept) {
		nc.Close()
		status, _, _ := bytes.Cut(head, []byte("\r\n"))
		return nil, &statusError{status: string(status)}
	}
	c := &benchConn{nc: nc, agreed: agreedDeflate(head)}
	if len(rest) > 0 {
		c.pending = bytes.Clone(rest)
	}
	nc.SetDeadline(time.Time{})
	return c, nil
}

// readHead reads an HTTP response head from nc by hand (no http.Response,
// no bufio reader per connection): head is the status line and header
// lines, each ending in CRLF, without the blank line; rest is what came
// after it in the same reads (the first frames or chunks), sharing head's
// array. It fails on a read error or a head over 16 KiB.
func readHead(nc net.Conn) (head, rest []byte, err error) {
	buf := make([]byte, 0, 512)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := nc.Read(buf[len(buf):cap(buf)])
		if err != nil {
			return nil, nil, fmt.Errorf("reading the response head: %w", err)
		}
		buf = buf[:len(buf)+n]
		if i := bytes.Index(buf, []byte("\r\n\r\n")); i >= 0 {
			return buf[:i+2], buf[i+4:], nil
		}
		if len(buf) > 16<<10 {
			return nil, nil, errors.New("response head too large")
		}
	}
}

// deadlineWithin is d from now, or ctx's deadline if that is sooner.
func deadlineWithin(ctx context.Context, d time.Duration) time.Time {
	deadline := time.Now().Add(d)
	if cd, ok := ctx.Deadline(); ok && cd.Before(deadline) {
		return cd
	}
	return deadline
}

// statusError is a handshake the server answered with something other
// than a valid 101 Switching Protocols.
type statusError struct{ status string } // the response's status line

func (e *statusError) Error() string { return "handshake answered " + e.status }

// hasHeader reports whether a response head has the header name (lower
// case) with exactly value.
func hasHeader(head []byte, name, value string) bool {
	for _, line := range bytes.Split(head, []byte("\r\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if ok && strings.EqualFold(string(bytes.TrimSpace(k)), name) && string(bytes.TrimSpace(v)) == value {
			return true
		}
	}
	return false
}

// send writes one masked text frame.
func (c *benchConn) send(payload []byte) error { return c.writeFrame(0x1, payload) }

// writeFrame writes one final masked frame of opcode op, in one write, so
// frames written from different goroutines (a pong from a reader, a
// command from a sender) do not interleave.
func (c *benchConn) writeFrame(op byte, payload []byte) error {
	frame := make([]byte, 0, 14+len(payload))
	frame = append(frame, 0x80|op)
	switch n := len(payload); {
	case n <= 125:
		frame = append(frame, 0x80|byte(n))
	case n <= 0xFFFF:
		frame = append(frame, 0x80|126, byte(n>>8), byte(n))
	default:
		frame = append(frame, 0x80|127)
		frame = binary.BigEndian.AppendUint64(frame, uint64(n))
	}
	var mask [4]byte
	rand.Read(mask[:])
	frame = append(frame, mask[:]...)
	for i, b := range payload {
		frame = append(frame, b^mask[i&3])
	}
	_, err := c.nc.Write(frame)
	return err
}

var errClosed = errors.New("server closed the connection")

// nextFrame parses one complete frame from data, returning its payload and
// the bytes after it; ok is false when data holds no complete frame. fin
// is false for a fragment other than a message's last.
func nextFrame(data []byte) (op byte, fin bool, payload, rest []byte, ok bool, err error) {
	if len(data) < 2 {
		return 0, false, nil, data, false, nil
	}
	op, fin = data[0]&0x0f, data[0]&0x80 != 0
	header, n := 2, uint64(data[1]&0x7f)
	switch n {
	case 126:
		if len(data) < 4 {
			return 0, false, nil, data, false, nil
		}
		header, n = 4, uint64(binary.BigEndian.Uint16(data[2:]))
	case 127:
		if len(data) < 10 {
			return 0, false, nil, data, false, nil
		}
		header, n = 10, binary.BigEndian.Uint64(data[2:])
	}
	if uint64(len(data)-header) < n {
		return 0, false, nil, data, false, nil
	}
	end := header + int(n)
	if op == 0x8 {
		return op, fin, data[header:end], data[end:], true, errClosed
	}
	return op, fin, data[header:end], data[end:], true, nil
}

// feed appends received bytes and calls onText for each complete text
// frame's payload (valid during the call only). A ping is answered with a
// pong, as any WebSocket client does: the server pings a client that has
// not sent anything yet and closes it if no answer comes. A Pusher
// client's pusher:ping is answered as well, and it and presence member
// events are not passed on (see pusherStats.intercept). On an event
// stream it calls onText for each unnamed event's data (a publication)
// and drops named events (pings, confirmations).
func (c *benchConn) feed(data []byte, onText func([]byte)) error {
	if c.sse != nil {
		return c.feedSSE(data, onText, nil)
	}
	if len(c.pending) > 0 {
		c.pending = append(c.pending, data...)
		data = c.pending
	}
	for {
		rsv1 := len(data) > 0 && data[0]&0x40 != 0
		op, fin, payload, rest, ok, err := nextFrame(data)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if op, payload, ok = c.assemble(op, fin, payload, rsv1); !ok {
			data = rest
			continue
		}
		if rsv1 || (op == 0x1 && c.compressed) {
			c.compressed = false
			if c.deflate == nil {
				return errors.New("compressed frame without permessage-deflate")
			}
			if payload, err = c.deflate.inflate(payload); err != nil {
				return err
			}
		}
		switch op {
		case 0x1:
			handled := false
			if c.pusher != nil {
				if handled, err = c.pusher.intercept(c, payload); err != nil {
					return err
				}
			}
			if !handled {
				onText(payload)
			}
		case 0x9:
			if err := c.writeFrame(0xA, payload); err != nil {
				return err
			}
		}
		data = rest
	}
	switch {
	case len(data) == 0:
		c.pending = c.pending[:0]
	case len(c.pending) > 0:
		c.pending = append(c.pending[:0], data...)
	default:
		c.pending = bytes.Clone(data)
	}
	return nil
}

// assemble gathers a fragmented text message: it returns the whole
// message (as a text frame) once its last fragment is in, ok false for
// the fragments before; other frames pass through.
func (c *benchConn) assemble(op byte, fin bool, payload []byte, rsv1 bool) (byte, []byte, bool) {
	switch {
	case op == 0x1 && !fin:
		c.message, c.fragmented, c.compressed = append(c.message[:0], payload...), true, rsv1
		return 0, nil, false
	case op == 0x0 && c.fragmented:
		c.message = append(c.message, payload...)
		if !fin {
			return 0, nil, false
		}
		c.fragmented = false
		return 0x1, c.message, true
	}
	return op, payload, true
}

// readUntil reads with blocking reads until match accepts a message (or
// fails), or the deadline passes. Messages after the accepted one in the
// same read are dropped: callers wait for replies that nothing follows.
func (c *benchConn) readUntil(deadline time.Time, match func([]byte) (bool, error)) error {
	found := false
	var merr error
	check := func(p []byte) {
		if !found && merr == nil {
			found, merr = match(p)
		}
	}
	return c.readFor(deadline, func(data []byte) (bool, error) {
		if err := c.feed(data, check); err != nil {
			// A refusal is usually followed by the close in the same
			// read: report the refusal, which says why.
			if merr != nil {
				return false, merr
			}
			return false, err
		}
		return found || merr != nil, merr
	})
}

// readFor gives step the bytes of each blocking read (nil first, for
// those already pending) until step reports done or fails, a read fails,
// or the deadline passes; it returns step's error or the read's.
func (c *benchConn) readFor(deadline time.Time, step func(data []byte) (done bool, err error)) error {
	c.nc.SetReadDeadline(deadline)
	defer c.nc.SetReadDeadline(time.Time{})
	buf := make([]byte, 4096)
	for data := []byte(nil); ; {
		done, err := step(data)
		if done || err != nil {
			return err
		}
		n, err := c.nc.Read(buf)
		if err != nil && n == 0 {
			return err
		}
		data = buf[:n]
	}
}

func (c *benchConn) tcp() *net.TCPConn { return c.nc.(*net.TCPConn) }

// isTLS reports whether the connection is wss:// (https:// for an event
// stream): its socket carries records, not frames, so it is read through
// the TLS layer (receiveEach), never from the descriptor.
func (c *benchConn) isTLS() bool {
	_, ok := c.nc.(*tls.Conn)
	return ok
}

// tlsConfig is the client side of a wss:// benchmark: the load tool talks
// to loopback servers only, usually with a certificate made for the test,
// so the certificate is not verified; HTTP/1.1 is offered, as browsers'
// WebSocket connections do.
func tlsConfig(host string) *tls.Config {
	return &tls.Config{ServerName: host, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}
}
