package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream names a client chooses never reach the cluster's internal
// channels. With the Redis pub/sub, a client that subscribes to and leaves
// the stream __anycable_internal__ does not unsubscribe its node from the
// channel remote commands travel on: a Disconnect through either node
// still closes the user's session there. A subscriber of the stream
// __anycable__ does not get the redis adapter's broadcasts twice.
func TestStreamNamesCannotReachInternalChannels(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	startRedisProcess(t, port, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	args := []string{"--secret", "test-secret", "--public_streams", "--broker", "redis", "--redis_url", fmt.Sprintf("redis://127.0.0.1:%d/0", port),
		"--broadcast_adapter", "redis"}
	a, b := startServer(t, nil, args...), startServer(t, nil, args...)
	for _, s := range []*server{a, b} {
		waitHealth(t, s, 200)
	}
	token := jwtToken(t, "test-secret", jwt.MapClaims{"ext": `{"user":"ann"}`})
	attacker := dialWS(t, a, dialOpts{query: "?jid=" + token})
	attacker.welcome()
	internal := attacker.subscribe("__anycable_internal__")
	attacker.send(`{"command":"unsubscribe","identifier":` + quoted(internal) + `}`)
	attacker.barrier()
	attacker.subscribe("__anycable__")

	// A broadcast of the gem's redis adapter, to stream s, arrives once at
	// s's subscriber; the subscriber of __anycable__ gets nothing of it.
	stream := uniqueStream(t, "s")
	victim := dialWS(t, a, dialOpts{query: "?jid=" + token})
	victim.welcome()
	q := quoted(victim.subscribe(stream))
	waitUntil(t, "a node listens to the redis adapter's channel", func() bool {
		out := strings.Fields(redisCLI(t, port, "pubsub", "numsub", "__anycable__"))
		return len(out) == 2 && out[1] == "1"
	})
	redisPublish(t, port, "__anycable__", fmt.Sprintf(`{"stream":%q,"data":"\"once\""}`, stream))
	got := victim.next(5 * time.Second)
	if !strings.HasPrefix(got, `{"identifier":`+q+`,"message":"once"`) {
		t.Fatalf("broadcast: %s", got)
	}
	victim.barrier()
	attacker.barrier()

	// The remote command still reaches node A, through node B's API.
	kick(t, b, `{"user":"ann"}`, false)
	for _, c := range []*wsClient{attacker, victim} {
		c.expect(`{"type":"disconnect","reason":"remote","reconnect":false}`)
		c.expectClose(1000, "Closed remotely")
	}
}

// Subscribing creates nothing in JetStream: one connection subscribing to
// 10,000 unique streams leaves JetStream with the broker's one history
// stream (and no more storage), and JetStream holds one history stream
// however many streams are published to.
func TestJetStreamBoundedBySubscriptions(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	startNATSJetStream(t, port, t.TempDir())
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	s := startServer(t, nil, "--public", "--broker", "nats", "--nats_servers", url, "--max_subscriptions_per_connection", "10000")
	waitHealth(t, s, 200)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()

	const n = 10_000
	c := dialWS(t, s, dialOpts{})
	c.welcome()
	began := time.Now()
	prefix := uniqueStream(t, "u")
	for i := range n {
		c.send(subscribeCmd(identifier(fmt.Sprint(prefix, "-", i))))
	}
	for i := range n {
		if f := c.next(30 * time.Second); !strings.HasPrefix(f, `{"type":"confirm_subscription"`) {
			t.Fatalf("subscription %d: %s", i, f)
		}
	}
	t.Logf("%d subscriptions confirmed in %s", n, time.Since(began))
	for i := range 50 {
		publish(t, s, fmt.Sprintf(`{"stream":"%s-%d","data":"x"}`, prefix, i))
	}
	info, err := js.AccountInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for name := range js.StreamNames(ctx).Name() {
		names = append(names, name)
	}
	if info.Streams > 2 || len(names) > 2 {
		t.Errorf("JetStream holds %d streams: %v", info.Streams, names)
	}
	history, err := js.Stream(ctx, "cablehub_history")
	if err != nil {
		t.Fatal(err)
	}
	if st := history.CachedInfo().State; st.Msgs != 50 || st.NumSubjects != 50 {
		t.Errorf("history stream: %d messages on %d subjects, want 50 on 50", st.Msgs, st.NumSubjects)
	}
}
