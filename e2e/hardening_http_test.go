package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The server's bounds are 10 s (API body, gRPC handshake); every wait here
// is that plus a generous margin, and nothing asserts how long a step took.
const hardeningWait = 40 * time.Second

// rawHTTP is an HTTP/1.1 client connection that writes exactly what a test
// says, as a misbehaving or naive client would.
type rawHTTP struct {
	net.Conn
	br *bufio.Reader
}

func dialRawHTTP(t *testing.T, addr string) *rawHTTP {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(hardeningWait))
	return &rawHTTP{Conn: c, br: bufio.NewReader(c)}
}

// readResponse reads one answer as the harness's response.
func (c *rawHTTP) readResponse(t *testing.T) response {
	t.Helper()
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer's body: %v", err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
}

// wantClosed requires the server to have closed the connection: a read
// ends (EOF or reset), and not because the test's own deadline passed.
func (c *rawHTTP) wantClosed(t *testing.T) {
	t.Helper()
	_, err := io.Copy(io.Discard, c.br)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the server kept the connection open")
	}
}

// A client that sends a publish's headers and then withholds or trickles
// the body is answered 408 and disconnected, while other clients publish
// as usual.
func TestHardeningSlowBodyIsCut(t *testing.T) {
	s := startServer(t, nil, "--public")
	url := "http://" + s.Main + "/api/publish"
	const head = "POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n"

	for _, mode := range []string{"withheld", "trickled"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			c := dialRawHTTP(t, s.Main)
			if _, err := io.WriteString(c, head+`{"stream":"chat","data":"`); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			trickled := make(chan struct{})
			go func() {
				defer close(trickled)
				if mode != "trickled" {
					return
				}
				// One byte every 100 ms: 4096 bytes would take minutes.
				tick := time.NewTicker(100 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						if _, err := c.Write([]byte("x")); err != nil {
							return
						}
					}
				}
			}()

			// Meanwhile the server serves everyone else.
			if r := do(t, "POST", url, okPub); r.Status != 201 {
				t.Errorf("a normal publish beside the slow one: %d %s", r.Status, r.Body)
			}

			r := c.readResponse(t)
			close(stop)
			<-trickled
			assertJSONError(t, r, http.StatusRequestTimeout, "request body not received within 10s")
			c.wantClosed(t)
		})
	}
}

// A client that writes a whole oversized body before it reads anything
// (as Python's urllib does) gets the 413 and its JSON body, whether the
// length is declared or the body chunked, and whether it writes all at once
// (several clients together) or paced like a slow uplink: a server that
// answered and closed without reading would have it fail to write.
func TestHardeningOversizedBodyGets413(t *testing.T) {
	const limit = 64 << 10
	s := startServer(t, nil, "--public", "--api_max_body_size", strconv.Itoa(limit))
	// Well past the limit, within what the server reads on before answering.
	payload := `{"stream":"chat","data":"` + strings.Repeat("x", 1<<20-100) + `"}`
	requests := map[string]string{
		"declared": fmt.Sprintf("POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(payload), payload),
		"chunked":  fmt.Sprintf("POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(payload), payload),
	}
	for name, req := range requests {
		for _, mode := range []string{"at-once-1", "at-once-2", "at-once-3", "paced"} {
			t.Run(name+"-"+mode, func(t *testing.T) {
				t.Parallel()
				c := dialRawHTTP(t, s.Main)
				if err := writeBody(c, req, mode == "paced"); err != nil {
					t.Fatalf("writing the body: %v", err)
				}
				r := c.readResponse(t)
				assertJSONError(t, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("larger than %d bytes", limit))
				if !strings.Contains(r.Body, `"code":8`) {
					t.Errorf("body %s, want code 8 (RESOURCE_EXHAUSTED)", r.Body)
				}
			})
		}
	}
}

// A client that writes a whole 2 MiB body (the default limit is 1 MiB)
// before it reads gets the 413 and its JSON body, run after run, from the
// REST API and from /_broadcast: the body is past what the server reads
// before answering, so it answers, then reads on what is still coming
// before closing (bounded), instead of resetting a client still writing.
// The client's send buffer is kept to 256 KiB, as on a busy link: a roomy
// loopback would otherwise take the whole body unread.
func TestHardeningTwoMiBBodyGets413(t *testing.T) {
	s := startServer(t, nil, "--public", "--broadcast_adapter", "http", "--broadcast_key", "bkey")
	payload := `{"stream":"chat","data":"` + strings.Repeat("x", 2<<20) + `"}`
	for _, path := range []string{"/api/publish", "/_broadcast"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			req := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer bkey\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path, len(payload), payload)
			for i := range 50 {
				c := dialRawHTTP(t, s.Main)
				c.Conn.(*net.TCPConn).SetWriteBuffer(256 << 10)
				if _, err := io.WriteString(c, req); err != nil {
					t.Fatalf("run %d: writing the body: %v", i, err)
				}
				r := c.readResponse(t)
				assertJSONError(t, r, http.StatusRequestEntityTooLarge, "larger than 1048576 bytes")
				c.Close()
			}
		})
	}
}

// writeBody writes req all at once, or paced: 64 KiB every 100 ms, about
// 1.6 s for a 1 MiB body, well within the server's 10 s body bound.
func writeBody(w io.Writer, req string, paced bool) error {
	if !paced {
		_, err := io.WriteString(w, req)
		return err
	}
	for len(req) > 0 {
		n := min(len(req), 64<<10)
		if _, err := io.WriteString(w, req[:n]); err != nil {
			return err
		}
		req = req[n:]
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// A connection to the gRPC API that never completes the HTTP/2 handshake
// is closed by the server: on a dedicated port one that says nothing, on
// the shared port one that sent only the HTTP/2 preface.
func TestHardeningGRPCHandshakeIsBounded(t *testing.T) {
	grpcPort := freePort(t)
	dedicated := startServer(t, nil, "--public", "--grpc_port", strconv.Itoa(grpcPort))
	shared := startServer(t, nil, "--public")
	for name, c := range map[string]struct{ addr, first string }{
		"dedicated": {dedicated.GRPC, ""},
		"shared":    {shared.GRPC, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			conn := dialRawHTTP(t, c.addr)
			if _, err := io.WriteString(conn, c.first); err != nil {
				t.Fatal(err)
			}
			conn.wantClosed(t)
		})
	}
}

// Clients that announce a body and send none (Content-Length: 100, then
// nothing) are answered and disconnected within the 10 s body bound, on
// every HTTP listener, whether the path reads bodies or not: each such
// connection would otherwise hold a connection and a goroutine for good.
func TestHardeningWithheldBodyOnEveryListener(t *testing.T) {
	apiPort, metricsPort, broadcastPort := freePort(t), freePort(t), freePort(t)
	s := startServer(t, nil, "--public", "--pprof", "--broadcast_adapter", "http",
		"--api_port", strconv.Itoa(apiPort), "--metrics_http", "/metrics", "--metrics_port", strconv.Itoa(metricsPort),
		"--http_broadcast_port", strconv.Itoa(broadcastPort))
	local := func(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }
	for _, c := range []struct{ name, addr, path string }{
		{"main, health", s.Main, "/health"},
		{"main, WebSocket path", s.Main, "/cable"},
		{"main, pprof", s.Main, "/debug/pprof/"},
		{"main, unknown path", s.Main, "/nope"},
		{"API port, publish", local(apiPort), "/api/publish"},
		{"API port, health", local(apiPort), "/health"},
		{"metrics port", local(metricsPort), "/metrics"},
		{"broadcast port, broadcast", local(broadcastPort), "/_broadcast"},
		{"broadcast port, health", local(broadcastPort), "/health"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			const clients = 20
			done := make(chan error, clients)
			for range clients {
				go func() { done <- withholdBody(c.addr, c.path) }()
			}
			for range clients {
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// withholdBody announces a 100-byte body to path and sends none; it
// returns nil once the server has answered and closed the connection,
// which must happen within the 10 s body bound (waited for with a wide
// margin).
func withholdBody(addr, path string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(25 * time.Second))
	if _, err := fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", path); err != nil {
		return err
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fmt.Errorf("POST %s with a withheld body: no answer: %v", path, err)
	}
	resp.Body.Close()
	if _, err := io.Copy(io.Discard, br); errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("POST %s with a withheld body: answered %d, then the connection was held open", path, resp.StatusCode)
	}
	return nil
}
