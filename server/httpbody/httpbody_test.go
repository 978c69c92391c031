package httpbody_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cablehub/cablehub/server/httpbody"
)

// testWait bounds every wait; only a broken bound makes a test wait this
// long.
const testWait = 15 * time.Second

// newServer serves a handler that reads bodies within a 1 KiB limit and
// bodyTimeout, as the REST API does, and answers a body it accepts 201.
func newServer(t *testing.T, bodyTimeout time.Duration) *httptest.Server {
	t.Helper()
	l := httpbody.Limit{MaxSize: 1024, Timeout: bodyTimeout}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lift := l.Deadline(w, r)
		if _, ok := l.Read(w, r); !ok {
			return
		}
		lift()
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(ts.Close)
	return ts
}

// rawConn is an HTTP/1.1 client connection that writes exactly what a test
// says and reads answers one by one.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, ts *httptest.Server) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(testWait))
	return &rawConn{Conn: c, br: bufio.NewReader(c)}
}

// answer reads one response: status, whether it says the connection
// closes (Connection: close), body.
func (c *rawConn) answer(t *testing.T) (int, bool, string) {
	t.Helper()
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Close, string(body)
}

func wantError(t *testing.T, body string, code int) {
	t.Helper()
	var e struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Code != code || e.Message == "" {
		t.Fatalf("body %q, want {\"code\":%d,\"message\":...}", body, code)
	}
}

const okBody = `{"stream":"a","data":"x"}`

// A client that writes a whole oversized body before reading gets the 413,
// and the connection stays usable, whether the body's length is declared
// or chunked.
func TestOversizedBodyIsReadBefore413(t *testing.T) {
	// With a body bound: the drain runs under its deadline.
	ts := newServer(t, testWait)
	big := `{"stream":"a","data":"` + strings.Repeat("x", 300<<10) + `"}`
	for name, req := range map[string]string{
		"declared": fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(big), big),
		"chunked":  fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(big), big),
	} {
		t.Run(name, func(t *testing.T) {
			c := dialRaw(t, ts)
			if _, err := io.WriteString(c, req); err != nil {
				t.Fatalf("writing the body: %v", err)
			}
			status, closing, body := c.answer(t)
			if status != http.StatusRequestEntityTooLarge || closing {
				t.Fatalf("got %d (closing: %t), want 413 on a connection kept open (%s)", status, closing, body)
			}
			wantError(t, body, 8)
			fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(okBody), okBody)
			if status, _, body := c.answer(t); status != http.StatusCreated {
				t.Fatalf("next request on the connection: %d %s", status, body)
			}
		})
	}
}

// A body declared too large to drain, or whose sender waits for 100
// Continue, is refused at once, unread, and the connection closed.
func TestOversizedBodyRefusedUnread(t *testing.T) {
	ts := newServer(t, 0)
	for name, headers := range map[string]string{
		"beyond the drain": fmt.Sprintf("Content-Length: %d\r\n", 1024+(1<<20)+1),
		"100-continue":     "Content-Length: 2048\r\nExpect: 100-continue\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			c := dialRaw(t, ts)
			fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\n%s\r\n", headers)
			status, closing, body := c.answer(t)
			if status != http.StatusRequestEntityTooLarge || !closing {
				t.Fatalf("got %d (closing: %t), want 413 and Connection: close (%s)", status, closing, body)
			}
			wantError(t, body, 8)
		})
	}
}

// A client that writes its whole body before reading, a body well beyond
// what is read before answering, gets the 413 and its JSON every time:
// the server answers, then reads on what is still coming before it closes,
// so the client's writes complete and nothing resets the connection. The
// client's send buffer is small, as a busy link's bytes in flight are: a
// roomy loopback would otherwise take the whole body unread.
func TestOversizedBodyWrittenWholeGets413(t *testing.T) {
	ts := newServer(t, testWait)
	// Past the limit (1 KiB) and the drain after it (1 MiB).
	big := `{"stream":"a","data":"` + strings.Repeat("x", 2<<20) + `"}`
	for name, req := range map[string]string{
		"declared": fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(big), big),
		"chunked":  fmt.Sprintf("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(big), big),
	} {
		t.Run(name, func(t *testing.T) {
			for i := range 50 {
				c := dialRaw(t, ts)
				c.Conn.(*net.TCPConn).SetWriteBuffer(256 << 10)
				if _, err := io.WriteString(c, req); err != nil {
					t.Fatalf("run %d: writing the body: %v", i, err)
				}
				status, closing, body := c.answer(t)
				if status != http.StatusRequestEntityTooLarge || !closing {
					t.Fatalf("run %d: got %d (closing: %t), want 413 and Connection: close (%s)", i, status, closing, body)
				}
				wantError(t, body, 8)
				c.Close()
			}
		})
	}
}

// A withheld body is answered 408, and the connection closed; the server
// goes on serving others.
func TestWithheldBodyAnswered408(t *testing.T) {
	ts := newServer(t, 200*time.Millisecond)
	c := dialRaw(t, ts)
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"str")
	status, closing, body := c.answer(t)
	if status != http.StatusRequestTimeout || !closing {
		t.Fatalf("got %d (closing: %t), want 408 and Connection: close (%s)", status, closing, body)
	}
	wantError(t, body, 4)
	if _, err := c.br.ReadByte(); err != io.EOF {
		t.Fatalf("after the 408: %v, want the connection closed", err)
	}

	// The deadline is lifted once the body is in: a call that outlasts it
	// still answers, on a connection that stays open.
	c = dialRaw(t, ts)
	for range 2 {
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(okBody), okBody)
		if status, _, body := c.answer(t); status != http.StatusCreated {
			t.Fatalf("accepted body: %d %s", status, body)
		}
	}
}
