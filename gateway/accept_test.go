package gateway

import "testing"

func TestAcceptsJSON(t *testing.T) {
	for _, c := range []struct {
		accept []string
		want   bool
	}{
		{nil, true},
		{[]string{"*/*"}, true},
		{[]string{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, true},
		{[]string{"application/JSON"}, true},
		{[]string{"text/html", "application/*"}, true},
		{[]string{"text/html"}, false},
		{[]string{"application/json;q=0"}, false},
		{[]string{"text/plain, */*;q=0"}, false},
	} {
		if got := acceptsJSON(c.accept); got != c.want {
			t.Errorf("acceptsJSON(%q) = %v", c.accept, got)
		}
	}
}
