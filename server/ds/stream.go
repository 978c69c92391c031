package ds

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// sseHeaders are the headers of an SSE answer besides CORS and
// Options.Header.
var sseHeaders = [][2]string{
	{"Cache-Control", "private, no-cache, no-store, must-revalidate, max-age=0"},
	{"Content-Type", "text/event-stream"},
	{"X-Accel-Buffering", "no"},
}

// stream answers an SSE read: the catch-up as a data event (when there
// is any) and always a control event with the position and upToDate, so
// a reader at the tail learns it at once; then one data and one control
// event per publication, until SSETTL has passed (the client reconnects
// from its last offset). The answer is written off the request's
// goroutine by the WebSocket transport's flushers (ws.Transport.Stream),
// and the session, subscribed from the catch-up's end, feeds it; the
// stream's end ends the session. It reports whether it took the session.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, req *request, c *conn, identifier string, p *page) bool {
	if r.ProtoMajor != 1 {
		// The stream is served off the socket, which HTTP/2 shares.
		status(w, http.StatusHTTPVersionNotSupported)
		return false
	}
	nc, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	nc.SetDeadline(time.Time{})
	inner := h.transport.Stream(nc, h.sseHead(w.Header()))
	var first []byte
	if p.count > 0 {
		first = appendEvent(first, "data", '[', p.body, ']')
	}
	first = appendControl(first, nextCursor(time.Now(), req.cursor), p.next(), !p.cut)
	inner.Send(first, nil)
	c.goLive(sseMode, p.epoch, p.seq)
	c.mu.Lock()
	c.inner, c.events = inner, liveEvents
	if c.onSlow != nil {
		inner.OnSlow(c.onSlow)
	}
	closed := c.closed
	c.mu.Unlock()
	if closed {
		inner.Close(1000, "", nil)
	} else {
		c.handle(subscribeCommand(identifier, req.stream, p.epoch, p.seq))
	}
	ttl := time.AfterFunc(h.opts.SSETTL, func() { inner.Close(1000, "", nil) })
	inner.Serve(nil, func() {
		ttl.Stop()
		c.finish()
	})
	return true
}

// sseHead is the head of an SSE answer: hdr (CORS, Options.Header, ...)
// with the SSE headers, sorted.
func (h *Handler) sseHead(hdr http.Header) []byte {
	for _, kv := range sseHeaders {
		hdr.Set(kv[0], kv[1])
	}
	hdr.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	names := make([]string, 0, len(hdr))
	for k := range hdr {
		names = append(names, k)
	}
	slices.Sort(names)
	b := []byte("HTTP/1.1 200 OK\r\n")
	for _, k := range names {
		for _, v := range hdr[k] {
			b = fmt.Appendf(b, "%s: %s\r\n", k, v)
		}
	}
	return append(b, "Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"...)
}

// liveEvents appends the events of a live publication: a data event with
// a one-element array and a control event at its position, up to date.
func liveEvents(dst []byte, rec record, _ string, _ uint64) []byte {
	dst = appendEvent(dst, "data", '[', rec.message, ']')
	return appendControl(dst, nextCursor(time.Now(), ""), formatOffset(rec.epoch, rec.seq), true)
}

// appendEvent appends an event named name whose data is open, body and
// close: a line break in body (JSON whitespace) starts another data line,
// which SSE readers join back with "\n".
func appendEvent(dst []byte, name string, open byte, body []byte, close byte) []byte {
	dst = append(dst, "event: "...)
	dst = append(dst, name...)
	dst = append(dst, "\ndata:"...)
	dst = append(dst, open)
	for i := 0; i < len(body); i++ {
		switch b := body[i]; b {
		case '\r':
			if i+1 < len(body) && body[i+1] == '\n' {
				i++
			}
			dst = append(dst, "\ndata:"...)
		case '\n':
			dst = append(dst, "\ndata:"...)
		default:
			dst = append(dst, b)
		}
	}
	dst = append(dst, close)
	return append(dst, "\n\n"...)
}

// appendControl appends a control event; its keys are in sorted order.
func appendControl(dst []byte, cursor, next string, upToDate bool) []byte {
	dst = append(dst, "event: control\ndata:{\"streamCursor\":"...)
	dst = strconv.AppendQuote(dst, cursor)
	dst = append(dst, ",\"streamNextOffset\":"...)
	dst = strconv.AppendQuote(dst, next)
	if upToDate {
		dst = append(dst, ",\"upToDate\":true"...)
	}
	return append(dst, "}\n\n"...)
}
