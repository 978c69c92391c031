package runner

import (
	"io"
	"strings"
	"testing"

	"github.com/cablehub/cablehub/server/config"
)

// deliveryLines returns the startup warnings of args that are about the
// delivery guarantee (they name --broker).
func deliveryLines(t *testing.T, args ...string) []string {
	t.Helper()
	cfg, err := config.Parse(append([]string{"--secret", "s"}, args...), func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, w := range startupWarnings(cfg) {
		if strings.Contains(w, "--broker") {
			out = append(out, w)
		}
	}
	return out
}

// TestDeliveryWarnings asserts the setups that cannot keep the delivery
// guarantee each get one WARN line naming what to use instead, and the
// setups that can (or promise nothing) get none.
func TestDeliveryWarnings(t *testing.T) {
	cases := []struct {
		args []string
		want string // "" for no warning
	}{
		{[]string{"--broker", "memory", "--pubsub", "redis"}, "use --broker redis"},
		{[]string{"--broker", "memory", "--pubsub", "nats"}, "use --broker redis"},
		{[]string{"--broker", "redis", "--pubsub", "nats"}, "use --pubsub redis"},
		{[]string{"--broker", "redis"}, ""},
		{[]string{"--broker", "redis", "--pubsub", "redis"}, ""},
		{[]string{"--broker", "memory"}, ""},
		{[]string{"--broker", "none", "--pubsub", "nats"}, ""},
		{[]string{"--broker", "none", "--pubsub", "redis"}, ""},
	}
	for _, c := range cases {
		got := deliveryLines(t, c.args...)
		switch {
		case c.want == "" && len(got) != 0:
			t.Errorf("%v: unexpected %q", c.args, got)
		case c.want != "" && (len(got) != 1 || !strings.HasSuffix(got[0], c.want) && !strings.Contains(got[0], c.want+" ")):
			t.Errorf("%v: got %q, want one line ending in %q", c.args, got, c.want)
		}
	}
}
