package admin

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func newConsole(t *testing.T, clk *clock) *Console {
	t.Helper()
	c, err := New(Options{Path: "/admin", APIPath: "/api", NodeID: "n1", Credentials: []string{"pw", "", "api-token"},
		Config: "# masked\n", TTL: time.Hour, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// do runs one request through c; console adds the console header.
func do(c *Console, method, path, body string, console bool, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.RemoteAddr = "192.0.2.1:4000"
	if console {
		r.Header.Set(Header, "1")
	}
	for _, ck := range cookies {
		r.AddCookie(ck)
	}
	w := httptest.NewRecorder()
	c.ServeHTTP(w, r)
	return w
}

func sessionCookie(t *testing.T, w *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	for _, ck := range w.Result().Cookies() {
		if ck.Name == CookieName {
			return ck
		}
	}
	t.Fatalf("no %s cookie in %v", CookieName, w.Header())
	return nil
}

func TestNewNeedsACredential(t *testing.T) {
	if _, err := New(Options{Path: "/admin", Credentials: []string{"", ""}}); err != ErrNoCredentials {
		t.Fatalf("New without credentials: %v, want ErrNoCredentials", err)
	}
}

func TestPageAndFiles(t *testing.T) {
	c := newConsole(t, newClock())
	w := do(c, "GET", "/admin", "", false)
	if w.Code != http.StatusPermanentRedirect || w.Header().Get("Location") != "/admin/" {
		t.Fatalf("GET /admin: %d %q, want 308 to /admin/", w.Code, w.Header().Get("Location"))
	}
	w = do(c, "GET", "/admin/", "", false)
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") || !strings.Contains(w.Body.String(), "<html") {
		t.Fatalf("GET /admin/: %d %q %.80q", w.Code, w.Header().Get("Content-Type"), w.Body.String())
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy"} {
		if w.Header().Get(h) == "" {
			t.Errorf("the page is served without %s", h)
		}
	}
	if !strings.Contains(w.Header().Get("Content-Security-Policy"), "script-src 'self'") {
		t.Errorf("CSP %q allows scripts from elsewhere", w.Header().Get("Content-Security-Policy"))
	}
	etag := w.Header().Get("ETag")
	r := httptest.NewRequest("GET", "/admin/", nil)
	r.Header.Set("If-None-Match", etag)
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, r)
	if etag == "" || rec.Code != http.StatusNotModified {
		t.Fatalf("revalidating with ETag %q: %d, want 304", etag, rec.Code)
	}
	for _, p := range []string{"/admin/nope.js", "/admin/../admin.go", "/adminx"} {
		if w := do(c, "GET", p, "", false); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, w.Code)
		}
	}
	if w := do(c, "POST", "/admin/", "", false); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /admin/: %d, want 405", w.Code)
	}
}

func TestSignInAndOut(t *testing.T) {
	clk := newClock()
	c := newConsole(t, clk)
	if w := do(c, "GET", "/admin/session", "", true); w.Code != http.StatusUnauthorized {
		t.Fatalf("session before signing in: %d, want 401", w.Code)
	}
	if w := do(c, "POST", "/admin/session", `{"password":"pw"}`, false); w.Code != http.StatusForbidden {
		t.Fatalf("sign-in without the console header: %d, want 403", w.Code)
	}
	w := do(c, "POST", "/admin/session", `{"password":"nope"}`, true)
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), `"wrong password"`) || len(w.Result().Cookies()) != 0 {
		t.Fatalf("wrong password: %d %s %v", w.Code, w.Body, w.Result().Cookies())
	}
	for _, body := range []string{"", "{", `{"pass":"pw"}`, `{"password":1}`, `["pw"]`} {
		if w := do(c, "POST", "/admin/session", body, true); w.Code != http.StatusBadRequest {
			t.Errorf("sign-in body %q: %d, want 400", body, w.Code)
		}
	}
	if w := do(c, "POST", "/admin/session", `{"password":"`+strings.Repeat("x", maxSignInBody)+`"}`, true); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized sign-in: %d, want 413", w.Code)
	}
	for _, pw := range []string{"pw", "api-token"} {
		w := do(c, "POST", "/admin/session", `{"password":"`+pw+`"}`, true)
		if w.Code != http.StatusNoContent {
			t.Fatalf("sign-in with %q: %d %s", pw, w.Code, w.Body)
		}
		ck := sessionCookie(t, w)
		if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.MaxAge != 3600 || ck.Secure {
			t.Fatalf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/, Max-Age=3600, not Secure over plain HTTP", ck)
		}
		w = do(c, "GET", "/admin/session", "", false, ck)
		if w.Code != 200 || !strings.Contains(w.Body.String(), `"api_path":"/api"`) || !strings.Contains(w.Body.String(), `"expires_at":"2026-12-06T13:00:00Z"`) {
			t.Fatalf("session: %d %s", w.Code, w.Body)
		}
		if w := do(c, "GET", "/admin/config", "", false, ck); w.Code != 200 || !strings.Contains(w.Body.String(), `"toml":"# masked\n"`) {
			t.Fatalf("config: %d %s", w.Code, w.Body)
		}
		if w := do(c, "DELETE", "/admin/session", "", false, ck); w.Code != http.StatusForbidden {
			t.Fatalf("sign-out without the console header: %d, want 403", w.Code)
		}
		w = do(c, "DELETE", "/admin/session", "", true, ck)
		if w.Code != http.StatusNoContent || sessionCookie(t, w).MaxAge != -1 {
			t.Fatalf("sign-out: %d %v", w.Code, w.Header())
		}
		if w := do(c, "GET", "/admin/config", "", false, ck); w.Code != http.StatusUnauthorized {
			t.Fatalf("config after signing out: %d, want 401", w.Code)
		}
	}
}

func TestSessionExpires(t *testing.T) {
	clk := newClock()
	c := newConsole(t, clk)
	ck := sessionCookie(t, do(c, "POST", "/admin/session", `{"password":"pw"}`, true))
	clk.t = clk.t.Add(time.Hour)
	if w := do(c, "GET", "/admin/session", "", false, ck); w.Code != http.StatusUnauthorized {
		t.Fatalf("an hour-old session: %d, want 401", w.Code)
	}
}

func TestSignInIsRateLimited(t *testing.T) {
	clk := newClock()
	c := newConsole(t, clk)
	for range maxFailures {
		do(c, "POST", "/admin/session", `{"password":"guess"}`, true)
	}
	w := do(c, "POST", "/admin/session", `{"password":"pw"}`, true)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "60" || len(w.Result().Cookies()) != 0 {
		t.Fatalf("right password after %d failures: %d %q, want 429 with Retry-After 60", maxFailures, w.Code, w.Header().Get("Retry-After"))
	}
	clk.t = clk.t.Add(window)
	if w := do(c, "POST", "/admin/session", `{"password":"pw"}`, true); w.Code != http.StatusNoContent {
		t.Fatalf("a window later: %d, want 204", w.Code)
	}
}

func TestRequestSessionNeedsTheHeader(t *testing.T) {
	r := httptest.NewRequest("GET", "/api/info", nil)
	r.AddCookie(&http.Cookie{Name: CookieName, Value: "tok"})
	if got := RequestSession(r); got != "" {
		t.Fatalf("without the header: %q, want none", got)
	}
	r.Header.Set(Header, "1")
	if got := RequestSession(r); got != "tok" {
		t.Fatalf("with the header: %q, want tok", got)
	}
}
