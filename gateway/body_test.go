package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cablehub/cablehub/gateway"
	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
	"github.com/cablehub/cablehub/server/api"
)

// testWait bounds every wait; only a broken bound makes a test wait this
// long.
const testWait = 15 * time.Second

// stubService accepts every publish, and panics on stream "boom".
type stubService struct {
	cablehubv1.UnimplementedCableServiceServer
}

func (stubService) Publish(_ context.Context, req *cablehubv1.PublishRequest) (*cablehubv1.PublishResponse, error) {
	if req.GetPublications()[0].GetStream() == "boom" {
		panic("boom")
	}
	return &cablehubv1.PublishResponse{}, nil
}

// newStubAPI serves the gateway over stubService in process, with the
// server's recovery interceptor, a 1 KiB body limit and bodyTimeout.
func newStubAPI(t *testing.T, bodyTimeout time.Duration) *httptest.Server {
	t.Helper()
	rec := api.NewRecovery(slog.New(slog.NewTextHandler(io.Discard, nil)))
	conn := api.NewInProcess(&cablehubv1.CableService_ServiceDesc, stubService{}, rec.UnaryInterceptor())
	gw, err := gateway.New(context.Background(), gateway.Options{
		Prefix: "/api", Conn: conn, Auth: api.NewAuth(""), MaxBodySize: 1024, BodyTimeout: bodyTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(gw)
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
	ts := newStubAPI(t, testWait)
	big := `{"stream":"a","data":"` + strings.Repeat("x", 300<<10) + `"}`
	for name, req := range map[string]string{
		"declared": fmt.Sprintf("POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(big), big),
		"chunked":  fmt.Sprintf("POST /api/publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(big), big),
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
			fmt.Fprintf(c, "POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(okBody), okBody)
			if status, _, body := c.answer(t); status != http.StatusCreated {
				t.Fatalf("next request on the connection: %d %s", status, body)
			}
		})
	}
}

// A body declared too large to drain, or whose sender waits for 100
// Continue, is refused at once, unread, and the connection closed.
func TestOversizedBodyRefusedUnread(t *testing.T) {
	ts := newStubAPI(t, 0)
	for name, headers := range map[string]string{
		"beyond the drain": fmt.Sprintf("Content-Length: %d\r\n", 1024+(1<<20)+1),
		"100-continue":     "Content-Length: 2048\r\nExpect: 100-continue\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			c := dialRaw(t, ts)
			fmt.Fprintf(c, "POST /api/publish HTTP/1.1\r\nHost: x\r\n%s\r\n", headers)
			status, closing, body := c.answer(t)
			if status != http.StatusRequestEntityTooLarge || !closing {
				t.Fatalf("got %d (closing: %t), want 413 and Connection: close (%s)", status, closing, body)
			}
			wantError(t, body, 8)
		})
	}
}

// A withheld body is answered 408, and the connection closed; the server
// goes on serving others.
func TestWithheldBodyAnswered408(t *testing.T) {
	ts := newStubAPI(t, 200*time.Millisecond)
	c := dialRaw(t, ts)
	io.WriteString(c, "POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"str")
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
		fmt.Fprintf(c, "POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(okBody), okBody)
		if status, _, body := c.answer(t); status != http.StatusCreated {
			t.Fatalf("publish: %d %s", status, body)
		}
	}
}

// A panic in the service reaches a REST client as 500 with the contract's
// JSON error body, and the server goes on serving.
func TestServicePanicAnswers500(t *testing.T) {
	ts := newStubAPI(t, 0)
	resp, err := http.Post(ts.URL+"/api/publish", "application/json", strings.NewReader(`{"stream":"boom","data":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || string(body) != `{"code":13,"message":"internal error"}` {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	resp, err = http.Post(ts.URL+"/api/publish", "application/json", strings.NewReader(okBody))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("after the panic: %d", resp.StatusCode)
	}
}
