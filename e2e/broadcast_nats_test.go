package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go"
)

// waitAdapterUp waits until /health reports the broadcast adapter name as
// ok (the nats adapter: subscribed).
func waitAdapterUp(t *testing.T, s *server, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := do(t, "GET", "http://"+s.Main+"/health", "")
		var h struct {
			Broadcast map[string]struct {
				Status string `json:"status"`
			} `json:"broadcast"`
		}
		if json.Unmarshal([]byte(r.Body), &h) == nil && h.Broadcast[name].Status == "ok" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("broadcast adapter %s not up: %d %s", name, r.Status, r.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// natsPublisher connects to url as an application publishing with nats.go
// (the anycable gem's NATS adapter publishes the same bytes).
func natsPublisher(t *testing.T, url string) func(subject, payload string) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return func(subject, payload string) {
		t.Helper()
		if err := nc.Publish(subject, []byte(payload)); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBroadcastNATS: messages published on --nats_channel reach
// subscribers stamped by the broker (AnyCable's NATS broadcasts bypass it
// and get no offset), batches in order, meta honoured, the disconnect
// command; other subjects are ignored.
func TestBroadcastNATS(t *testing.T) {
	addr := fmt.Sprintf("nats://127.0.0.1:%d", freePort(t))
	s := startServer(t, nil, "--secret", "test-secret", "--noauth", "--public_streams",
		"--broadcast_adapter", "nats", "--embed_nats", "--enats_addr", addr, "--nats_channel", "my_bcast")
	if !strings.Contains(s.Logs(), "Subscribing for broadcasts to NATS subject my_bcast (servers: "+addr+")") {
		t.Errorf("no startup line for the nats adapter:\n%s", s.Logs())
	}
	waitAdapterUp(t, s, "nats")
	pub := natsPublisher(t, addr)

	feed := uniqueStream(t, "feed")
	anon := dialWS(t, s, dialOpts{})
	anonSID := anon.welcome()
	user := dialWS(t, s, dialOpts{query: "?jid=" + jwtToken(t, "test-secret", jwt.MapClaims{"ext": `{"user_id":42}`})})
	user.welcome()
	id := anon.subscribe(feed)
	user.subscribe(feed)
	q := quoted(id)
	both := func(frame string) {
		t.Helper()
		anon.expect(frame)
		user.expect(frame)
	}

	pub("my_bcast", fmt.Sprintf(`{"stream":%q,"data":"{\"n\":1}"}`, feed))
	both(`{"identifier":` + q + `,"message":{"n":1}` + s.stamp(feed, 1) + `}`)
	pub("my_bcast", fmt.Sprintf(`[{"stream":%q,"data":"{\"n\":2}"},{"stream":%q,"data":"{\"n\":3}"}]`, feed, feed))
	both(`{"identifier":` + q + `,"message":{"n":2}` + s.stamp(feed, 2) + `}`)
	both(`{"identifier":` + q + `,"message":{"n":3}` + s.stamp(feed, 3) + `}`)
	pub("my_bcast", fmt.Sprintf(`{"stream":%q,"data":"{\"n\":4}","meta":{"exclude_socket":%q}}`, feed, anonSID))
	user.expect(`{"identifier":` + q + `,"message":{"n":4}` + s.stamp(feed, 4) + `}`)
	pub("my_bcast", fmt.Sprintf(`{"stream":%q,"data":"{\"n\":5}","meta":{"transient":true,"broadcast_type":"custom"}}`, feed))
	both(`{"type":"custom","identifier":` + q + `,"message":{"n":5}}`)

	// Another subject, a malformed payload and forged positions.
	pub("__anycable__", fmt.Sprintf(`{"stream":%q,"data":"{\"n\":99}"}`, feed))
	pub("my_bcast", fmt.Sprintf(`{"stream":%q,"data":{"n":6}}`, feed))
	pub("my_bcast", fmt.Sprintf(`{"stream":%q,"data":"7","offset":99,"epoch":"fake"}`, feed))
	both(`{"identifier":` + q + `,"message":7` + s.stamp(feed, 5) + `}`)
	// The log reaches the test through a pipe, maybe after the next frame.
	waitWarned(t, s, "malformed broadcast dropped")

	pub("my_bcast", `{"command":"disconnect","payload":{"identifier":"{\"user_id\":42}","reconnect":true}}`)
	user.expect(`{"type":"disconnect","reason":"remote","reconnect":true}`)
	user.expectClose(1000, "Closed remotely")
	anon.barrier()
}

// TestBroadcastNATSCluster: with a cluster pub/sub the nodes take the
// subject's messages in a queue group, so each reaches the subscribers of
// both nodes once, stamped in one offset sequence (every node taking every
// message would deliver it twice), and history after a drop has them.
func TestBroadcastNATSCluster(t *testing.T) {
	url, _ := natsService(t, false)
	a, b := redisCluster(t, redisxDB, "--broadcast_adapter", "nats", "--nats_servers", url)
	for _, s := range []*server{a, b} {
		if !strings.Contains(s.Logs(), "in queue group cablehub-broadcast") {
			t.Errorf("the nats adapter does not say it is in the queue group:\n%s", s.Logs())
		}
		waitAdapterUp(t, s, "nats")
	}
	pub := natsPublisher(t, url)
	feed := uniqueStream(t, "feed")
	ca, cb, oldSID, id := subscribeOnBoth(t, a, b, feed)
	q := quoted(id)

	const n = 60
	want := map[int]bool{}
	for i := 1; i <= n; i++ {
		want[i] = true
		pub("__anycable__", fmt.Sprintf(`{"stream":%q,"data":"%d"}`, feed, i))
	}
	_, lastA := receiveAll(t, "node A", ca, want)
	_, lastB := receiveAll(t, "node B", cb, want)
	if lastA.Offset != n || lastB.Offset != n {
		t.Fatalf("last offsets %d / %d, want %d", lastA.Offset, lastB.Offset, n)
	}
	ca.barrier()
	cb.barrier()

	ca.conn.UnderlyingConn().Close()
	pub("__anycable__", fmt.Sprintf(`{"stream":%q,"data":"%d"}`, feed, n+1))
	cb.expect(`{"identifier":` + q + `,"message":61,"stream_id":` + quoted(feed) + `,"epoch":` + quoted(lastA.Epoch) + `,"offset":61}`)
	waitSubscriptionCached(t, redisxDB, oldSID)
	restored := restoreWithHistory(t, b, oldSID, id, feed, lastA)
	restored.expect(`{"identifier":` + q + `,"message":61,"stream_id":` + quoted(feed) + `,"epoch":` + quoted(lastA.Epoch) + `,"offset":61}`)
	restored.expect(`{"type":"confirm_history","identifier":` + q + `}`)
}

// subscribeOnBoth connects a client to each node and subscribes both to
// feed; it returns them, the first client's sid (to restore it later) and
// the subscription's identifier.
func subscribeOnBoth(t *testing.T, a, b *server, feed string) (ca, cb *wsClient, sidA, id string) {
	t.Helper()
	ca = dialWS(t, a, dialOpts{})
	sidA = ca.welcome()
	cb = dialWS(t, b, dialOpts{})
	cb.welcome()
	id = ca.subscribe(feed)
	cb.subscribe(feed)
	return ca, cb, sidA, id
}

// waitSubscriptionCached waits until the restore state kept in Redis (db)
// for session sid lists a subscription. A node writes it within 200 ms of
// a change, so a restore on another node sooner finds the state from
// before the subscription, and its history request names an identifier
// the restored session does not have.
func waitSubscriptionCached(t *testing.T, db int, sid string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, key := range strings.Fields(redisCLI(t, 6379, "-n", fmt.Sprint(db), "--scan", "--pattern", "*"+sid+"*")) {
			if strings.Contains(redisCLI(t, 6379, "-n", fmt.Sprint(db), "GET", key), `"subs":["`) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s: no cached state with a subscription in Redis db %d", sid, db)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// restoreWithHistory restores session sid on s and asks the history of
// feed for subscription id after the position last; it returns the
// restored client, its history on its way.
func restoreWithHistory(t *testing.T, s *server, sid, id, feed string, last broadcast) *wsClient {
	t.Helper()
	restored := dialWS(t, s, dialOpts{query: "?sid=" + sid})
	if w := restored.next(5 * time.Second); !strings.Contains(w, `"restored":true`) {
		t.Fatalf("restore on %s: %s", s.Main, w)
	}
	restored.send(historyCmd(id, fmt.Sprintf(`{"streams":{%q:{"epoch":%q,"offset":%d}}}`, feed, last.Epoch, last.Offset)))
	return restored
}
