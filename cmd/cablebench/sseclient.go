package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"
)

// The Server-Sent Events client (--sse): a GET of the server's events
// endpoint naming the subscription in its query, as AnyCable's /events
// takes it, whose answer is a text/event-stream body, chunked or not. It
// reads through the same benchConn as the WebSocket client (and, on Linux,
// the same epoll loop), so it costs the client as little per delivery.

// sseStream parses a text/event-stream body as it arrives: the chunked
// transfer coding (when the answer announced it) and then the events.
// It keeps what it has not parsed yet between calls of feed.
type sseStream struct {
	chunked  bool
	left     int    // bytes of the current chunk's data still to come
	crlf     int    // bytes of the line break after a chunk's data still to skip
	sizeLine []byte // a chunk-size line not complete yet
	ended    bool   // the last chunk came

	body  []byte // body bytes not yet parsed into lines
	name  []byte // the current event's name ("" for a message)
	data  []byte // the current event's data lines, joined by "\n"
	any   bool   // the current event has a data line
	lines int    // lines of the current event, for the size bound
}

// maxEventLines bounds the lines of one event, so a stream that never
// ends an event cannot grow the client without bound.
const maxEventLines = 1 << 16

var errBodyEnded = errors.New("server ended the event stream")

// feed parses received bytes. For each complete event with data (events
// without a data line are not dispatched, as EventSource does), it calls
// onMessage with the data of an unnamed event (a publication) and onNamed
// with the name and data of a named one ("welcome", "ping",
// "confirm_subscription", ...); either may be nil. The slices are valid
// during the call only. When onNamed returns true, parsing stops after
// that event, the rest kept for the next call (which may give no data).
// It fails on a malformed chunk size or once the body has ended and all
// of it is parsed.
func (s *sseStream) feed(data []byte, onMessage func([]byte), onNamed func(name, data []byte) (stop bool)) error {
	if !s.chunked {
		s.body = append(s.body, data...)
	} else if err := s.dechunk(data); err != nil {
		return err
	}
	stopped, err := s.events(onMessage, onNamed)
	if err != nil {
		return err
	}
	if s.ended && !stopped {
		return errBodyEnded
	}
	return nil
}

// dechunk appends the data of the chunks in data to s.body, keeping its
// place inside a chunk, its line break, or its size line between calls.
// A chunk extension is ignored; a zero-size chunk ends the body.
func (s *sseStream) dechunk(data []byte) error {
	for len(data) > 0 && !s.ended {
		switch {
		case s.left > 0:
			n := min(s.left, len(data))
			s.body = append(s.body, data[:n]...)
			s.left -= n
			data = data[n:]
			if s.left == 0 {
				s.crlf = 2
			}
		case s.crlf > 0:
			if data[0] != "\r\n"[2-s.crlf] {
				return errors.New("chunk data not followed by CRLF")
			}
			s.crlf--
			data = data[1:]
		default:
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				if len(s.sizeLine)+len(data) > 1024 {
					return errors.New("chunk size line too long")
				}
				s.sizeLine = append(s.sizeLine, data...)
				return nil
			}
			line := append(s.sizeLine, data[:i]...)
			data = data[i+1:]
			s.sizeLine = s.sizeLine[:0]
			size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r"), []byte(";"))
			n, err := strconv.ParseUint(string(bytes.TrimSpace(size)), 16, 31)
			if err != nil {
				return fmt.Errorf("bad chunk size %q", line)
			}
			s.left, s.ended = int(n), n == 0
		}
	}
	return nil
}

// events parses the complete lines of s.body (ended by LF or CRLF) into
// events, dispatching each at the blank line that ends it, and keeps an
// incomplete last line (or, when onNamed stops it, all after its event)
// for the next call. Fields: "event" names the event, "data" adds a data
// line (one space after the colon is dropped), others ("id", "retry",
// comments) are ignored.
func (s *sseStream) events(onMessage func([]byte), onNamed func(name, data []byte) bool) (stopped bool, err error) {
	rest := s.body
	for !stopped {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		line := bytes.TrimSuffix(rest[:i], []byte("\r"))
		rest = rest[i+1:]
		if len(line) == 0 {
			stopped = s.dispatch(onMessage, onNamed)
			continue
		}
		if s.lines++; s.lines > maxEventLines {
			return false, errors.New("event too long")
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			s.name = append(s.name[:0], value...)
		case "data":
			if s.any {
				s.data = append(s.data, '\n')
			}
			s.data = append(s.data, value...)
			s.any = true
		}
	}
	s.body = append(s.body[:0], rest...)
	return stopped, nil
}

// dispatch ends the current event, passing it on if it had data, and
// reports whether onNamed asked to stop.
func (s *sseStream) dispatch(onMessage func([]byte), onNamed func(name, data []byte) bool) (stop bool) {
	switch {
	case !s.any:
	case len(s.name) == 0 && onMessage != nil:
		onMessage(s.data)
	case len(s.name) > 0 && onNamed != nil:
		stop = onNamed(s.name, s.data)
	}
	s.name, s.data, s.any, s.lines = s.name[:0], s.data[:0], false, 0
	return stop
}

// dialSSE opens an event stream: a GET of target with query added to its
// own, and header (complete request header lines, each ending in CRLF).
// It fails unless the server answers 200 with a text/event-stream body.
func dialSSE(ctx context.Context, target, query, header string) (*benchConn, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	if u.RawQuery != "" && query != "" {
		query = "&" + query
	}
	u.RawQuery += query
	nc, err := dialTCP(ctx, u.Host)
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(deadlineWithin(ctx, 10*time.Second))
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n" + header + "\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		nc.Close()
		return nil, err
	}
	head, rest, err := readHead(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 200 ")) || !headerHas(head, "content-type", "text/event-stream") {
		nc.Close()
		status, _, _ := bytes.Cut(head, []byte("\r\n"))
		return nil, &statusError{status: string(status)}
	}
	c := &benchConn{nc: nc, sse: &sseStream{chunked: headerHas(head, "transfer-encoding", "chunked")}}
	if len(rest) > 0 {
		c.pending = bytes.Clone(rest)
	}
	nc.SetDeadline(time.Time{})
	return c, nil
}

// headerHas reports whether a response head has the header name (lower
// case) with a value that starts with prefix, case-insensitively.
func headerHas(head []byte, name, prefix string) bool {
	for _, line := range bytes.Split(head, []byte("\r\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		v = bytes.TrimSpace(v)
		if ok && bytes.EqualFold(bytes.TrimSpace(k), []byte(name)) && len(v) >= len(prefix) && bytes.EqualFold(v[:len(prefix)], []byte(prefix)) {
			return true
		}
	}
	return false
}

// connectSSE opens one event stream for sub, sending the extra request
// header lines, and waits for its confirm_subscription event, within 10 s
// of the answer or by ctx's deadline, whichever is sooner.
func connectSSE(ctx context.Context, target, header string, sub subscription) (*benchConn, error) {
	c, err := dialSSE(ctx, target, sub.query, header)
	if err != nil {
		return nil, err
	}
	if err := c.awaitEvent(deadlineWithin(ctx, 10*time.Second), "confirm_subscription"); err != nil {
		c.nc.Close()
		return nil, err
	}
	return c, nil
}

// awaitEvent reads an event stream until an event named want arrives, by
// deadline. A reject_subscription or disconnect event before it fails, as
// a refusalError; messages and other events before it are dropped, those
// after it kept for feed.
func (c *benchConn) awaitEvent(deadline time.Time, want string) error {
	found := false
	var refusal error
	onNamed := func(name, data []byte) bool {
		switch n := string(name); {
		case n == want:
			found = true
		case n == "reject_subscription" || n == "disconnect":
			refusal = &refusalError{n, string(data)}
		}
		return found || refusal != nil
	}
	return c.readFor(deadline, func(data []byte) (bool, error) {
		err := c.feedSSE(data, nil, onNamed)
		switch {
		case refusal != nil:
			return false, refusal
		case err != nil:
			return false, err
		}
		return found, nil
	})
}

// feedSSE gives an event stream's received bytes, after any the head's
// reads brought, to its parser (see sseStream.feed).
func (c *benchConn) feedSSE(data []byte, onMessage func([]byte), onNamed func(name, data []byte) bool) error {
	if len(c.pending) > 0 {
		data = append(c.pending, data...)
		c.pending = nil
	}
	return c.sse.feed(data, onMessage, onNamed)
}
