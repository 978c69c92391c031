package broadcast

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestHTTP pins the http adapter's answers, in the order of its checks:
// method (422), key (401), body size (413), payload (422 with the REST
// API's error body), sink failure (501), success (201, empty body).
func TestHTTP(t *testing.T) {
	sink := &fakeSink{}
	o := HTTPOptions{Path: "/_broadcast", Key: "k3y", MaxBodySize: 100}
	a := newHTTP(o, NewHandler(sink, slog.New(slog.DiscardHandler)), slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(a)
	defer srv.Close()

	cases := []struct {
		name, method, auth, body string
		sinkErr                  error
		code                     int
		resp                     string
	}{
		{"GET before the key", "GET", "", "", nil, 422, `{"code":3,"message":"method GET is not allowed here, use POST"}`},
		{"no key", "POST", "", `{"stream":"s","data":"d"}`, nil, 401, `{"code":16,"message":"missing or invalid broadcast key: send Authorization: Bearer <key> (--broadcast_key, or derived from --secret)"}`},
		{"wrong key", "POST", "Bearer nope", `{"stream":"s","data":"d"}`, nil, 401, ""},
		{"scheme is case-sensitive", "POST", "bearer k3y", `{"stream":"s","data":"d"}`, nil, 401, ""},
		{"published", "POST", "Bearer k3y", `{"stream":"s","data":"d"}`, nil, 201, ""},
		{"disconnect", "POST", "Bearer k3y", `{"command":"disconnect","payload":{"identifier":"x","reconnect":false}}`, nil, 201, ""},
		{"malformed", "POST", "Bearer k3y", `{"stream":"s","data":{"a":1}}`, nil, 422, `{"code":3,"message":"data must be a string (encode the payload as a JSON string)"}`},
		{"garbage", "POST", "Bearer k3y", `garbage`, nil, 422, `{"code":3,"message":"request body is not valid JSON: invalid character 'g' looking for beginning of value"}`},
		{"too large", "POST", "Bearer k3y", `{"stream":"s","data":"` + strings.Repeat("x", 100) + `"}`, nil, 413, `{"code":8,"message":"request body is larger than 100 bytes (--api_max_body_size)"}`},
		{"broker down", "POST", "Bearer k3y", `{"stream":"s","data":"d"}`, status.Error(codes.Unavailable, "broadcast not accepted: down"), 501, `{"code":14,"message":"broadcast not accepted: down"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sink.err = c.sinkErr
			req, _ := http.NewRequest(c.method, srv.URL+"/_broadcast", strings.NewReader(c.body))
			if c.auth != "" {
				req.Header.Set("Authorization", c.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.code {
				t.Errorf("status %d, want %d (body %s)", resp.StatusCode, c.code, body)
			}
			if c.code == 201 && len(body) != 0 {
				t.Errorf("201 with body %q", body)
			}
			if c.resp != "" && string(body) != c.resp {
				t.Errorf("body %s, want %s", body, c.resp)
			}
			if c.code >= 400 && resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
			}
		})
	}
	if got := len(sink.got()); got != 3 {
		t.Errorf("the sink got %d calls, want 3 (two publishes, one disconnect)", got)
	}
	if !a.AuthRequired() || a.DescribeAt("http://127.0.0.1:8080") != "Accept broadcast requests at http://127.0.0.1:8080/_broadcast (authorization required)" {
		t.Errorf("startup line %q", a.DescribeAt("http://127.0.0.1:8080"))
	}
}

// TestHTTPNoKey: without a key every request is let through, and the
// startup line says so.
func TestHTTPNoKey(t *testing.T) {
	sink := &fakeSink{}
	a := newHTTP(HTTPOptions{Path: "/pub", MaxBodySize: 1 << 20}, NewHandler(sink, slog.New(slog.DiscardHandler)), slog.New(slog.DiscardHandler))
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, httptest.NewRequest("POST", "/pub", strings.NewReader(`{"stream":"s","data":"d"}`)))
	if rec.Code != 201 || len(sink.got()) != 1 {
		t.Errorf("status %d, sink %v", rec.Code, sink.got())
	}
	if a.AuthRequired() || a.DescribeAt("http://localhost:8090") != "Accept broadcast requests at http://localhost:8090/pub (no authorization)" {
		t.Errorf("startup line %q", a.DescribeAt("http://localhost:8090"))
	}
}
