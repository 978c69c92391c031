package ds

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/cablehub/cablehub/server/broker"
	"github.com/cablehub/cablehub/server/node"
	"github.com/cablehub/cablehub/server/protocol"
)

// brokerTimeout bounds a read's calls to the broker.
const brokerTimeout = 5 * time.Second

// Bounds of one catch-up answer: the broker keeps at most --history_limit
// publications, and a page is cut past these too (the answer then does
// not claim to be up to date, and the client reads on from its end).
const (
	maxPageItems = 1000
	maxPageBytes = 4 << 20
)

// page is a catch-up read: the messages as a JSON array's elements, and
// the position the reader is at after them.
type page struct {
	body  []byte
	count int
	epoch string
	seq   uint64
	cut   bool
}

// next is the page's Stream-Next-Offset.
func (p *page) next() string { return formatOffset(p.epoch, p.seq) }

// read answers an authorized, authenticated read. It reports whether the
// session now belongs to an SSE stream (which ends it), not the request.
func (h *Handler) read(w http.ResponseWriter, r *http.Request, req *request, c *conn, identifier string) bool {
	ctx, cancel := context.WithTimeout(r.Context(), brokerTimeout)
	p, code := h.catchUp(ctx, req, r.Method == http.MethodHead)
	cancel()
	switch {
	case code != http.StatusOK:
		h.fail(w, req, code)
	case r.Method == http.MethodHead:
		hdr := w.Header()
		hdr.Set("Content-Type", "application/json")
		hdr.Set("Cache-Control", "no-store")
		hdr.Set("Stream-Next-Offset", p.next())
		w.WriteHeader(http.StatusOK)
	case req.live == sseMode:
		return h.stream(w, r, req, c, identifier, p)
	case req.live == longPoll && p.count == 0 && !p.cut:
		h.longPoll(w, r, req, c, identifier, p)
	default:
		h.answer(w, r, req, p)
	}
	return false
}

// catchUp reads the stream from the request's offset (only its tail for
// HEAD and "now"). A status other than 200 is the answer: 400 for an
// offset past the tail, 410 for a position the broker cannot serve
// (another epoch, older than what is retained), 503 when the broker
// failed.
func (h *Handler) catchUp(ctx context.Context, req *request, head bool) (*page, int) {
	if head || req.offset.kind == fromNow {
		epoch, last, err := h.reader.Tail(ctx, req.stream)
		if err != nil {
			return nil, h.brokerStatus(err)
		}
		return &page{epoch: epoch, seq: last}, http.StatusOK
	}
	hist, err := h.reader.History(ctx, req.stream, req.offset.epoch, req.offset.seq)
	if errors.Is(err, broker.ErrHistoryUnavailable) && req.offset.kind == fromPosition {
		var code int
		if hist, code = h.followOn(ctx, req); code != http.StatusOK {
			return nil, code
		}
		err = nil
	}
	if err != nil {
		return nil, h.brokerStatus(err)
	}
	p := &page{epoch: hist.Epoch, seq: hist.Last, body: make([]byte, 0, 64)}
	for i := range hist.Pubs {
		pub := &hist.Pubs[i]
		if req.offset.kind == fromPosition && pub.Offset <= req.offset.seq {
			continue
		}
		msg := h.reader.Message(pub)
		if p.count == maxPageItems || p.count > 0 && len(p.body)+len(msg) > maxPageBytes {
			last := &hist.Pubs[i-1]
			p.epoch, p.seq, p.cut = last.Epoch, last.Offset, true
			break
		}
		if p.count > 0 {
			p.body = append(p.body, ',')
		}
		p.body = append(p.body, msg...)
		p.count++
	}
	return p, http.StatusOK
}

// followOn serves a position the broker refused when what it keeps
// starts right after it: the broker's rule for a session's history asks
// for the entry at the position itself (so a history trimmed past it is
// told apart), which an expired entry at the tail no longer is, while the
// protocol answers 410 only for data that is gone. Offsets within an
// epoch are consecutive, so a kept publication at seq+1 proves nothing
// is missing. Otherwise the answer is 400 for a position past the tail of
// its epoch, else 410.
func (h *Handler) followOn(ctx context.Context, req *request) (*node.StreamHistory, int) {
	all, err := h.reader.History(ctx, req.stream, "", 0)
	switch {
	case err != nil:
		return nil, http.StatusGone
	case all.Epoch == req.offset.epoch && req.offset.seq > all.Last:
		return nil, http.StatusBadRequest
	case len(all.Pubs) > 0 && all.Pubs[0].Epoch == req.offset.epoch && all.Pubs[0].Offset == req.offset.seq+1:
		return all, http.StatusOK
	}
	return nil, http.StatusGone
}

// brokerStatus is the answer to a broker failure.
func (h *Handler) brokerStatus(err error) int {
	if errors.Is(err, broker.ErrHistoryUnsupported) {
		return http.StatusInternalServerError
	}
	h.log.Warn("Durable Streams read failed", "error", err)
	return http.StatusServiceUnavailable
}

// fail answers a read that cannot be served.
func (h *Handler) fail(w http.ResponseWriter, req *request, code int) {
	hdr := w.Header()
	switch code {
	case http.StatusGone:
		// No Content-Type: an empty body announced as JSON makes the
		// official client (0.2.7) fail while reading it, and retry the
		// 410 forever instead of reporting it.
		hdr.Set("Cache-Control", "no-store")
		hdr.Set("Stream-Cursor", nextCursor(time.Now(), req.cursor))
	case http.StatusServiceUnavailable:
		hdr.Set("Retry-After", "1")
	}
	status(w, code)
}

// cacheControl is the Cache-Control of a JSON answer to req: never stored
// for "now" (its meaning changes with every publication), private when it
// depends on credentials, else shared for a minute.
func (h *Handler) cacheControl(req *request) string {
	switch {
	case req.offset.kind == fromNow:
		return "no-store"
	case h.private(req):
		return "private, max-age=60, stale-while-revalidate=300"
	}
	return "public, max-age=60, stale-while-revalidate=300"
}

// answer writes a catch-up page (or a long-poll's immediate data): 304
// when the client holds it already (If-None-Match).
func (h *Handler) answer(w http.ResponseWriter, r *http.Request, req *request, p *page) {
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", h.cacheControl(req))
	hdr.Set("Stream-Cursor", nextCursor(time.Now(), req.cursor))
	hdr.Set("Stream-Next-Offset", p.next())
	if !p.cut {
		hdr.Set("Stream-Up-To-Date", "true")
	}
	if req.offset.kind != fromNow {
		tag := etag(req.rawOffset, p.next(), p.cut)
		hdr.Set("ETag", tag)
		if matchesETag(r.Header.Get("If-None-Match"), tag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	body := make([]byte, 0, len(p.body)+2)
	body = append(append(append(body, '['), p.body...), ']')
	w.Write(body)
}

// longPoll waits up to PollInterval for publications after p's position:
// 200 with them, 204 when none came (or the server closed the session),
// 410 when the stream restarted meanwhile. The wait holds the request's
// net/http goroutine (unlike SSE, which streams off the socket): a
// long-poll is short-lived and its answer is an ordinary net/http
// response, over HTTP/2 too, and the session feeding it holds no other.
func (h *Handler) longPoll(w http.ResponseWriter, r *http.Request, req *request, c *conn, identifier string, p *page) {
	c.goLive(longPoll, p.epoch, p.seq)
	c.handle(subscribeCommand(identifier, req.stream, p.epoch, p.seq))
	timer := time.NewTimer(h.opts.PollInterval)
	select {
	case <-c.done:
	case <-timer.C:
	case <-r.Context().Done():
	}
	timer.Stop()
	c.mu.Lock()
	c.signalLocked()
	got := &page{body: c.body, count: c.count, epoch: c.epoch, seq: c.seq}
	got.cut = c.count >= maxLiveItems || len(c.body) >= maxLiveBytes
	gone := c.gone
	c.mu.Unlock()
	switch {
	case gone:
		h.fail(w, req, http.StatusGone)
	case got.count > 0:
		h.answer(w, r, req, got)
	default:
		hdr := w.Header()
		hdr.Set("Content-Type", "application/json")
		hdr.Set("Cache-Control", "no-store")
		hdr.Set("Stream-Cursor", nextCursor(time.Now(), req.cursor))
		hdr.Set("Stream-Next-Offset", p.next())
		hdr.Set("Stream-Up-To-Date", "true")
		w.WriteHeader(http.StatusNoContent)
	}
}

// subscribeCommand is the subscribe command of a live read at position
// (epoch, seq), asking for history from there so that nothing published
// since the catch-up read is missed; for a stream the broker did not know
// (epoch ""), every publication of its current epoch (since 1).
func subscribeCommand(identifier, stream, epoch string, seq uint64) []byte {
	type position struct {
		Epoch  string `json:"epoch"`
		Offset uint64 `json:"offset"`
	}
	var hist any = map[string]int64{"since": 1}
	if epoch != "" {
		hist = map[string]map[string]position{"streams": {stream: {epoch, seq}}}
	}
	h, _ := json.Marshal(hist)
	b, _ := json.Marshal(protocol.Command{Command: "subscribe", Identifier: identifier, History: h})
	return b
}
