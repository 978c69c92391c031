package config

import (
	"strings"
	"testing"
	"time"
)

// TestBroadcastKeyAndPort is AnyCable's table (checked against its
// --print-config): which key the http adapter requires and which port it
// listens on; public mode keeps the key (AnyCable drops it).
func TestBroadcastKeyAndPort(t *testing.T) {
	const derived = "83149057b2f956b5f862c0ef5ad6a24d3677dc076d77e8999c24f77ca17d7a20" // s3cr3t, "broadcast-cable"
	cases := []struct {
		args []string
		key  string
		port int
		main bool
	}{
		{nil, "", 8090, false},
		{[]string{"--broadcast_key=none"}, "", 8090, false},
		{[]string{"--secret=s3cr3t"}, derived, 8080, true},
		{[]string{"--public"}, "", 8090, false},
		// AnyCable drops the key in public mode; Cablehub keeps it, as it
		// keeps the API's.
		{[]string{"--public", "--secret=s3cr3t"}, derived, 8080, true},
		{[]string{"--public", "--broadcast_key=k"}, "k", 8080, true},
		{[]string{"--broadcast_key=k"}, "k", 8080, true},
		{[]string{"--secret=s3cr3t", "--broadcast_key=k"}, "k", 8080, true},
		{[]string{"--secret=s3cr3t", "--broadcast_key=none"}, "", 8090, false},
		{[]string{"--secret=none"}, "", 8090, false},
		{[]string{"--secret=s3cr3t", "--http_broadcast_port=9000"}, derived, 9000, false},
		{[]string{"--http_broadcast_port=8080"}, "", 8080, true},
		{[]string{"--port=9000", "--secret=s3cr3t"}, derived, 9000, true},
		{[]string{"--port=8090"}, "", 8090, true},
	}
	for _, c := range cases {
		cfg, err := parse(t, nil, c.args...)
		if err != nil {
			t.Errorf("%v: %v", c.args, err)
			continue
		}
		key, _ := cfg.BroadcastKey()
		port, main := cfg.HTTPBroadcastPort()
		if key != c.key || port != c.port || main != c.main {
			t.Errorf("%v: key %q, port %d (main %t); want %q, %d (main %t)", c.args, key, port, main, c.key, c.port, c.main)
		}
	}
}

// TestBroadcastAdapters: AnyCable's default list, not explicit; a list
// from a flag or the environment is explicit; an unknown name is a
// one-line error naming the flag.
func TestBroadcastAdapters(t *testing.T) {
	c, _ := parse(t, nil)
	if strings.Join(c.Broadcast.Adapters, ",") != "http,redis" || c.Broadcast.Explicit {
		t.Errorf("default: %v, explicit %t", c.Broadcast.Adapters, c.Broadcast.Explicit)
	}
	o := c.Broadcast.Options
	if o.HTTP.Path != "/_broadcast" || o.RedisChannel != "__anycable__" || o.RedisX.Stream != "__anycable__" || o.RedisX.Group != "bx" ||
		o.RedisX.ReadBlock != 2*time.Second || o.NATSChannel != "__anycable__" {
		t.Errorf("default options: %+v", o)
	}
	c, _ = parse(t, map[string]string{"ANYCABLE_BROADCAST_ADAPTER": "redis, http,redis"})
	if strings.Join(c.Broadcast.Adapters, ",") != "redis,http" || !c.Broadcast.Explicit {
		t.Errorf("from env: %v, explicit %t", c.Broadcast.Adapters, c.Broadcast.Explicit)
	}
	c, _ = parse(t, nil, "--broadcast_adapter=")
	if len(c.Broadcast.Adapters) != 0 || !c.Broadcast.Explicit {
		t.Errorf("empty: %v", c.Broadcast.Adapters)
	}
	c, _ = parse(t, nil, "--broadcast_adapter=http,redisx,nats", "--redisx_stream=s", "--redisx_read_block_milliseconds=500", "--nats_channel=n", "--redis_channel=r")
	if !c.HasBroadcastAdapter("nats") || c.HasBroadcastAdapter("redis") || c.Broadcast.Options.RedisX.Stream != "s" ||
		c.Broadcast.Options.RedisX.ReadBlock != 500*time.Millisecond || c.Broadcast.Options.NATSChannel != "n" || c.Broadcast.Options.RedisChannel != "r" {
		t.Errorf("flags: %+v", c.Broadcast)
	}
	errs := []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--broadcast_adapter=http,kafka"}, `invalid value "http,kafka" for --broadcast_adapter: unknown adapter "kafka": use http, redis, redisx, nats`},
		{map[string]string{"ANYCABLE_BROADCAST_ADAPTER": "amqp"}, nil, `invalid value "amqp" in ANYCABLE_BROADCAST_ADAPTER for --broadcast_adapter: unknown adapter "amqp": use http, redis, redisx, nats`},
		{nil, []string{"--http_broadcast_path=x"}, `invalid value "x" for --http_broadcast_path: must start with /`},
		{nil, []string{"--secret=s", "--http_broadcast_path=/api/x"}, `invalid value "/api/x" for --http_broadcast_path: the main listener serves something else there`},
		{nil, []string{"--http_broadcast_path=/health", "--http_broadcast_port=8080"}, `invalid value "/health" for --http_broadcast_path: the main listener serves something else there`},
		{nil, []string{"--api_port=8090"}, `invalid value 8090 for --http_broadcast_port: must differ from --api_port, --grpc_port and --metrics_port (--port shares the main listener)`},
		{nil, []string{"--redis_channel="}, `invalid value "" for --redis_channel: the redis adapter needs a channel`},
		{nil, []string{"--redis_channel=__anycable_internal__"}, `invalid value "__anycable_internal__" for --redis_channel: the Redis pub/sub between nodes uses that channel`},
	}
	for _, e := range errs {
		if _, err := parse(t, e.env, e.args...); err == nil || err.Error() != e.want {
			t.Errorf("%v %v: %v, want %s", e.env, e.args, err, e.want)
		}
	}
	// Settings of adapters not in use are not checked.
	if _, err := parse(t, nil, "--broadcast_adapter=http", "--redis_channel="); err != nil {
		t.Errorf("unused --redis_channel checked: %v", err)
	}
}
