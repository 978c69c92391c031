// Package httpbody bounds and reads the request bodies of Cablehub's HTTP
// endpoints that take one (the REST API and the http broadcast adapter),
// so that both answer an oversized, slow or unreadable body alike, with
// the REST API's error body (jsonerr): 413 over the size limit, 408 when
// the body does not arrive in time, 422 when it cannot be read.
package httpbody

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

	"github.com/cablehub/cablehub/server/jsonerr"
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

// Bounds on lingering after a 413 whose body is still arriving (see
// Limit.linger): what is read and dropped after the answer, at most
// lingerFactor times max(limit, drainMin) bytes, for at most lingerTimeout
// (or the body bound, when shorter).
const (
	lingerFactor  = 4
	lingerTimeout = 5 * time.Second
)

// Limit bounds a request body's size and the time it takes to arrive.
// The zero Limit accepts only empty bodies, without a time bound.
type Limit struct {
	// MaxSize is the largest accepted body in bytes (--api_max_body_size).
	MaxSize int64
	// Timeout bounds receiving a body; zero means no bound.
	Timeout time.Duration
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
func (l Limit) Deadline(w http.ResponseWriter, r *http.Request) (lift func()) {
	if l.Timeout <= 0 || r.ContentLength == 0 {
		return func() {}
	}
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(l.Timeout)); err != nil {
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
// drainMin). A body declared larger than that is answered at once, and
// what follows of it is read and dropped, bounded, before the connection
// closes (see linger); one whose sender waits for "100 Continue" before
// sending it is answered at once, unread.
func (l Limit) Read(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	limit := l.MaxSize
	drain := max(limit, drainMin)
	if r.ContentLength > limit && expectsContinue(r) {
		l.tooLarge(w, r, restUnsent)
		return nil, false
	}
	if r.ContentLength > limit && r.ContentLength-limit > drain {
		l.tooLarge(w, r, restComing)
		return nil, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		l.readFailed(w, r, err)
		return nil, false
	}
	if int64(len(body)) > limit {
		rest := restComing
		if _, err := io.CopyN(io.Discard, r.Body, drain); errors.Is(err, io.EOF) {
			rest = restNone
		}
		l.tooLarge(w, r, rest)
		return nil, false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return body, true
}

// bodyRest is what is left of a refused body when it is answered.
type bodyRest int

const (
	// restNone: the whole body was read; the connection stays usable.
	restNone bodyRest = iota
	// restUnsent: the client waits for "100 Continue" before sending the
	// body, so nothing more comes; the connection closes after the answer.
	restUnsent
	// restComing: body bytes may still be arriving; the connection
	// closes after the answer, once they are in (linger).
	restComing
)

// tooLarge answers 413. On HTTP/1, a connection with body bytes still to
// come is closed after the answer rather than read as the next request,
// and lingers first (see linger).
func (l Limit) tooLarge(w http.ResponseWriter, r *http.Request, rest bodyRest) {
	if rest != restNone {
		closeAfter(w, r)
	}
	jsonerr.Write(w, http.StatusRequestEntityTooLarge, codes.ResourceExhausted,
		fmt.Sprintf("request body is larger than %d bytes (--api_max_body_size)", l.MaxSize))
	if rest == restComing && r.ProtoMajor == 1 {
		l.linger(w, r)
	}
}

// linger sends the answer written to w, then reads and drops what the
// client still sends of r's body, until the body ends or lingerFactor times
// max(limit, drainMin) bytes or lingerTimeout (the body bound, when
// shorter) have passed; net/http then closes the connection.
//
// Clients such as Python's urllib write the whole body before reading the
// response. Closing while their bytes still arrive makes the kernel reset
// the connection (unread data at close, RFC 1122 §4.2.2.13); the client's
// write then fails, or the reset discards the answer before it is read,
// and the client sees a broken pipe instead of the 413. Reading on lets
// it finish writing and read the answer. The bounds keep a client that
// sends without end from holding the connection: past them it is reset.
func (l Limit) linger(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	if err := rc.Flush(); err != nil {
		return
	}
	wait := lingerTimeout
	if l.Timeout > 0 {
		wait = min(wait, l.Timeout)
	}
	if err := rc.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return
	}
	io.CopyN(io.Discard, r.Body, lingerFactor*max(l.MaxSize, drainMin))
}

// readFailed answers a body that could not be read: 408 when its read
// deadline passed, else 422 (a client that went away sees neither).
func (l Limit) readFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		closeAfter(w, r)
		jsonerr.Write(w, http.StatusRequestTimeout, codes.DeadlineExceeded,
			fmt.Sprintf("request body not received within %s", l.Timeout))
		return
	}
	jsonerr.Write(w, http.StatusUnprocessableEntity, codes.InvalidArgument, "cannot read request body: "+err.Error())
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
