package runner

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
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

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// testWait bounds every wait in these tests; the limits under test are far
// shorter, so only a limit that does not work makes a test wait this long.
const testWait = 15 * time.Second

// wantJSONError checks an API error answer: status, JSON content type and
// the gRPC code in the body.
func wantJSONError(t *testing.T, resp *http.Response, status, code int) {
	t.Helper()
	defer resp.Body.Close()
	var body struct {
		Code    *int    `json:"code"`
		Message *string `json:"message"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d (body %s)", resp.StatusCode, status, raw)
	}
	if err := json.Unmarshal(raw, &body); err != nil || body.Code == nil || body.Message == nil || *body.Code != code {
		t.Fatalf("body %s, want {\"code\":%d,\"message\":...}", raw, code)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
}

// A client that sends the headers and part of a body, then nothing, is
// answered 408, over HTTP/1.1 (connection closed afterwards) and over h2c
// (the stream only).
func TestAPIBodyReadIsBounded(t *testing.T) {
	// A dedicated gRPC port leaves the main port's h2c to net/http.
	r := startWith(t, func(l *limits) { l.apiBody = 200 * time.Millisecond },
		"--public", "--broker", "none", "--grpc_port", strconv.Itoa(freePort(t)))

	t.Run("HTTP/1.1", func(t *testing.T) {
		c, err := net.Dial("tcp", r.APIAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(testWait))
		fmt.Fprintf(c, "POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"stream\":")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("no answer to a withheld body: %v", err)
		}
		wantJSONError(t, resp, http.StatusRequestTimeout, 4)
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("after the 408 the connection must close, read gave %v", err)
		}
	})

	t.Run("h2c", func(t *testing.T) {
		var protocols http.Protocols
		protocols.SetUnencryptedHTTP2(true)
		client := &http.Client{Transport: &http.Transport{Protocols: &protocols}, Timeout: testWait}
		pr, pw := io.Pipe()
		defer pw.Close()
		go pw.Write([]byte(`{"stream":`))
		resp, err := client.Post("http://"+r.APIAddr+"/api/publish", "application/json", pr)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ProtoMajor != 2 {
			t.Fatalf("answered over %s, want HTTP/2", resp.Proto)
		}
		wantJSONError(t, resp, http.StatusRequestTimeout, 4)

		// The connection is still good for the next request.
		resp, err = client.Post("http://"+r.APIAddr+"/api/publish", "application/json", strings.NewReader(`{"stream":"a","data":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("next publish: %d", resp.StatusCode)
		}
	})
}

// A client that announces a body and sends none is answered, and its
// connection closed, within the body bound on every listener and path:
// the main listener (health, WebSocket path, pprof, the API, metrics, an
// unknown path), the dedicated API port, the metrics port and the http
// broadcast adapter's port. Paths that do not read bodies answer at once.
func TestWithheldBodyIsBoundedOnEveryListener(t *testing.T) {
	short := func(l *limits) { l.apiBody = 300 * time.Millisecond }
	ports := startWith(t, short, "--public", "--broker", "none", "--pprof", "--broadcast_adapter", "http",
		"--api_port", strconv.Itoa(freePort(t)), "--metrics_http", "/metrics", "--metrics_port", strconv.Itoa(freePort(t)),
		"--http_broadcast_port", strconv.Itoa(freePort(t)))
	shared := startWith(t, short, "--public", "--broker", "none", "--metrics_http", "/metrics")
	for _, c := range []struct{ name, addr, path string }{
		{"main health", ports.MainAddr, "/health"},
		{"main WebSocket path", ports.MainAddr, "/cable"},
		{"main pprof", ports.MainAddr, "/debug/pprof/"},
		{"main unknown path", ports.MainAddr, "/nope"},
		{"main API", shared.MainAddr, "/api/publish"},
		{"main metrics", shared.MainAddr, "/metrics"},
		{"API port", ports.APIAddr, "/api/publish"},
		{"API port, another path", ports.APIAddr, "/health"},
		{"metrics port", ports.MetricsAddr, "/metrics"},
		{"broadcast port", ports.BroadcastAddr, "/_broadcast"},
		{"broadcast port, another path", ports.BroadcastAddr, "/health"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			nc, err := net.Dial("tcp", c.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			// Far beyond the 300 ms bound, far short of forever.
			nc.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(nc, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", c.path)
			br := bufio.NewReader(nc)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			resp.Body.Close()
			if !resp.Close {
				t.Errorf("answer %d without Connection: close", resp.StatusCode)
			}
			if _, err := io.Copy(io.Discard, br); errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("answer %d, then the connection was held open", resp.StatusCode)
			}
		})
	}
}

// A gRPC connection without calls is closed once it has been idle for
// grpcIdle, on the shared port and on a dedicated one: its client channel
// goes IDLE.
func TestGRPCIdleConnectionIsClosed(t *testing.T) {
	short := func(l *limits) { l.grpcIdle = 300 * time.Millisecond }
	for name, args := range map[string][]string{
		"shared":    {"--public"},
		"dedicated": {"--public", "--grpc_port", strconv.Itoa(freePort(t))},
	} {
		t.Run(name, func(t *testing.T) {
			r := startWith(t, short, args...)
			conn, err := grpc.NewClient(r.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), testWait)
			defer cancel()
			if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
				t.Fatal(err)
			}
			for s := conn.GetState(); s != connectivity.Idle; s = conn.GetState() {
				if !conn.WaitForStateChange(ctx, s) {
					t.Fatalf("the idle connection stayed %v", s)
				}
			}
			// A new call reconnects.
			if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A connection that does not complete the HTTP/2 handshake is closed
// after grpcHandshake: on the shared port one that sent only the preface
// (which routes it to gRPC), on a dedicated port one that sent nothing.
func TestGRPCHandshakeIsBounded(t *testing.T) {
	short := func(l *limits) { l.grpcHandshake = 200 * time.Millisecond }
	for name, c := range map[string]struct {
		args  []string
		first string
	}{
		"shared":    {[]string{"--public"}, h2Preface},
		"dedicated": {[]string{"--public", "--grpc_port", strconv.Itoa(freePort(t))}, ""},
	} {
		t.Run(name, func(t *testing.T) {
			r := startWith(t, short, c.args...)
			conn, err := net.Dial("tcp", r.GRPCAddr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(testWait))
			io.WriteString(conn, c.first)
			_, err = io.Copy(io.Discard, conn)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("the server kept a connection that never finished its handshake")
			}
		})
	}
}

// Clients may ping as often as grpcMinPing, calls in flight or not (no
// GOAWAY, every ping answered); one pinging more often is sent GOAWAY with
// ENHANCE_YOUR_CALM (too_many_pings). grpc-go's default policy would
// refuse the spaced pings too: it allows none without a call in flight.
func TestGRPCPingPolicy(t *testing.T) {
	const minPing = 250 * time.Millisecond
	r := startWith(t, func(l *limits) { l.grpcMinPing = minPing }, "--public")
	conn, err := net.Dial("tcp", r.GRPCAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(testWait))
	if _, err := conn.Write(appendFrame([]byte(h2Preface), 0x4, 0, nil)); err != nil { // SETTINGS
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	ping := func(n int) []byte { return appendFrame(nil, 0x6, 0, binary.BigEndian.AppendUint64(nil, uint64(n))) }
	for i := range 5 {
		if _, err := conn.Write(ping(i)); err != nil {
			t.Fatal(err)
		}
		for {
			typ, flags, payload, err := readFrame(br)
			if err != nil {
				t.Fatalf("ping %d: %v", i, err)
			}
			if typ == 0x7 {
				t.Fatalf("ping %d, %s after the last answer, got GOAWAY %q", i, 2*minPing, payload[8:])
			}
			if typ == 0x6 && flags&0x1 != 0 {
				break
			}
		}
		// The server took the previous ping before it answered it: from
		// here on the next one is at least this late.
		time.Sleep(2 * minPing)
	}

	var flood []byte
	for i := range 10 {
		flood = append(flood, ping(100+i)...)
	}
	if _, err := conn.Write(flood); err != nil {
		t.Fatal(err)
	}
	for {
		typ, _, payload, err := readFrame(br)
		if err != nil {
			t.Fatalf("no GOAWAY for a ping flood: %v", err)
		}
		if typ != 0x7 {
			continue
		}
		if code := binary.BigEndian.Uint32(payload[4:8]); code != 0xb {
			t.Fatalf("GOAWAY code %#x (%q), want ENHANCE_YOUR_CALM", code, payload[8:])
		}
		return
	}
}

// appendFrame appends an HTTP/2 frame on stream 0.
func appendFrame(b []byte, typ, flags byte, payload []byte) []byte {
	n := len(payload)
	b = append(b, byte(n>>16), byte(n>>8), byte(n), typ, flags, 0, 0, 0, 0)
	return append(b, payload...)
}

// readFrame reads one HTTP/2 frame's type, flags and payload.
func readFrame(r io.Reader) (typ, flags byte, payload []byte, err error) {
	var h [9]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, 0, nil, err
	}
	payload = make([]byte, int(h[0])<<16|int(h[1])<<8|int(h[2]))
	_, err = io.ReadFull(r, payload)
	return h[3], h[4], payload, err
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
