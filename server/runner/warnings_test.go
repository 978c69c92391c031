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

// authLines returns the startup warnings of args about connections that
// cannot be authenticated.
func authLines(t *testing.T, args ...string) []string {
	t.Helper()
	cfg, err := config.Parse(args, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, w := range startupWarnings(cfg) {
		if strings.Contains(w, "every WebSocket connection will be refused") {
			out = append(out, w)
		}
	}
	return out
}

// TestNothingCanAuthenticateWarning asserts the one WARN for a server
// that refuses every connection: only with --norpc (by default the RPC
// back end authenticates) and no JWT secret, --noauth or --public; it
// names the flags that fix it, and says when the API is off too.
func TestNothingCanAuthenticateWarning(t *testing.T) {
	cases := []struct {
		args []string
		want []string // parts of the one line; nil for no warning
	}{
		{nil, nil},
		{[]string{"--rpc_host", "http://127.0.0.1:1/rpc"}, nil},
		{[]string{"--norpc"}, []string{"API is off", "--rpc_host", "--secret", "--jwt_secret", "--public"}},
		{[]string{"--rpc_impl", "none"}, []string{"API is off", "--rpc_host", "--public"}},
		{[]string{"--norpc", "--api_secret", "a"}, []string{"nothing can authenticate it", "--rpc_host", "--jwt_secret", "--public"}},
		{[]string{"--norpc", "--jwt_secret", "j"}, nil},
		{[]string{"--norpc", "--secret", "s"}, nil},
		{[]string{"--norpc", "--noauth"}, nil},
		{[]string{"--norpc", "--public"}, nil},
	}
	for _, c := range cases {
		got := authLines(t, c.args...)
		if c.want == nil {
			if len(got) != 0 {
				t.Errorf("%v: unexpected %q", c.args, got)
			}
			continue
		}
		if len(got) != 1 {
			t.Errorf("%v: got %q, want one line", c.args, got)
			continue
		}
		for _, part := range c.want {
			if !strings.Contains(got[0], part) {
				t.Errorf("%v: %q does not name %q", c.args, got[0], part)
			}
		}
	}
}
