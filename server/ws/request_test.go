package ws

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"golang.org/x/net/http/httpguts"
)

// upgradeHead is a browser's upgrade request, as the listener reads it.
const upgradeHead = "GET /cable?jid=abc&pi=3 HTTP/1.1\r\n" +
	"Host: example.com:8080\r\n" +
	"Connection: Upgrade\r\n" +
	"Pragma: no-cache\r\n" +
	"Upgrade: websocket\r\n" +
	"Origin: https://example.com\r\n" +
	"Sec-WebSocket-Version: 13\r\n" +
	"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
	"Sec-WebSocket-Protocol: actioncable-v1-json, actioncable-unsupported\r\n" +
	"Cookie: a=1\r\n" +
	"Cookie: b=2\r\n" +
	"X-Empty:\r\n" +
	"\r\n"

// netHTTPRequest is what net/http's server hands a handler for head, or
// nil where it answers the request itself (400 and the like).
func netHTTPRequest(head []byte) *http.Request {
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
	if err != nil {
		return nil
	}
	// The server's own checks after reading (net/http server.go), on the
	// Host field ReadRequest has taken out of the header.
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(head)))
	tp.ReadLine()
	fields, err := tp.ReadMIMEHeader()
	if err != nil || len(fields["Host"]) != 1 || !httpguts.ValidHostHeader(r.Host) {
		return nil
	}
	for k, vs := range r.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return nil
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return nil
			}
		}
	}
	return r
}

// sameRequest says how got differs from net/http's want in what handlers
// read, or "".
func sameRequest(got, want *http.Request) string {
	switch {
	case got.Method != want.Method || got.RequestURI != want.RequestURI || got.Proto != want.Proto:
		return fmt.Sprintf("request line %s %s %s, want %s %s %s", got.Method, got.RequestURI, got.Proto, want.Method, want.RequestURI, want.Proto)
	case got.URL.String() != want.URL.String() || got.URL.Path != want.URL.Path || got.URL.RawQuery != want.URL.RawQuery:
		return fmt.Sprintf("URL %#v, want %#v", got.URL, want.URL)
	case got.Host != want.Host:
		return fmt.Sprintf("Host %q, want %q", got.Host, want.Host)
	case !reflect.DeepEqual(got.Header, want.Header):
		return fmt.Sprintf("header %q, want %q", got.Header, want.Header)
	}
	return ""
}

func TestParseRequestReadsAsNetHTTP(t *testing.T) {
	got, ok := ParseRequest(upgradeHead)
	if !ok {
		t.Fatal("a browser's upgrade request was not taken")
	}
	if diff := sameRequest(got, netHTTPRequest([]byte(upgradeHead))); diff != "" {
		t.Fatal(diff)
	}
	if got.Header.Get("Cache-Control") != "no-cache" || len(got.Header["Cookie"]) != 2 || got.URL.Query().Get("jid") != "abc" {
		t.Fatalf("header %q, query %q", got.Header, got.URL.RawQuery)
	}
}

// TestParseRequestLeavesTheUnusualToNetHTTP lists requests the front must
// hand to net/http, because they are not upgrades or net/http reads or
// refuses them in its own way.
func TestParseRequestLeavesTheUnusualToNetHTTP(t *testing.T) {
	base := "GET /cable HTTP/1.1\r\nHost: h\r\n"
	for name, head := range map[string]string{
		"POST":                 "POST /cable HTTP/1.1\r\nHost: h\r\n\r\n",
		"HTTP/1.0":             "GET /cable HTTP/1.0\r\nHost: h\r\n\r\n",
		"absolute form":        "GET http://h/cable HTTP/1.1\r\nHost: h\r\n\r\n",
		"space in target":      "GET /ca ble HTTP/1.1\r\nHost: h\r\n\r\n",
		"no Host":              "GET /cable HTTP/1.1\r\n\r\n",
		"two Hosts":            base + "Host: h\r\n\r\n",
		"bad Host":             "GET /cable HTTP/1.1\r\nHost: h/x\r\n\r\n",
		"bare LF":              "GET /cable HTTP/1.1\nHost: h\n\n",
		"folded field":         base + "X-A: 1\r\n 2\r\n\r\n",
		"space before colon":   base + "X-A : 1\r\n\r\n",
		"no colon":             base + "X-A\r\n\r\n",
		"control byte":         base + "X-A: 1\x01\r\n\r\n",
		"CR in value":          base + "X-A: 1\r2\r\n\r\n",
		"body":                 base + "Content-Length: 0\r\n\r\n",
		"chunked":              base + "Transfer-Encoding: chunked\r\n\r\n",
		"bytes after the head": base + "\r\nX",
		"unfinished":           base,
	} {
		if _, ok := ParseRequest(head); ok {
			t.Errorf("%s: taken: %q", name, head)
		}
	}
}

func TestHeadEnd(t *testing.T) {
	head := []byte(upgradeHead + "more")
	if got := HeadEnd(head, 0); got != len(upgradeHead) {
		t.Fatalf("HeadEnd = %d, want %d", got, len(upgradeHead))
	}
	// Read in pieces, the blank line straddling them.
	for cut := 1; cut < len(upgradeHead); cut++ {
		if got := HeadEnd(head[:cut], 0); got != -1 {
			t.Fatalf("HeadEnd of %d bytes = %d, want -1", cut, got)
		}
		if got := HeadEnd(head, cut); got != len(upgradeHead) {
			t.Fatalf("HeadEnd searched before %d = %d, want %d", cut, got, len(upgradeHead))
		}
	}
}

// TestHeadEndAsNetHTTP: a head ends where net/http's server ends it, at
// the first empty line whatever its lines end with (LF or CRLF), however
// it is read in pieces; net/http answers such heads, so the listener must
// not wait for more.
func TestHeadEndAsNetHTTP(t *testing.T) {
	for name, head := range map[string]string{
		"bare LF":               "GET /cable HTTP/1.1\nHost: h\nUpgrade: websocket\n\n",
		"CRLF, then a bare LF":  "GET /cable HTTP/1.1\r\nHost: h\r\n\n",
		"bare LF, then a CRLF":  "GET /cable HTTP/1.1\nHost: h\n\r\n",
		"mixed lines, then LF":  "GET /cable HTTP/1.1\r\nHost: h\nX: 1\r\n\n",
		"request line and LF":   "GET /cable HTTP/1.1\n\n",
		"CRLF CRLF (the usual)": "GET /cable HTTP/1.1\r\nHost: h\r\n\r\n",
	} {
		end := netHTTPHeadEnd([]byte(head + "next"))
		if end != len(head) {
			t.Fatalf("%s: net/http ends the head at %d, want %d (the case is wrong)", name, end, len(head))
		}
		b := []byte(head + "next")
		if got := HeadEnd(b, 0); got != end {
			t.Errorf("%s: HeadEnd = %d, want %d as net/http", name, got, end)
		}
		for cut := 1; cut < len(head); cut++ {
			if got := HeadEnd(b[:cut], 0); got != -1 {
				t.Fatalf("%s: HeadEnd of %d bytes = %d, want -1", name, cut, got)
			}
			if got := HeadEnd(b, cut); got != end {
				t.Fatalf("%s: HeadEnd searched before %d = %d, want %d", name, cut, got, end)
			}
		}
	}
}

// netHTTPHeadEnd is where net/http's reading of a request ends the head in
// b, or -1 when it reads no request from b.
func netHTTPHeadEnd(b []byte) int {
	br := bufio.NewReaderSize(bytes.NewReader(b), len(b)+16)
	r, err := http.ReadRequest(br)
	if err != nil || r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		return -1
	}
	return len(b) - br.Buffered()
}

// FuzzParseRequest holds ParseRequest to its contract: whatever it takes,
// net/http's server reads into the same request; and it never panics.
func FuzzParseRequest(f *testing.F) {
	for _, seed := range []string{upgradeHead, "GET / HTTP/1.1\r\nHost: h\r\n\r\n", "GET /a?b=%zz HTTP/1.1\r\nHost: [::1]:80\r\nX: \xff\r\n\r\n",
		"GET /cable HTTP/1.1\nHost: h\nUpgrade: websocket\n\n"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		// Where net/http reads a whole request, the listener's upgrade path
		// ends the head as net/http does (read whole or in two pieces),
		// instead of waiting for more that may never come.
		if end := netHTTPHeadEnd(head); end >= 0 {
			cut := len(head) / 2
			if got := HeadEnd(head, 0); got != end {
				t.Fatalf("%q: HeadEnd = %d, net/http ends the head at %d", head, got, end)
			}
			if first := HeadEnd(head[:cut], 0); first != -1 && first != end || first == -1 && HeadEnd(head, cut) != end {
				t.Fatalf("%q: HeadEnd in pieces cut at %d differs from %d", head, cut, end)
			}
		}
		got, ok := ParseRequest(string(head))
		if !ok {
			return
		}
		want := netHTTPRequest(head)
		if want == nil {
			t.Fatalf("taken, but net/http refuses %q", head)
		}
		if diff := sameRequest(got, want); diff != "" {
			t.Fatalf("%q: %s", head, diff)
		}
	})
}

// TestFuzzParseRequestCorpus keeps the committed corpus honest: it must
// hold inputs that ParseRequest takes, not only ones it refuses.
func TestFuzzParseRequestCorpus(t *testing.T) {
	files, _ := filepath.Glob("testdata/fuzz/FuzzParseRequest/*")
	taken := 0
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte("GET /")) {
			taken++
		}
	}
	if taken == 0 {
		t.Fatal("the FuzzParseRequest corpus has no request heads")
	}
}

// BenchmarkParseRequest: a browser's upgrade head, as the listener reads it
// (BENCHMARKS.md compares it with gobwas/ws and net/http).
func BenchmarkParseRequest(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := ParseRequest(upgradeHead); !ok {
			b.Fatal("not taken")
		}
	}
}
