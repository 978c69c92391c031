package config

import (
	"fmt"
	"testing"
)

// TestRedisXTurnsOnRedisPubSub: the redisx adapter hands each entry to one
// node, so without a --pubsub it turns on the Redis pub/sub (AnyCable
// does the same); an explicit --pubsub wins.
func TestRedisXTurnsOnRedisPubSub(t *testing.T) {
	cases := []struct {
		args   []string
		pubsub string
	}{
		{nil, ""},
		{[]string{"--broadcast_adapter=http,redisx"}, "redis"},
		{[]string{"--broadcast_adapter=redisx", "--pubsub=none"}, ""},
		{[]string{"--broadcast_adapter=redisx", "--pubsub=nats"}, "nats"},
		{[]string{"--broadcast_adapter=nats"}, ""},
	}
	for _, c := range cases {
		cfg, err := parse(t, nil, c.args...)
		if err != nil {
			t.Errorf("%v: %v", c.args, err)
			continue
		}
		if cfg.Cluster.PubSub != c.pubsub {
			t.Errorf("%v: pubsub %q, want %q", c.args, cfg.Cluster.PubSub, c.pubsub)
		}
	}
}

// TestNATSChannelIsOneSubject: the nats adapter's subject cannot overlap
// the NATS pub/sub's subjects.
func TestNATSChannelIsOneSubject(t *testing.T) {
	for _, c := range []struct{ subject, err string }{
		{"my_bcast", ""},
		{"app.broadcasts", ""},
		{"__anycable_internal__", `invalid value "__anycable_internal__" for --nats_channel: the NATS pub/sub between nodes uses that subject`},
		{">", `invalid value ">" for --nats_channel: must be one subject, without wildcards`},
		{"cablehub.*.x", `invalid value "cablehub.*.x" for --nats_channel: must be one subject, without wildcards`},
	} {
		_, err := parse(t, nil, "--broadcast_adapter=nats", "--nats_channel="+c.subject)
		if got := fmt.Sprint(err); (c.err == "" && err != nil) || (c.err != "" && got != c.err) {
			t.Errorf("%s: %v, want %q", c.subject, err, c.err)
		}
	}
	// Not checked when the nats adapter is not in use.
	if _, err := parse(t, nil, "--nats_channel=>"); err != nil {
		t.Errorf("unused --nats_channel checked: %v", err)
	}
}
