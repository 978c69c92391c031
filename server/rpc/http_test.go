package rpc

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	anycablepb "github.com/cablehub/cablehub/gen/anycable"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var discard = slog.New(slog.DiscardHandler)

func newTestHTTP(t *testing.T, opts HTTPOptions) *HTTP {
	t.Helper()
	h, err := NewHTTP(opts, discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// captured is one request as the test server saw it.
type captured struct {
	method, path, query string
	header              http.Header
	body                []byte
}

// recordingServer answers every request with reply (status 200) and
// sends what it received on the returned channel.
func recordingServer(t *testing.T, reply string) (*httptest.Server, <-chan captured) {
	t.Helper()
	ch := make(chan captured, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ch <- captured{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, reply)
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestDeriveSecret(t *testing.T) {
	// AnyCable's key for the secret s3cr3t.
	const want = "4b7da2749fe2a4534cec0d2acbd16277a800cf2acd31158ac4edae4a62a8f18d"
	if got := DeriveSecret("s3cr3t"); got != want {
		t.Errorf("DeriveSecret(s3cr3t) = %s, want %s", got, want)
	}
}

func TestNewHTTPRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "localhost:50051", "ftp://h/x", "http://", "grpc://h:1", "http://[::1", "/rpc"} {
		if _, err := NewHTTP(HTTPOptions{URL: u}, discard); err == nil {
			t.Errorf("NewHTTP(%q) accepted", u)
		}
	}
}

// TestHTTPRequests checks method, path joining, query, headers and body
// of all three calls.
func TestHTTPRequests(t *testing.T) {
	srv, reqs := recordingServer(t, `{"status":1}`)
	h := newTestHTTP(t, HTTPOptions{URL: srv.URL + "/api/anycable/?key=1", Secret: "k3y"})
	ctx := ctxT(t)

	env := transcriptEnv()
	if _, err := h.Connect(ctx, "sid-1", &anycablepb.ConnectionRequest{Env: env}); err != nil {
		t.Fatal(err)
	}
	cmd := &anycablepb.CommandMessage{Command: "message", Identifier: `{"channel":"chat"}`, Data: `{"a":"<&>"}`, Env: env}
	if _, err := h.Command(ctx, "sid-1", cmd); err != nil {
		t.Fatal(err)
	}
	disc := &anycablepb.DisconnectRequest{Identifiers: "x", Subscriptions: []string{"a", "b"}, Env: env}
	if _, err := h.Disconnect(ctx, "sid-1", disc); err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct{ path, body string }{
		{"/api/anycable/connect", `{"env":` + transcriptEnvJSON + `}`},
		{"/api/anycable/command", `{"command":"message","identifier":"{\"channel\":\"chat\"}","data":"{\"a\":\"\u003c\u0026\u003e\"}","env":` + transcriptEnvJSON + `}`},
		{"/api/anycable/disconnect", `{"identifiers":"x","subscriptions":["a","b"],"env":` + transcriptEnvJSON + `}`},
	} {
		got := <-reqs
		if got.method != http.MethodPost || got.path != want.path || got.query != "key=1" {
			t.Errorf("request %s %s?%s, want POST %s?key=1", got.method, got.path, got.query, want.path)
		}
		if string(got.body) != want.body {
			t.Errorf("%s body:\n got %s\nwant %s", want.path, got.body, want.body)
		}
		for name, value := range map[string]string{
			"Authorization":          "Bearer k3y",
			"Content-Type":           "application/json",
			"X-Anycable-Meta-Protov": "v1",
			"X-Anycable-Meta-Sid":    "sid-1",
			"Accept-Encoding":        "gzip",
			"User-Agent":             "Go-http-client/1.1",
		} {
			if v := got.header.Values(name); len(v) != 1 || v[0] != value {
				t.Errorf("%s: header %s = %q, want %q", want.path, name, v, value)
			}
		}
	}

	// A base without a path or trailing slash.
	h2 := newTestHTTP(t, HTTPOptions{URL: srv.URL})
	if _, err := h2.Command(ctx, "s", &anycablepb.CommandMessage{}); err != nil {
		t.Fatal(err)
	}
	if got := <-reqs; got.path != "/command" || got.query != "" || string(got.body) != "{}" {
		t.Errorf("got %s?%s %s, want /command with body {}", got.path, got.query, got.body)
	}
}

// TestHTTPAuthorizationKey covers the key's three sources.
func TestHTTPAuthorizationKey(t *testing.T) {
	srv, reqs := recordingServer(t, `{"status":1}`)
	for _, tc := range []struct {
		name string
		opts HTTPOptions
		want string
	}{
		{"secret verbatim", HTTPOptions{Secret: "plain", AppSecret: "s3cr3t"}, "Bearer plain"},
		{"derived from the application secret", HTTPOptions{AppSecret: "s3cr3t"}, "Bearer " + DeriveSecret("s3cr3t")},
		{"none disables", HTTPOptions{Secret: "none", AppSecret: "s3cr3t"}, ""},
		{"nothing configured", HTTPOptions{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.URL = srv.URL
			h := newTestHTTP(t, tc.opts)
			if _, err := h.Connect(ctxT(t), "s", &anycablepb.ConnectionRequest{}); err != nil {
				t.Fatal(err)
			}
			got := <-reqs
			if v := got.header.Values("Authorization"); strings.Join(v, ",") != tc.want {
				t.Errorf("Authorization = %q, want %q", v, tc.want)
			}
		})
	}
}

// TestHTTPRawRequestHead reads the request head off a bare TCP socket to
// pin the header order of AnyCable's requests.
func TestHTTPRawRequestHead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	heads := make(chan []string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		var lines []string
		for {
			line, err := r.ReadString('\n')
			if err != nil || line == "\r\n" {
				break
			}
			lines = append(lines, strings.TrimRight(line, "\r\n"))
		}
		heads <- lines
		reply := `{"status":1}`
		fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(reply), reply)
	}()
	h := newTestHTTP(t, HTTPOptions{URL: "http://" + ln.Addr().String() + "/_anycable", Secret: "k"})
	body, _ := encodeConnect(&anycablepb.ConnectionRequest{})
	if _, err := h.Connect(ctxT(t), "YhOWV3bmwmmO3QT2Z95nj", &anycablepb.ConnectionRequest{}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"POST /_anycable/connect HTTP/1.1",
		"Host: " + ln.Addr().String(),
		"User-Agent: Go-http-client/1.1",
		fmt.Sprintf("Content-Length: %d", len(body)),
		"Authorization: Bearer k",
		"Content-Type: application/json",
		"X-Anycable-Meta-Protov: v1",
		"X-Anycable-Meta-Sid: YhOWV3bmwmmO3QT2Z95nj",
		"Accept-Encoding: gzip",
	}
	if got := <-heads; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("request head:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestHTTPStatusMapping covers AnyCable's mapping of answers other than 200:
// each is a status error and none is retried.
func TestHTTPStatusMapping(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   codes.Code
	}{
		{http.StatusUnauthorized, codes.Unauthenticated},
		{http.StatusBadRequest, codes.InvalidArgument},
		{http.StatusUnprocessableEntity, codes.InvalidArgument},
		{http.StatusNotFound, codes.Unknown},
		{http.StatusInternalServerError, codes.Unknown},
		{http.StatusServiceUnavailable, codes.Unknown},
		{http.StatusCreated, codes.Unknown},
		{http.StatusFound, codes.Unknown}, // redirects are not followed
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				hits.Add(1)
				w.Header().Set("Location", "/elsewhere")
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, `{"status":1}`)
			}))
			defer srv.Close()
			h := newTestHTTP(t, HTTPOptions{URL: srv.URL})
			resp, err := h.Command(ctxT(t), "s", &anycablepb.CommandMessage{Command: "message"})
			if got := status.Code(err); got != tc.code || resp != nil {
				t.Errorf("HTTP %d: code %v (resp %v), want %v", tc.status, got, resp, tc.code)
			}
			if n := hits.Load(); n != 1 {
				t.Errorf("HTTP %d: %d requests, want 1 (no retry)", tc.status, n)
			}
		})
	}
}

// TestHTTPReplies: a 200 with an ERROR status is an answer, not an error;
// an unparsable 200 fails with codes.Unknown, not retried.
func TestHTTPReplies(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/connect":
			_, _ = io.WriteString(w, `{"error_msg":"boom","transmissions":["x"]}`)
		case "/command":
			_, _ = io.WriteString(w, `<html>oops</html>`)
		default:
			_, _ = io.WriteString(w, `{"status":"SUCCESS"}`)
		}
	}))
	defer srv.Close()
	h := newTestHTTP(t, HTTPOptions{URL: srv.URL})
	ctx := ctxT(t)
	resp, err := h.Connect(ctx, "s", &anycablepb.ConnectionRequest{})
	if err != nil || resp.GetStatus() != anycablepb.Status_ERROR || resp.GetErrorMsg() != "boom" {
		t.Errorf("Connect = %v, %v; want an ERROR answer", resp, err)
	}
	if _, err := h.Command(ctx, "s", &anycablepb.CommandMessage{}); status.Code(err) != codes.Unknown {
		t.Errorf("non-JSON reply: %v, want Unknown", err)
	}
	if _, err := h.Disconnect(ctx, "s", &anycablepb.DisconnectRequest{}); status.Code(err) != codes.Unknown {
		t.Errorf("string status: %v, want Unknown", err)
	}
	if n := hits.Load(); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

func TestHTTPGzipReply(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept-Encoding") != "gzip" {
			http.Error(w, "no gzip", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		_, _ = io.WriteString(zw, `{"status":1,"streams":["room:42"]}`)
		_ = zw.Close()
	}))
	defer srv.Close()
	h := newTestHTTP(t, HTTPOptions{URL: srv.URL})
	resp, err := h.Command(ctxT(t), "s", &anycablepb.CommandMessage{})
	if err != nil || resp.GetStatus() != anycablepb.Status_SUCCESS || resp.GetStreams()[0] != "room:42" {
		t.Errorf("Command = %v, %v", resp, err)
	}
}

// TestHTTPReplySizeLimit: a reply above MaxResponseBytes fails closed
// (codes.Unknown, not retried), whether it announces its length, is
// chunked, or only grows that large when gunzipped.
func TestHTTPReplySizeLimit(t *testing.T) {
	const limit = 1024
	big := `{"status":1,"error_msg":"` + strings.Repeat("x", 2*limit) + `"}`
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/connect": // Content-Length set
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
			_, _ = io.WriteString(w, big)
		case "/command": // chunked
			for i := 0; i < len(big); i += 100 {
				_, _ = io.WriteString(w, big[i:min(i+100, len(big))])
				w.(http.Flusher).Flush()
			}
		default: // small on the wire, big once decoded
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			_, _ = io.WriteString(zw, big)
			_ = zw.Close()
		}
	}))
	defer srv.Close()
	h := newTestHTTP(t, HTTPOptions{URL: srv.URL, MaxResponseBytes: limit})
	ctx := ctxT(t)
	if _, err := h.Connect(ctx, "s", &anycablepb.ConnectionRequest{}); status.Code(err) != codes.Unknown {
		t.Errorf("Content-Length reply: %v, want Unknown", err)
	}
	if _, err := h.Command(ctx, "s", &anycablepb.CommandMessage{}); status.Code(err) != codes.Unknown {
		t.Errorf("chunked reply: %v, want Unknown", err)
	}
	if _, err := h.Disconnect(ctx, "s", &anycablepb.DisconnectRequest{}); status.Code(err) != codes.Unknown {
		t.Errorf("gzip reply: %v, want Unknown", err)
	}
	if n := hits.Load(); n != 3 {
		t.Errorf("%d requests, want 3 (no retry)", n)
	}
	// Exactly at the limit is fine.
	small := `{"status":1,"error_msg":"` + strings.Repeat("y", limit-len(`{"status":1,"error_msg":""}`)) + `"}`
	srv2, _ := recordingServer(t, small)
	h2 := newTestHTTP(t, HTTPOptions{URL: srv2.URL, MaxResponseBytes: limit})
	if resp, err := h2.Command(ctx, "s", &anycablepb.CommandMessage{}); err != nil || resp.GetStatus() != anycablepb.Status_SUCCESS {
		t.Errorf("reply of exactly the limit: %v, %v", resp, err)
	}
}
