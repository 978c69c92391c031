package config

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cablehub/cablehub/gateway"
	"github.com/cablehub/cablehub/server/api"
	"github.com/cablehub/cablehub/server/broker"
	"github.com/cablehub/cablehub/server/identity"
	"github.com/cablehub/cablehub/server/node"
	"github.com/cablehub/cablehub/server/pubsub"
	"github.com/cablehub/cablehub/server/streams"
	"github.com/cablehub/cablehub/server/ws"
)

func parse(t *testing.T, env map[string]string, args ...string) (*Config, error) {
	t.Helper()
	return Parse(args, func(k string) string { return env[k] }, io.Discard)
}

func TestDefaults(t *testing.T) {
	c, err := parse(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Host != "localhost" || c.Server.Port != 8080 || c.Server.Paths[0] != "/cable" || c.Gateway.Prefix != "/api" ||
		c.Cluster.Broker != "memory" || c.Broker.PresenceTTL != 15*time.Second || c.Gateway.MaxBodySize != 1<<20 || c.APIEnabled() ||
		c.Broker.HistoryLimit != 100 || c.Broker.HistoryTTL != 300*time.Second || c.Broker.SessionsTTL != 300*time.Second ||
		c.Node.PingInterval != 3*time.Second || c.WS.MaxMessageSize != 65536 || !c.Streams.Presence || c.JWT.Param != "jid" ||
		c.Cluster.RedisURL != "redis://localhost:6379" || c.Cluster.NATSServers != "nats://127.0.0.1:4222" || c.Cluster.PubSub != "" {
		t.Errorf("defaults: %+v", c)
	}
}

func TestDeriveSecretMatchesAnyCable(t *testing.T) {
	const want = "e3b70326c38efad4042c57f65cc19e4ce2925e5aea5ea0c98dca248b837c17de"
	if got := DeriveSecret("s3cr3t", "api-cable"); got != want {
		t.Errorf("got %s", got)
	}
	c, _ := parse(t, nil, "--secret=s3cr3t")
	if c.EffectiveAPISecret() != want || !c.APIEnabled() {
		t.Errorf("effective secret %q", c.EffectiveAPISecret())
	}
	c, _ = parse(t, nil, "--secret=s3cr3t", "--api_secret=x")
	if c.EffectiveAPISecret() != "x" {
		t.Errorf("explicit secret must win: %q", c.EffectiveAPISecret())
	}
}

func TestEnvironment(t *testing.T) {
	env := map[string]string{"ANYCABLE_PORT": "9000", "PORT": "9001", "ANYCABLE_API_CORS_HOSTS": "a.com, *.b.io", "ANYCABLE_PRESENCE_TTL": "3"}
	c, err := parse(t, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Port != 9000 || len(c.Gateway.CORSHosts) != 2 || c.Gateway.CORSHosts[1] != "*.b.io" || c.Broker.PresenceTTL != 3*time.Second {
		t.Errorf("%+v", c)
	}
	c, _ = parse(t, map[string]string{"PORT": "9001"})
	if c.Server.Port != 9001 {
		t.Errorf("PORT: %d", c.Server.Port)
	}
	c, _ = parse(t, env, "--port", "7000")
	if c.Server.Port != 7000 {
		t.Errorf("flag must win over env: %d", c.Server.Port)
	}
}

func TestSecretNoneAndPublic(t *testing.T) {
	c, _ := parse(t, map[string]string{"ANYCABLE_SECRET": "none"})
	if c.Server.Secret != "" || c.APIEnabled() {
		t.Errorf("none must clear the secret: %+v", c)
	}
	c, _ = parse(t, nil, "--public")
	if !c.Server.Noauth || !c.Streams.Public || !c.APIEnabled() || c.EffectiveAPISecret() != "" {
		t.Errorf("public: %+v", c)
	}
	c, _ = parse(t, nil, "--api_port=9999")
	if !c.APIEnabled() {
		t.Error("api_port must enable the API")
	}
}

func TestDurations(t *testing.T) {
	for in, want := range map[string]time.Duration{"15": 15 * time.Second, "1500ms": 1500 * time.Millisecond, "2m": 2 * time.Minute} {
		c, err := parse(t, nil, "--presence_ttl", in)
		if err != nil || c.Broker.PresenceTTL != want {
			t.Errorf("%s: %v %v", in, c, err)
		}
	}
}

func TestErrorsNameTheFlag(t *testing.T) {
	cases := map[string][]string{
		"--port":         {"--port=x"},
		"--broker":       {"--broker=kafka"},
		"--presence_ttl": {"--presence_ttl=-5s"},
		"--api_path":     {"--api_path=api"},
		"--grpc_port":    {"--port=1000", "--grpc_port=1000"},
		"--nope":         {"--nope"},
	}
	for want, args := range cases {
		_, err := parse(t, nil, args...)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: %v", args, err)
		}
	}
	if _, err := Parse([]string{"--help"}, func(string) string { return "" }, io.Discard); !errors.Is(err, ErrHelp) {
		t.Errorf("help: %v", err)
	}
}

func TestClusterDerivations(t *testing.T) {
	c, _ := parse(t, nil, "--embed_nats", "--enats_addr", "nats://127.0.0.1:5555", "--pubsub", "nats")
	if c.Cluster.NATSServers != "nats://127.0.0.1:5555" {
		t.Errorf("embedded NATS must be used by default: %q", c.Cluster.NATSServers)
	}
	c, _ = parse(t, nil, "--embed_nats", "--nats_servers", "nats://10.0.0.1:4222")
	if c.Cluster.NATSServers != "nats://10.0.0.1:4222" {
		t.Errorf("explicit servers must win: %q", c.Cluster.NATSServers)
	}
	c, _ = parse(t, map[string]string{"REDIS_URL": "redis://r:1/2"}, "--broker", "redis")
	if c.Cluster.PubSub != "redis" || c.Cluster.RedisURL != "redis://r:1/2" {
		t.Errorf("redis broker: %+v", c)
	}
	if c, err := parse(t, nil, "--broker", "nats"); err != nil || c.Cluster.PubSub != "nats" {
		t.Errorf("nats broker implies the NATS pub/sub: %q %v", c.Cluster.PubSub, err)
	}
	if _, err := parse(t, nil, "--broker", "nats", "--pubsub", "redis"); err == nil || !strings.Contains(err.Error(), "--pubsub") {
		t.Errorf("nats broker with the Redis pub/sub: %v", err)
	}
}

func TestConnectionLimits(t *testing.T) {
	c, err := parse(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Node.MaxSubscriptions != 1000 || c.Node.MaxPresence != 100 || c.Node.MaxPresenceInfo != 4096 || c.Node.PresenceFromIdentifiers {
		t.Errorf("limit defaults: %+v", c)
	}
	c, err = parse(t, map[string]string{"ANYCABLE_MAX_SUBSCRIPTIONS_PER_CONNECTION": "7", "ANYCABLE_PRESENCE_ID_FROM_IDENTIFIERS": "true"}, "--max_presence_info_size=10")
	if err != nil || c.Node.MaxSubscriptions != 7 || !c.Node.PresenceFromIdentifiers || c.Node.MaxPresenceInfo != 10 {
		t.Errorf("limits from env and flags: %+v %v", c, err)
	}
	for _, bad := range []string{"--max_subscriptions_per_connection=0", "--max_presence_per_connection=-1", "--max_presence_info_size=x"} {
		if _, err := parse(t, nil, bad); err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(strings.Split(bad, "=")[0], "")) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

// TestPublishTimeout asserts --publish_timeout defaults to 2 s, takes
// seconds or a Go duration from the flag or ANYCABLE_PUBLISH_TIMEOUT, and
// refuses 0: every API call against the broker must have a deadline.
func TestPublishTimeout(t *testing.T) {
	c, err := parse(t, nil)
	if err != nil || c.API.PublishTimeout != 2*time.Second {
		t.Fatalf("default: %v, %v", c.API.PublishTimeout, err)
	}
	c, err = parse(t, map[string]string{"ANYCABLE_PUBLISH_TIMEOUT": "1500ms"})
	if err != nil || c.API.PublishTimeout != 1500*time.Millisecond {
		t.Fatalf("env: %v, %v", c.API.PublishTimeout, err)
	}
	c, err = parse(t, nil, "--publish_timeout", "3")
	if err != nil || c.API.PublishTimeout != 3*time.Second {
		t.Fatalf("flag: %v, %v", c.API.PublishTimeout, err)
	}
	if _, err := parse(t, nil, "--publish_timeout=0"); err == nil || !strings.Contains(err.Error(), "--publish_timeout") {
		t.Fatalf("0 accepted: %v", err)
	}
}

// TestSubsystemDefaults asserts that without flags each subsystem gets its
// own defaults: they are defined once, by the subsystem, and are the
// flags' defaults.
func TestSubsystemDefaults(t *testing.T) {
	c, err := parse(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantNode := node.DefaultOptions()
	wantNode.SessionsTTL = broker.DefaultMemoryOptions().SessionsTTL
	for name, pair := range map[string][2]any{
		"node":     {c.Node, wantNode},
		"ws":       {c.WS, ws.DefaultOptions()},
		"streams":  {c.Streams, streams.DefaultConfig()},
		"jwt":      {c.JWT, identity.DefaultJWTOptions()},
		"gateway":  {c.Gateway, gateway.DefaultOptions()},
		"broker":   {c.Broker, broker.DefaultMemoryOptions()},
		"embedded": {c.Cluster.Embedded, pubsub.DefaultEmbeddedOptions()},
		"timeout":  {c.API.PublishTimeout, api.DefaultTimeout},
	} {
		if !reflect.DeepEqual(pair[0], pair[1]) {
			t.Errorf("%s: %+v, want %+v", name, pair[0], pair[1])
		}
	}
}

// TestSessionsTTLReachesNodeAndBroker asserts one flag sets how long the
// broker keeps a session and how long the node offers to restore it.
func TestSessionsTTLReachesNodeAndBroker(t *testing.T) {
	c, err := parse(t, map[string]string{"ANYCABLE_SESSIONS_TTL": "7"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Broker.SessionsTTL != 7*time.Second || c.Node.SessionsTTL != 7*time.Second {
		t.Errorf("broker %s, node %s, want 7s", c.Broker.SessionsTTL, c.Node.SessionsTTL)
	}
	if c, _ := parse(t, nil, "--sessions_ttl=0"); c.Node.SessionsTTL != 0 {
		t.Errorf("--sessions_ttl=0 must turn restoring off: %s", c.Node.SessionsTTL)
	}
}

// TestSizeFlagsFitTheirField asserts a byte count is checked against the
// field it lands in, whatever its integer type.
func TestSizeFlagsFitTheirField(t *testing.T) {
	c, err := parse(t, nil, "--ws_max_pending_size=4096", "--max_message_size=100", "--api_max_body_size=10")
	if err != nil || c.WS.MaxPending != 4096 || c.WS.MaxMessageSize != 100 || c.Gateway.MaxBodySize != 10 {
		t.Fatalf("%+v %+v %v", c.WS, c.Gateway, err)
	}
	if _, err := parse(t, nil, "--ws_max_pending_size=-1"); err == nil || !strings.Contains(err.Error(), "--ws_max_pending_size") {
		t.Errorf("negative size: %v", err)
	}
}
