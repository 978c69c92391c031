package origins

import "testing"

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
