package config

import "testing"

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
