package origins

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestMatch(t *testing.T) {
	hosts := []string{"example.com", "*.Trusted.io", "localhost:3000"}
	for origin, want := range map[string]bool{
		"http://example.com":      true,
		"https://EXAMPLE.com":     true,
		"https://a.trusted.io":    true,
		"https://a.b.trusted.io":  true,
		"http://localhost:3000":   true,
		"http://localhost:3001":   false,
		"http://example.com.evil": false,
		"http://evil.com":         false,
		"":                        false,
		"null":                    false,
	} {
		if got := Match(origin, hosts); got != want {
			t.Errorf("%q: %v", origin, got)
		}
	}
}

func TestCORS(t *testing.T) {
	c := &CORS{Methods: "GET, OPTIONS", Headers: DefaultHeaders}
	allowed := &CORS{Hosts: []string{"example.com", "*.trusted.io"}, Methods: "GET", Headers: "Accept"}
	cases := []struct {
		cors   *CORS
		origin string
		want   string // Access-Control-Allow-Origin, "" for none
	}{
		{c, "", "*"},
		{c, "https://App.example.com", "https://app.example.com"},
		{allowed, "https://example.com", "https://example.com"},
		{allowed, "https://x.trusted.io", "https://x.trusted.io"},
		{allowed, "https://app.example.com", ""},
		{allowed, "", ""},
	}
	for _, tc := range cases {
		r := httptest.NewRequest("GET", "/events", nil)
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		h := http.Header{}
		tc.cors.Apply(h, r)
		if got := h.Get("Access-Control-Allow-Origin"); got != tc.want {
			t.Errorf("hosts %v, origin %q: allowed %q, want %q", tc.cors.Hosts, tc.origin, got, tc.want)
		}
		if h.Get("Access-Control-Allow-Credentials") != "true" || h.Get("Vary") != "Origin" || h.Get("Access-Control-Allow-Methods") != tc.cors.Methods {
			t.Errorf("headers: %v", h)
		}
	}
}
