package runner

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// exchange sends request (in pieces, each one write) on a new connection
// to addr and returns what a client sees: the response's status, headers
// (but Date) and body, or, after a 101, the frames up to the first text
// frame (and the close frame after a disconnect); "closed" when the server
// closes without an answer.
func exchange(t *testing.T, addr string, pieces ...string) string {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	for i, p := range pieces {
		if i > 0 {
			// Let the first piece arrive alone, as a slow client's would.
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := io.WriteString(nc, p); err != nil {
			t.Fatal(err)
		}
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "closed"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", resp.Status)
	keys := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		if k != "Date" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %q\n", k, resp.Header[k])
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(resp.Body)
		b.Write(body)
		return b.String()
	}
	for {
		op, payload, err := readServerFrame(br)
		if err != nil {
			fmt.Fprintf(&b, "frame error: %v\n", err)
			return b.String()
		}
		fmt.Fprintf(&b, "frame %#x %q\n", op, payload)
		if op == 0x8 || (op == 0x1 && !strings.Contains(string(payload), `"disconnect"`)) {
			return b.String()
		}
	}
}

// readServerFrame reads one unmasked frame of at most 64 KiB.
func readServerFrame(br *bufio.Reader) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return 0, nil, err
	}
	n := int(h[1] & 0x7f)
	if n == 126 {
		var ext [2]byte
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			return 0, nil, err
		}
		n = int(binary.BigEndian.Uint16(ext[:]))
	}
	p := make([]byte, n)
	_, err := io.ReadFull(br, p)
	return h[0] & 0x0f, p, err
}

// TestFrontAnswersAsNetHTTP sends the same requests to a server whose
// listener answers upgrades itself and to one that leaves them to net/http
// (as before the front existed): every answer must be the same, byte for
// byte but the Date header and the random sid, for upgrades (subprotocol,
// JWT in the query and in the header, unauthenticated) and for
// everything the front hands on (refused origin or version, bad key, other
// paths, malformed or oversized heads, data before the handshake).
func TestFrontAnswersAsNetHTTP(t *testing.T) {
	args := []string{"--norpc", "--jwt_secret", "jwtkey", "--allowed_origins", "example.com", "--metrics_http", "/metrics"}
	var raw atomic.Int32
	front := startWith(t, func(l *limits) { l.onRawUpgrade = func() { raw.Add(1) } }, args...)
	netHTTP := startWith(t, func(l *limits) { l.upgradeViaNetHTTP = true }, args...)

	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"ext": `{"user":"u1"}`}).SignedString([]byte("jwtkey"))
	if err != nil {
		t.Fatal(err)
	}
	upgrade := func(target, extra string) string {
		return "GET " + target + " HTTP/1.1\r\nHost: cable.example.com\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n" +
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: https://example.com\r\n" +
			"X-Request-ID: req-1\r\n" + extra + "\r\n"
	}
	withJWT := upgrade("/cable?jid="+token, "Sec-WebSocket-Protocol: foo, actioncable-v1-json\r\n")
	cases := []struct {
		name   string
		pieces []string
		status string // the answer's first line
		raw    bool   // answered by the front
	}{
		{"JWT in the query, subprotocol", []string{withJWT}, "101 Switching Protocols", true},
		{"JWT in a header, extended protocol", []string{upgrade("/cable", "X-Jid: "+token+"\r\nSec-WebSocket-Protocol: actioncable-v1-ext-json\r\n")}, "101 Switching Protocols", true},
		{"JWT in a subprotocol", []string{upgrade("/cable", "Sec-WebSocket-Protocol: actioncable-v1-json, anycable-token."+token+"\r\n")}, "101 Switching Protocols", true},
		{"cookie and forwarded headers", []string{upgrade("/cable?jid="+token, "Cookie: _app_session=abc; other=1\r\nX-Forwarded-For: 10.0.0.1\r\n")}, "101 Switching Protocols", true},
		{"no JWT", []string{upgrade("/cable", "")}, "101 Switching Protocols", true},
		{"head in two pieces", []string{withJWT[:40], withJWT[40:]}, "101 Switching Protocols", true},
		{"head over 8 KiB", []string{upgrade("/cable?jid="+token, "Cookie: c="+strings.Repeat("x", 9000)+"\r\n")}, "101 Switching Protocols", false},
		{"data before the handshake", []string{withJWT + "\x81\x80abcd"}, "closed", false},
		{"origin refused", []string{strings.Replace(withJWT, "https://example.com", "https://evil.com", 1)}, "403 Forbidden", false},
		{"version 8", []string{strings.Replace(withJWT, "Version: 13", "Version: 8", 1)}, "426 Upgrade Required", false},
		{"short key", []string{strings.Replace(withJWT, "dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ=", 1)}, "400 Bad Request", false},
		{"no Connection: upgrade", []string{strings.Replace(withJWT, "keep-alive, Upgrade", "keep-alive", 1)}, "400 Bad Request", false},
		{"malformed Connection list", []string{strings.Replace(withJWT, "keep-alive, Upgrade", "keep alive, Upgrade", 1)}, "", false},
		{"another path", []string{upgrade("/other", "")}, "404 Not Found", false},
		{"health", []string{"GET /health HTTP/1.1\r\nHost: h\r\n\r\n"}, "200 OK", false},
		{"metrics", []string{"GET /metrics HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"}, "200 OK", false},
		{"malformed field", []string{"GET /cable HTTP/1.1\r\nHost: h\r\nBad Field: 1\r\n\r\n"}, "400 Bad Request", false},
		{"no Host", []string{strings.Replace(withJWT, "Host: cable.example.com\r\n", "", 1)}, "400 Bad Request", false},
		{"HTTP/1.0", []string{strings.Replace(withJWT, "HTTP/1.1", "HTTP/1.0", 1)}, "", false},
		{"POST", []string{strings.Replace(withJWT, "GET", "POST", 1)}, "405 Method Not Allowed", false},
		// Bare LF line ends: net/http reads such a head and answers it, so
		// the front hands it over at once rather than waiting (10 s) for
		// a CRLF CRLF; exchange gives up after 5 s.
		{"upgrade, bare LF", []string{strings.ReplaceAll(withJWT, "\r\n", "\n")}, "101 Switching Protocols", false},
		{"upgrade, bare LF in two pieces", []string{strings.ReplaceAll(withJWT, "\r\n", "\n")[:40], strings.ReplaceAll(withJWT, "\r\n", "\n")[40:]}, "101 Switching Protocols", false},
		{"upgrade, CRLF then a bare LF", []string{strings.TrimSuffix(withJWT, "\r\n") + "\n"}, "101 Switching Protocols", false},
		{"plain GET, bare LF", []string{"GET /cable HTTP/1.1\nHost: h\n\n"}, "400 Bad Request", false},
		{"health, bare LF", []string{"GET /health HTTP/1.1\nHost: h\n\n"}, "200 OK", false},
	}
	// Sids are random: the answers are compared without them.
	sid := regexp.MustCompile(`\\"sid\\":\\"[A-Za-z0-9_-]{21}\\"`)
	for _, c := range cases {
		before := raw.Load()
		got := sid.ReplaceAllString(exchange(t, front.MainAddr, c.pieces...), `\"sid\":\"…\"`)
		want := sid.ReplaceAllString(exchange(t, netHTTP.MainAddr, c.pieces...), `\"sid\":\"…\"`)
		if c.name == "metrics" || strings.HasPrefix(c.name, "health") {
			// Counters and node ids differ between the two servers; the
			// status is enough.
			got, want = strings.SplitN(got, "\n", 2)[0], strings.SplitN(want, "\n", 2)[0]
		}
		if got != want {
			t.Errorf("%s: the front answers\n%s\nnet/http answers\n%s", c.name, got, want)
		}
		if c.status != "" && !strings.HasPrefix(got, c.status) {
			t.Errorf("%s: answer %q, want %s", c.name, got, c.status)
		}
		// The front counts an upgrade once its answer is written, which the
		// client may read first: a count that is due may come late.
		answered := raw.Load() > before
		for deadline := time.Now().Add(5 * time.Second); c.raw && !answered && time.Now().Before(deadline); answered = raw.Load() > before {
			time.Sleep(5 * time.Millisecond) // polling the count
		}
		if answered != c.raw {
			t.Errorf("%s: answered by the front %v, want %v", c.name, answered, c.raw)
		}
	}
	if got := exchange(t, front.MainAddr, withJWT); !sid.MatchString(got) || strings.Contains(got, "req-1") {
		t.Errorf("the welcome does not carry a random sid (X-Request-ID is no sid):\n%s", got)
	}
}
