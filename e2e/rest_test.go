package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// Derived from secret "s3cr3t": hex(HMAC-SHA256("s3cr3t", "api-cable")).
const s3cr3tToken = "e3b70326c38efad4042c57f65cc19e4ce2925e5aea5ea0c98dca248b837c17de"

const okPub = `{"stream":"chat","data":"{\"text\":\"hi\"}"}`

// assertJSONError checks the contract's error body: JSON with an integer
// code and a message containing want.
func assertJSONError(t *testing.T, r response, status int, want string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d (body %s)", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var body struct {
		Code    *int    `json:"code"`
		Message *string `json:"message"`
	}
	if err := json.Unmarshal([]byte(r.Body), &body); err != nil || body.Code == nil || body.Message == nil {
		t.Fatalf("error body %q is not {code, message} JSON", r.Body)
	}
	if !strings.Contains(*body.Message, want) {
		t.Errorf("error message %q does not mention %q", *body.Message, want)
	}
}

func TestPublishAuthorization(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--secret", "s3cr3t")
	url := "http://" + s.Main + "/api/publish"
	cases := []struct {
		name, header string
		status       int
	}{
		{"no header", "", 401},
		{"wrong token", "Authorization: Bearer wrong", 401},
		{"the app secret itself", "Authorization: Bearer s3cr3t", 401},
		{"token without scheme", "Authorization: " + s3cr3tToken, 401},
		{"lower-case scheme", "Authorization: bearer " + s3cr3tToken, 401},
		{"two spaces", "Authorization: Bearer  " + s3cr3tToken, 401},
		{"basic scheme", "Authorization: Basic " + s3cr3tToken, 401},
		{"token with suffix", "Authorization: Bearer " + s3cr3tToken + "x", 401},
		{"derived token", "Authorization: Bearer " + s3cr3tToken, 201},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var headers []string
			if c.header != "" {
				headers = append(headers, c.header)
			}
			r := do(t, "POST", url, okPub, headers...)
			if c.status == 401 {
				assertJSONError(t, r, 401, "token")
				if r.Header.Get("WWW-Authenticate") != "Bearer" {
					t.Errorf("WWW-Authenticate %q, want Bearer", r.Header.Get("WWW-Authenticate"))
				}
				return
			}
			if r.Status != c.status {
				t.Fatalf("status %d, want %d: %s", r.Status, c.status, r.Body)
			}
		})
	}
}

func TestExplicitAPISecretWinsOverDerived(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--secret", "s3cr3t", "--api_secret", "explicit-token")
	url := "http://" + s.Main + "/api/publish"
	if r := do(t, "POST", url, okPub, "Authorization: Bearer explicit-token"); r.Status != 201 {
		t.Errorf("explicit token: %d %s", r.Status, r.Body)
	}
	if r := do(t, "POST", url, okPub, "Authorization: Bearer "+s3cr3tToken); r.Status != 401 {
		t.Errorf("derived token must not work with --api_secret: %d", r.Status)
	}
	if !strings.Contains(s.Logs(), "/api (authorization required)") {
		t.Errorf("log lacks the API line:\n%s", s.Logs())
	}
}

func TestSecretFromEnvironment(t *testing.T) {
	t.Parallel()
	s := startServer(t, []string{"ANYCABLE_SECRET=s3cr3t"})
	r := do(t, "POST", "http://"+s.Main+"/api/publish", okPub, "Authorization: Bearer "+s3cr3tToken)
	if r.Status != 201 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
}

func TestSecretNoneDisablesAPI(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--secret", "none")
	r := do(t, "POST", "http://"+s.Main+"/api/publish", okPub)
	if r.Status != 404 {
		t.Fatalf("status %d, want 404 with secret=none and nothing else", r.Status)
	}
}

func TestCheckOrder(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--secret", "s3cr3t", "--api_max_body_size", "64")
	base := "http://" + s.Main + "/api"
	auth := "Authorization: Bearer " + s3cr3tToken
	big := `{"stream":"chat","data":"` + strings.Repeat("x", 100) + `"}`
	cases := []struct {
		name, method, path, body string
		auth                     bool
		status                   int
	}{
		{"GET publish, no token", "GET", "/publish", "", false, 405},
		{"PUT publish, token", "PUT", "/publish", okPub, true, 405},
		{"HEAD publish, no token", "HEAD", "/publish", "", false, 405},
		{"OPTIONS publish without CORS", "OPTIONS", "/publish", "", false, 405},
		{"DELETE presence, no token", "DELETE", "/presence/chat/users", "", false, 405},
		{"POST presence bad path, no token", "POST", "/presence/x", "", false, 405},
		{"malformed body, no token", "POST", "/publish", "not json", false, 401},
		{"oversize body, no token", "POST", "/publish", big, false, 401},
		{"oversize body, token", "POST", "/publish", big, true, 413},
		{"malformed body, token", "POST", "/publish", "not json", true, 422},
		{"bad presence path, no token", "GET", "/presence/a/b/users", "", false, 401},
		{"bad presence path, token", "GET", "/presence/a/b/users", "", true, 404},
		{"presence, token", "GET", "/presence/chat/users", "", true, 200},
		{"publish trailing slash", "POST", "/publish/", okPub, true, 404},
		{"unknown endpoint", "POST", "/nothing", okPub, true, 404},
		{"POST history, no token", "POST", "/history/chat", okPub, false, 405},
		{"DELETE streams, token", "DELETE", "/streams", "", true, 405},
		{"POST info, no token", "POST", "/info", "", false, 405},
		{"POST watch, no token", "POST", "/watch/chat", "", false, 405},
		{"PUT stats, no token", "PUT", "/presence/chat/stats", "", false, 405},
		{"history, no token", "GET", "/history/chat", "", false, 401},
		{"watch, no token", "GET", "/watch/chat", "", false, 401},
		{"streams, token", "GET", "/streams", "", true, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var headers []string
			if c.auth {
				headers = append(headers, auth)
			}
			r := do(t, c.method, base+c.path, c.body, headers...)
			if r.Status != c.status {
				t.Fatalf("status %d, want %d (body %s)", r.Status, c.status, r.Body)
			}
			if c.status >= 400 && c.method != "HEAD" {
				assertJSONError(t, r, c.status, "")
			}
			if allow := r.Header.Get("Allow"); c.status == 405 && allow != "GET" && allow != "POST" {
				t.Errorf("Allow %q", allow)
			}
		})
	}
}

func TestPublishBodies(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public")
	url := "http://" + s.Main + "/api/publish"
	ok := []struct{ name, body, contentType string }{
		{"single object", okPub, "application/json"},
		{"batch", `[{"stream":"a","data":"1"},{"stream":"b","data":"2","meta":{"transient":true}}]`, "application/json"},
		{"form content type", okPub, "application/x-www-form-urlencoded"},
		{"text content type", okPub, "text/plain"},
		{"full meta", `{"stream":"a","data":"x","meta":{"exclude_socket":"abc","broadcast_type":"custom","transient":false}}`, "application/json"},
		{"unknown fields ignored", `{"stream":"a","data":"x","extra":1}`, "application/json"},
		{"empty data", `{"stream":"a","data":""}`, "application/json"},
	}
	for _, c := range ok {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, "POST", url, c.body, "Content-Type: "+c.contentType)
			if r.Status != 201 {
				t.Fatalf("status %d, want 201: %s", r.Status, r.Body)
			}
			if !json.Valid([]byte(r.Body)) {
				t.Errorf("201 body %q is not JSON", r.Body)
			}
		})
	}
	bad := []struct{ name, body, want string }{
		{"not JSON", `not json at all`, "not valid JSON"},
		{"truncated JSON", `{"stream":"chat","data":`, "not valid JSON"},
		{"empty body", ``, "empty"},
		{"whitespace body", `   `, "empty"},
		{"empty array", `[]`, "empty"},
		{"scalar", `42`, "object"},
		{"missing stream", `{"data":"x"}`, "stream is required"},
		{"empty stream", `{"stream":"","data":"x"}`, "stream is required"},
		{"stream not a string", `{"stream":5,"data":"x"}`, "stream must be a string"},
		{"data object", `{"stream":"chat","data":{"n":1}}`, "data must be a string"},
		{"missing data", `{"stream":"chat"}`, "data is required"},
		{"meta not an object", `{"stream":"a","data":"x","meta":"m"}`, "meta must be a JSON object"},
		{"transient not a bool", `{"stream":"a","data":"x","meta":{"transient":"yes"}}`, "meta.transient"},
		{"exclude_socket not a string", `{"stream":"a","data":"x","meta":{"exclude_socket":1}}`, "meta.exclude_socket"},
		{"bad second item", `[{"stream":"a","data":"x"},{"data":"b"}]`, "publications[1]: stream is required"},
		{"bad first item", `[{"data":"b"},{"stream":"a","data":"x"}]`, "publications[0]"},
		{"array item not an object", `[{"stream":"a","data":"x"},7]`, "publications[1]"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, "POST", url, c.body, "Content-Type: application/json")
			assertJSONError(t, r, 422, c.want)
		})
	}
}

func TestPresenceEndpoint(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public")
	base := "http://" + s.Main + "/api/presence/"
	for _, path := range []string{"chat/users", "chat%2F1/users", "room%3A1/users", "chat%201/users", "chat/users?x=1"} {
		r := do(t, "GET", base+path, "")
		if r.Status != 200 || r.Body != `{"type":"info","total":0}` {
			t.Errorf("%s: %d %q", path, r.Status, r.Body)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", path, ct)
		}
	}
	for _, path := range []string{"x", "", "/users", "a/b/users", "chat/users/", "chat/userz"} {
		r := do(t, "GET", base+path, "")
		assertJSONError(t, r, 404, "")
	}
	if r := do(t, "GET", "http://"+s.Main+"/api/presence", ""); r.Status != 404 {
		t.Errorf("bare /api/presence: %d", r.Status)
	}
}

func TestPresenceWithoutBrokerSupport(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public", "--broker", "none")
	r := do(t, "GET", "http://"+s.Main+"/api/presence/chat/users", "")
	assertJSONError(t, r, 501, "presence")
	if r := do(t, "POST", "http://"+s.Main+"/api/publish", okPub); r.Status != 201 {
		t.Errorf("publish with broker none: %d", r.Status)
	}
}

func TestNoGRPCMetadataHeaders(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public")
	for _, r := range []response{
		do(t, "POST", "http://"+s.Main+"/api/publish", okPub),
		do(t, "GET", "http://"+s.Main+"/api/presence/a/users", ""),
		do(t, "POST", "http://"+s.Main+"/api/publish", "{"),
	} {
		for name := range r.Header {
			if strings.HasPrefix(strings.ToLower(name), "grpc-") {
				t.Errorf("response leaks header %s", name)
			}
		}
	}
}

func TestFailClosed(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--noauth")
	for _, path := range []string{"/api/publish", "/api/presence/a/users"} {
		r := do(t, "POST", "http://"+s.Main+path, okPub)
		if r.Status != 404 {
			t.Errorf("%s: %d, want 404 without secret, api_port or public", path, r.Status)
		}
	}
	if strings.Contains(s.Logs(), "API") || s.GRPC != "" {
		t.Errorf("nothing about the API may be logged:\n%s", s.Logs())
	}
}

func TestPublicModeLogs(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public")
	logs := s.Logs()
	for _, want := range []string{
		fmt.Sprintf("Handle API requests at http://%s/api (no authorization)", s.Main),
		"API server is running without authentication",
		"Server is running in the public mode",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

func TestPublicWithSecretStillRequiresToken(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public", "--secret", "s3cr3t")
	url := "http://" + s.Main + "/api/publish"
	if r := do(t, "POST", url, okPub); r.Status != 401 {
		t.Errorf("no token: %d", r.Status)
	}
	if r := do(t, "POST", url, okPub, "Authorization: Bearer "+s3cr3tToken); r.Status != 201 {
		t.Errorf("token: %d", r.Status)
	}
	if strings.Contains(s.Logs(), "without authentication") {
		t.Errorf("must not claim to run without authentication")
	}
}

func TestAPIPort(t *testing.T) {
	port := freePort(t)
	s := startServer(t, nil, "--noauth", "--api_port", fmt.Sprint(port))
	want := fmt.Sprintf("127.0.0.1:%d", port)
	if s.API != want {
		t.Fatalf("API at %q, want %q\n%s", s.API, want, s.Logs())
	}
	if !strings.Contains(s.Logs(), fmt.Sprintf("Handle API requests at http://%s/api (no authorization)", want)) ||
		!strings.Contains(s.Logs(), "API server is running without authentication") {
		t.Errorf("log lines:\n%s", s.Logs())
	}
	if r := do(t, "POST", "http://"+s.API+"/api/publish", okPub); r.Status != 201 {
		t.Errorf("publish on api port: %d %s", r.Status, r.Body)
	}
	if r := do(t, "GET", "http://"+s.API+"/api/presence/s/users", ""); r.Body != `{"type":"info","total":0}` {
		t.Errorf("presence on api port: %d %s", r.Status, r.Body)
	}
	if r := do(t, "POST", "http://"+s.Main+"/api/publish", okPub); r.Status != 404 {
		t.Errorf("main port must not serve the API: %d", r.Status)
	}
	if r := do(t, "GET", "http://"+s.API+"/health", ""); r.Status != 404 {
		t.Errorf("api port must not serve /health: %d", r.Status)
	}
	if r := do(t, "GET", "http://"+s.Main+"/health", ""); r.Status != 200 {
		t.Errorf("main port /health: %d", r.Status)
	}
}

func TestAPIPortWithSecret(t *testing.T) {
	port := freePort(t)
	s := startServer(t, nil, "--secret", "s3cr3t", "--api_port", fmt.Sprint(port))
	if r := do(t, "POST", "http://"+s.API+"/api/publish", okPub); r.Status != 401 {
		t.Errorf("no token: %d", r.Status)
	}
	if r := do(t, "POST", "http://"+s.API+"/api/publish", okPub, "Authorization: Bearer "+s3cr3tToken); r.Status != 201 {
		t.Errorf("token: %d", r.Status)
	}
	if !strings.Contains(s.Logs(), fmt.Sprintf("Handle API requests at http://127.0.0.1:%d/api (authorization required)", port)) {
		t.Errorf("log:\n%s", s.Logs())
	}
}

func TestAPIPath(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"/custom", "/custom/"} {
		s := startServer(t, nil, "--public", "--api_path", path)
		if r := do(t, "POST", "http://"+s.Main+"/custom/publish", okPub); r.Status != 201 {
			t.Errorf("%s: publish %d", path, r.Status)
		}
		if r := do(t, "GET", "http://"+s.Main+"/custom/presence/s/users", ""); r.Status != 200 {
			t.Errorf("%s: presence %d", path, r.Status)
		}
		if r := do(t, "POST", "http://"+s.Main+"/api/publish", okPub); r.Status != 404 {
			t.Errorf("%s: /api/publish %d", path, r.Status)
		}
		if !strings.Contains(s.Logs(), "/custom (no authorization)") {
			t.Errorf("log:\n%s", s.Logs())
		}
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--secret", "s3cr3t", "--api_cors_headers")
	url := "http://" + s.Main + "/api/publish"
	r := do(t, "OPTIONS", url, "", "Origin: http://example.com", "Access-Control-Request-Method: POST")
	if r.Status != 200 || r.Body != "" {
		t.Fatalf("preflight: %d %q", r.Status, r.Body)
	}
	want := map[string]string{
		"Access-Control-Allow-Origin":  "*",
		"Access-Control-Allow-Methods": "POST, OPTIONS",
		"Access-Control-Allow-Headers": "Origin, X-Requested-With, X-Request-ID, Content-Type, Accept, X-CSRF-Token, Authorization",
	}
	for k, v := range want {
		if got := r.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if r.Header.Get("Access-Control-Max-Age") == "" {
		t.Errorf("no Access-Control-Max-Age")
	}
	// Headers on ordinary responses too, errors included.
	r = do(t, "POST", url, okPub, "Origin: http://example.com")
	if r.Status != 401 || r.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("401 response: %d, ACAO %q", r.Status, r.Header.Get("Access-Control-Allow-Origin"))
	}
	// Presence route.
	r = do(t, "OPTIONS", "http://"+s.Main+"/api/presence/a/users", "", "Origin: http://example.com")
	if r.Status != 200 || r.Header.Get("Access-Control-Allow-Methods") != "GET, OPTIONS" {
		t.Errorf("presence preflight: %d %q", r.Status, r.Header.Get("Access-Control-Allow-Methods"))
	}
	if !strings.Contains(s.Logs(), "(authorization required, CORS enabled)") {
		t.Errorf("log:\n%s", s.Logs())
	}
}

func TestCORSHosts(t *testing.T) {
	t.Parallel()
	s := startServer(t, []string{"ANYCABLE_API_CORS_HEADERS=true", "ANYCABLE_API_CORS_HOSTS=example.com,*.trusted.io"}, "--public")
	url := "http://" + s.Main + "/api/publish"
	cases := map[string]string{
		"http://example.com":    "http://example.com",
		"https://a.trusted.io":  "https://a.trusted.io",
		"http://evil.com":       "",
		"http://example.com.ev": "",
	}
	for origin, want := range cases {
		r := do(t, "OPTIONS", url, "", "Origin: "+origin)
		if r.Status != 200 {
			t.Errorf("%s: %d", origin, r.Status)
		}
		if got := r.Header.Get("Access-Control-Allow-Origin"); got != want {
			t.Errorf("%s: ACAO %q, want %q", origin, got, want)
		}
		if r.Header.Get("Access-Control-Allow-Methods") == "" {
			t.Errorf("%s: no Allow-Methods", origin)
		}
	}
	if r := do(t, "POST", url, okPub, "Origin: http://evil.com"); r.Status != 201 {
		t.Errorf("non-matching origin still proceeds: %d", r.Status)
	}
}

// TestRESTCannotBypassAuth tries every way around the token we know of.
func TestRESTCannotBypassAuth(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--secret", "s3cr3t")
	base := "http://" + s.Main
	attempts := []struct {
		method, path string
		headers      []string
	}{
		{"POST", "/api/publish", nil},
		{"POST", "/api//publish", nil},
		{"POST", "/api/./publish", nil},
		{"POST", "/api/%70ublish", nil},
		{"POST", "/API/publish", nil},
		{"POST", "/api/publish?x=1", nil},
		{"GET", "/api/presence/a/users", []string{"X-HTTP-Method-Override: GET"}},
		{"POST", "/api/publish", []string{"Grpc-Metadata-Authorization: Bearer " + s3cr3tToken}},
		{"POST", "/api/publish", []string{"X-Forwarded-Authorization: Bearer " + s3cr3tToken}},
		{"POST", "/cablehub.v1.CableService/Publish", []string{"Content-Type: application/grpc"}},
		{"GET", "/api/presence/a/users", []string{"Authorization: Bearer"}},
	}
	for _, a := range attempts {
		r := do(t, a.method, base+a.path, okPub, a.headers...)
		if r.Status < 400 {
			t.Errorf("%s %s %v reached the service: %d %s", a.method, a.path, a.headers, r.Status, r.Body)
		}
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	if r := do(t, "GET", "http://"+s.Main+"/health", ""); r.Status != 200 {
		t.Errorf("/health: %d", r.Status)
	}
	if r := do(t, "GET", "http://"+s.Main+"/", ""); r.Status != 404 {
		t.Errorf("/: %d", r.Status)
	}
}

func TestPprofOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	off := startServer(t, nil)
	if r := do(t, "GET", "http://"+off.Main+"/debug/pprof/", ""); r.Status != 404 {
		t.Errorf("pprof without --pprof: %d", r.Status)
	}
	on := startServer(t, nil, "--pprof")
	if r := do(t, "GET", "http://"+on.Main+"/debug/pprof/goroutine?debug=1", ""); r.Status != 200 || !strings.Contains(r.Body, "goroutine profile") {
		t.Errorf("pprof with --pprof: %d", r.Status)
	}
}
