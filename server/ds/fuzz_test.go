package ds

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzParseRequest checks the parsing of a read's path and query never
// panics, and that what it accepts is bounded and consistent: an offset
// that parses formats back to one that parses to the same position.
func FuzzParseRequest(f *testing.F) {
	f.Add("chat/room-42", "offset=-1")
	f.Add("chat", "offset=3%3A%3AIK3T&live=long-poll&cursor=3404589")
	f.Add("x", "offset=now&live=sse")
	f.Add("x", "offset=00000000000000000003::E&signed=a--b")
	f.Add("", "live=bogus")
	f.Fuzz(func(t *testing.T, rest, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		r, err := parseRequest(rest, q, "")
		if err != nil {
			return
		}
		if r.stream == "" || len(r.stream) > maxStreamName || len(r.cursor) > maxCursor {
			t.Fatalf("accepted %+v", r)
		}
		if r.offset.kind != fromPosition {
			return
		}
		if strings.ContainsAny(r.offset.epoch, ": \"") {
			t.Fatalf("epoch %q", r.offset.epoch)
		}
		back, err := parseOffset(formatOffset(r.offset.epoch, r.offset.seq))
		if err != nil || back != r.offset {
			t.Fatalf("round trip of %+v: %+v %v", r.offset, back, err)
		}
	})
}
