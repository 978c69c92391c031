package ds

import (
	"errors"
	"net/url"
	"strings"
	"unicode/utf8"
)

// maxStreamName bounds a stream's name (the path after the prefix).
const maxStreamName = 1024

// maxCursor bounds the cursor parameter a client echoes.
const maxCursor = 32

// liveMode is how a GET waits for data.
type liveMode int

const (
	catchUp liveMode = iota
	longPoll
	sseMode
)

// request is a read request's parameters.
type request struct {
	stream string
	offset offset
	// rawOffset is the offset as sent, canonical for the start ("-1").
	rawOffset string
	live      liveMode
	cursor    string
	// signed is the signed stream name (?signed= or X-Signed), "" for none.
	signed string
}

// Errors of parseRequest, all answered 400.
var (
	errNoStream   = errors.New("no stream name")
	errBadStream  = errors.New("stream name too long or not valid UTF-8 text")
	errBadLive    = errors.New("live must be long-poll or sse")
	errLiveOffset = errors.New("a live read needs an offset")
)

// parseRequest reads a request for rest, the path after the prefix and
// its "/": the stream's name, the query's offset, live and cursor, and
// the signed name from the query's signed or, failing that, the X-Signed
// header value signedHeader.
func parseRequest(rest string, q url.Values, signedHeader string) (*request, error) {
	switch {
	case rest == "":
		return nil, errNoStream
	case len(rest) > maxStreamName || !validName(rest):
		return nil, errBadStream
	}
	req := &request{stream: rest, cursor: q.Get("cursor"), signed: q.Get("signed")}
	if req.signed == "" {
		req.signed = signedHeader
	}
	switch q.Get("live") {
	case "":
	case "long-poll":
		req.live = longPoll
	case "sse":
		req.live = sseMode
	default:
		return nil, errBadLive
	}
	raw, has := q["offset"]
	if req.live != catchUp && (!has || raw[0] == "") {
		return nil, errLiveOffset
	}
	var err error
	if has {
		req.rawOffset = raw[0]
	}
	if req.offset, err = parseOffset(req.rawOffset); err != nil {
		return nil, err
	}
	if req.offset.kind == fromStart {
		req.rawOffset = "-1"
	}
	if len(req.cursor) > maxCursor || !isDigits(req.cursor) {
		// Only ever a cursor the server sent: anything else counts as none.
		req.cursor = ""
	}
	return req, nil
}

// validName reports whether a stream name is printable UTF-8 text: no
// control characters, which would be forged into logs and headers.
func validName(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}
