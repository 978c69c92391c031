package ws

import (
	"bytes"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// MaxRequestHead is the longest request head ParseRequest is given by the
// listener's upgrade path; longer heads (large cookies) go through net/http.
const MaxRequestHead = 8192

// maxRequestFields bounds the header fields ParseRequest takes.
const maxRequestFields = 100

// HeadEnd returns the length of the request head at the start of b (up to
// and including the blank line that ends it), or -1 while it is
// incomplete. from is how much of b was searched before, so that a head
// read in several pieces is scanned once.
//
// The head ends where net/http's server ends it: at the first empty line,
// a line being ended by LF with or without a CR before it. A head with
// bare LF line ends is complete for net/http, which answers it; the
// listener's upgrade path must not wait for a CRLF CRLF that never comes
// (ParseRequest refuses such a head, so net/http gets it).
func HeadEnd(b []byte, from int) int {
	// The end is LF LF or LF CR LF: its first LF may be two bytes back.
	i := max(from-2, 0)
	for {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		switch {
		case i < len(b) && b[i] == '\n':
			return i + 1
		case i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n':
			return i + 2
		}
	}
}

// ParseRequest reads head, a complete HTTP/1.1 request head ending with its
// blank line, into the request net/http would have handed the WebSocket
// handler, as the server's listener sees it (Host taken out of Header,
// Pragma: no-cache implying Cache-Control, RemoteAddr left to the caller).
//
// It is made for the listener's upgrade path, which answers upgrade
// requests without net/http, and is strict on purpose: it accepts only
// what it can read exactly as net/http does (a GET in origin form, CRLF
// line ends, no folded or malformed fields, one valid Host, no body) and
// reports false for everything else, which the caller then hands to
// net/http, so unusual and malformed requests get net/http's own answers.
// A fuzz test holds it to that: whatever it accepts, net/http reads the same.
//
// The request's strings are slices of head, and common field names are
// interned, so a request costs a handful of allocations.
func ParseRequest(head string) (*http.Request, bool) {
	line, rest, ok := cutLine(head)
	if !ok {
		return nil, false
	}
	target, ok := requestTarget(line)
	if !ok {
		return nil, false
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, false
	}
	header, ok := parseFields(rest)
	if !ok {
		return nil, false
	}
	hosts := header["Host"]
	if len(hosts) != 1 || !httpguts.ValidHostHeader(hosts[0]) {
		return nil, false
	}
	if _, ok := header["Content-Length"]; ok {
		return nil, false
	}
	if _, ok := header["Transfer-Encoding"]; ok {
		return nil, false
	}
	delete(header, "Host")
	if p := header["Pragma"]; len(p) > 0 && p[0] == "no-cache" {
		if _, ok := header["Cache-Control"]; !ok {
			header["Cache-Control"] = []string{"no-cache"}
		}
	}
	return &http.Request{
		Method:     http.MethodGet,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     header,
		Body:       http.NoBody,
		Host:       hosts[0],
		RequestURI: target,
	}, true
}

// requestTarget returns the target of a request line "GET <target>
// HTTP/1.1" whose target is in origin form.
func requestTarget(line string) (string, bool) {
	const method, proto = "GET ", " HTTP/1.1"
	if len(line) < len(method)+len(proto) || !strings.HasPrefix(line, method) || !strings.HasSuffix(line, proto) {
		return "", false
	}
	target := line[len(method) : len(line)-len(proto)]
	if len(target) == 0 || target[0] != '/' || strings.IndexByte(target, ' ') >= 0 {
		return "", false
	}
	return target, true
}

// parseFields reads header fields up to the blank line that ends b.
func parseFields(b string) (http.Header, bool) {
	n := strings.Count(b, "\n")
	if n > maxRequestFields+1 {
		return nil, false
	}
	header := make(http.Header, n)
	values := make([]string, n) // one backing array for single values
	for i := 0; ; i++ {
		line, rest, ok := cutLine(b)
		if !ok {
			return nil, false
		}
		if len(line) == 0 {
			return header, len(rest) == 0
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !httpguts.ValidHeaderFieldName(name) {
			return nil, false
		}
		v := strings.Trim(value, " \t")
		if !httpguts.ValidHeaderFieldValue(v) {
			return nil, false
		}
		key := canonicalKey(name)
		if vs, ok := header[key]; ok {
			header[key] = append(vs, v)
		} else {
			values[i] = v
			header[key] = values[i : i+1 : i+1]
		}
		b = rest
	}
}

// commonKeys interns the canonical names of fields upgrade requests carry.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"Accept", "Accept-Encoding", "Accept-Language", "Cache-Control", "Connection",
		"Cookie", "Host", "Origin", "Pragma", "Sec-Websocket-Extensions", "Sec-Websocket-Key",
		"Sec-Websocket-Protocol", "Sec-Websocket-Version", "Upgrade", "User-Agent", "X-Forwarded-For",
		"X-Forwarded-Proto", "X-Real-Ip", "X-Request-Id", "Authorization", "Referer"} {
		m[k] = k
	}
	return m
}()

// canonicalKey is textproto.CanonicalMIMEHeaderKey of a valid field name,
// without allocating for common names.
func canonicalKey(name string) string {
	var buf [64]byte
	if len(name) > len(buf) {
		return textproto.CanonicalMIMEHeaderKey(name)
	}
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case upper && 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case !upper && 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		buf[i] = c
		upper = c == '-'
	}
	if k, ok := commonKeys[string(buf[:len(name)])]; ok {
		return k
	}
	return textproto.CanonicalMIMEHeaderKey(name)
}

// cutLine splits b after its first CRLF. A bare CR or LF before it (which
// net/http reads differently, or refuses) is not a line.
func cutLine(b string) (line, rest string, ok bool) {
	i := strings.IndexByte(b, '\n')
	if i < 1 || b[i-1] != '\r' {
		return "", "", false
	}
	line = b[:i-1]
	if strings.IndexByte(line, '\r') >= 0 {
		return "", "", false
	}
	return line, b[i+1:], true
}
