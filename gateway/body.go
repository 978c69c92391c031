package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
)

// drainMin is the least that is read and discarded of a body over the size
// limit before the 413 is written; the limit itself is used when it is
// larger, so a rejected request costs at most about as much reading as two
// accepted ones.
//
// Clients such as Python's urllib write the whole body before reading the
// response. Answering 413 and closing while body bytes still arrive makes
// the kernel reset the connection (unread data at close), and such a client
// sees a broken pipe or a reset instead of the 413. Reading on, bounded,
// gives bodies up to the limit plus this much a clean 413 (on a connection
// that stays usable); larger ones are still cut.
const drainMin = 1 << 20

// Body bounds and reads request bodies the way the REST API does; the
// HTTP broadcast adapter reads its bodies with it too, so both answer an
// oversized, slow or unreadable body alike.
type Body struct {
	// MaxSize is the largest accepted body in bytes (--api_max_body_size).
	MaxSize int64
	// Timeout bounds receiving a body; zero means no bound.
	Timeout time.Duration
}

func (g *Gateway) body() Body {
	return Body{MaxSize: g.opts.MaxBodySize, Timeout: g.opts.BodyTimeout}
}

// Deadline bounds receiving r's body to Timeout from now with a
// read deadline on the request (http.ResponseController), so a client that
// trickles or withholds a body is answered 408 (Read) instead of holding
// a connection and a goroutine as long as it likes. It returns the function
// that lifts the bound once the body is in: left set, the deadline would
// also end net/http's background read on an HTTP/1 connection and cancel
// the request's context while the call still runs.
//
// The deadline is per request: on HTTP/1 net/http sets the connection's
// deadlines afresh for the next request (a hijacked WebSocket connection
// never passes here), on HTTP/2 it is the stream's own. Requests without a
// body get none, nor do writers that cannot set deadlines (test recorders):
// those are not bounded.
func (b Body) Deadline(w http.ResponseWriter, r *http.Request) (lift func()) {
	if b.Timeout <= 0 || r.ContentLength == 0 {
		return func() {}
	}
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(b.Timeout)); err != nil {
		return func() {}
	}
	return func() { rc.SetReadDeadline(time.Time{}) }
}

// Read buffers the request body within the size limit (the request
// then reads it from memory) and returns it, or answers the request itself
// and returns false: 413 for a body over the limit, 408 when the body does
// not arrive in time (Deadline), 422 when it cannot be read otherwise.
//
// A body over the limit is read on and discarded for up to
// max(limit, drainMin) more bytes before the 413 is written (see
// drainMin). A body declared larger than that, or one whose sender waits
// for "100 Continue" before sending it, is answered at once, unread.
func (b Body) Read(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	limit := b.MaxSize
	drain := max(limit, drainMin)
	if r.ContentLength > limit && (r.ContentLength-limit > drain || expectsContinue(r)) {
		b.tooLarge(w, r, false)
		return nil, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		b.readFailed(w, r, err)
		return nil, false
	}
	if int64(len(body)) > limit {
		_, err := io.CopyN(io.Discard, r.Body, drain)
		b.tooLarge(w, r, errors.Is(err, io.EOF))
		return nil, false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return body, true
}

// tooLarge answers 413; consumed tells whether the whole body was read, so
// that an HTTP/1 connection with body bytes still to come is closed after
// the answer rather than read as the next request.
func (b Body) tooLarge(w http.ResponseWriter, r *http.Request, consumed bool) {
	if !consumed {
		closeAfter(w, r)
	}
	writeError(w, http.StatusRequestEntityTooLarge, codes.ResourceExhausted,
		fmt.Sprintf("request body is larger than %d bytes (--api_max_body_size)", b.MaxSize))
}

// readFailed answers a body that could not be read: 408 when its read
// deadline passed, else 422 (a client that went away sees neither).
func (b Body) readFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		closeAfter(w, r)
		writeError(w, http.StatusRequestTimeout, codes.DeadlineExceeded,
			fmt.Sprintf("request body not received within %s", b.Timeout))
		return
	}
	writeError(w, http.StatusUnprocessableEntity, codes.InvalidArgument, "cannot read request body: "+err.Error())
}

// closeAfter makes net/http close an HTTP/1 connection after the answer.
// On HTTP/2 only the stream is done; the connection's other streams go on.
func closeAfter(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
}

func expectsContinue(r *http.Request) bool {
	return strings.Contains(strings.ToLower(r.Header.Get("Expect")), "100-continue")
}
