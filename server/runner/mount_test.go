package runner

import "testing"

func TestPathPattern(t *testing.T) {
	cases := []struct {
		pattern, path string
		want          bool
	}{
		{"/cable", "/cable", true},
		{"/cable", "/cable/", false},
		{"/cable", "/Cable", false},
		{"/app/:key", "/app/key-1", true},
		{"/app/:key", "/app/", false},
		{"/app/:key", "/app", false},
		{"/app/:key", "/app/key/", false},
		{"/app/:key", "/app/key/x", false},
		{"/app/:key", "/apps/key", false},
		{"/app/:key", "app/key", false},
		{"/apps/:id/events", "/apps/1/events", true},
		{"/apps/:id/events", "/apps//events", false},
		{"/apps/:id/events", "/apps/1/channels", false},
		{"/", "/", true},
		{"/ds/*", "/ds/chat/room-42", true},
		{"/ds/*", "/ds/x", true},
		{"/ds/*", "/ds/", true},
		{"/ds/*", "/ds", false},
		{"/ds/*", "/dsx/a", false},
		{"/ds/*", "/Ds/a", false},
		{"/a/ds/*", "/a/ds/b/c", true},
	}
	for _, c := range cases {
		if got := parsePattern(c.pattern).match(c.path); got != c.want {
			t.Errorf("%s matching %q: %v, want %v", c.pattern, c.path, got, c.want)
		}
	}
}
