package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"
)

// redisxDB is the Redis DB of the redisx end-to-end tests; the cluster
// test flushes it.
const redisxDB = 6

// redisxClient is a client on redisxDB, as the anycable gem's redisx
// adapter would use.
func redisxClient(t *testing.T) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DB: redisxDB})
	t.Cleanup(func() { c.Close() })
	return c
}

// gemXAdd adds an entry exactly as the anycable gem's redisx adapter does:
// XADD <stream> * payload <json>.
func gemXAdd(t *testing.T, c *redis.Client, stream string, fields ...string) {
	t.Helper()
	if err := c.XAdd(context.Background(), &redis.XAddArgs{Stream: stream, Values: fields}).Err(); err != nil {
		t.Fatal(err)
	}
}

// waitGroup waits until the redisx consumer group exists: an entry added
// before it is never read, as in AnyCable; every entry added after is.
func waitGroup(t *testing.T, c *redis.Client, stream string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		groups, err := c.XInfoGroups(context.Background(), stream).Result()
		if err == nil && len(groups) == 1 && groups[0].Name == "bx" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no group bx on %s: %v %v", stream, groups, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitStreamEmpty waits until every entry is acknowledged and deleted.
func waitStreamEmpty(t *testing.T, c *redis.Client, stream string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, _ := c.XLen(context.Background(), stream).Result()
		p, err := c.XPending(context.Background(), stream, "bx").Result()
		if n == 0 && err == nil && p.Count == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s: %d entries, pending %+v (%v)", stream, n, p, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBroadcastRedisX: entries XADDed as the anycable gem does reach
// subscribers stamped by the broker (offsets, epoch), batches in order,
// with meta honoured and the disconnect command; malformed entries are
// logged and acknowledged, and forged offsets are overwritten.
func TestBroadcastRedisX(t *testing.T) {
	rc := redisxClient(t)
	stream := uniqueStream(t, "bx")
	t.Cleanup(func() { rc.Del(context.Background(), stream) })
	s := startServer(t, nil, "--secret", "test-secret", "--noauth", "--public_streams",
		"--broadcast_adapter", "redisx", "--redis_url", redisURL(t, redisxDB), "--redisx_stream", stream)
	if !strings.Contains(s.Logs(), "Starting Redis broadcaster at 127.0.0.1:6379 (stream: "+stream+", group: bx, consumer: ") {
		t.Errorf("no startup line for the redisx adapter:\n%s", s.Logs())
	}
	waitGroup(t, rc, stream)

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

	gemXAdd(t, rc, stream, "payload", fmt.Sprintf(`{"stream":%q,"data":"{\"n\":1}"}`, feed))
	both(`{"identifier":` + q + `,"message":{"n":1}` + s.stamp(feed, 1) + `}`)

	gemXAdd(t, rc, stream, "payload", fmt.Sprintf(`[{"stream":%q,"data":"{\"n\":2}"},{"stream":%q,"data":"{\"n\":3}"}]`, feed, feed))
	both(`{"identifier":` + q + `,"message":{"n":2}` + s.stamp(feed, 2) + `}`)
	both(`{"identifier":` + q + `,"message":{"n":3}` + s.stamp(feed, 3) + `}`)

	gemXAdd(t, rc, stream, "payload", fmt.Sprintf(`{"stream":%q,"data":"{\"n\":4}","meta":{"exclude_socket":%q}}`, feed, anonSID))
	user.expect(`{"identifier":` + q + `,"message":{"n":4}` + s.stamp(feed, 4) + `}`)

	gemXAdd(t, rc, stream, "payload", fmt.Sprintf(`{"stream":%q,"data":"{\"n\":5}","meta":{"transient":true,"broadcast_type":"custom"}}`, feed))
	both(`{"type":"custom","identifier":` + q + `,"message":{"n":5}}`)

	// An entry without payload, and one whose payload is malformed, are
	// logged and acknowledged; the next ones arrive (other fields ignored,
	// forged positions overwritten).
	gemXAdd(t, rc, stream, "data", fmt.Sprintf(`{"stream":%q,"data":"lost"}`, feed))
	gemXAdd(t, rc, stream, "payload", fmt.Sprintf(`{"stream":%q,"data":{"n":6}}`, feed))
	gemXAdd(t, rc, stream, "payload", fmt.Sprintf(`{"stream":%q,"data":"{\"n\":7}"}`, feed), "extra", "ignored")
	both(`{"identifier":` + q + `,"message":{"n":7}` + s.stamp(feed, 5) + `}`)
	gemXAdd(t, rc, stream, "payload", fmt.Sprintf(`{"stream":%q,"data":"8","offset":99,"epoch":"fake"}`, feed))
	both(`{"identifier":` + q + `,"message":8` + s.stamp(feed, 6) + `}`)
	waitStreamEmpty(t, rc, stream)
	waitWarned(t, s, "no payload field")
	waitWarned(t, s, "malformed broadcast dropped")

	gemXAdd(t, rc, stream, "payload", `{"command":"disconnect","payload":{"identifier":"{\"user_id\":42}","reconnect":false}}`)
	user.expect(`{"type":"disconnect","reason":"remote","reconnect":false}`)
	user.expectClose(1000, "Closed remotely")
	anon.barrier()
}

// TestBroadcastRedisXCluster: two nodes sharing a Redis broker and pub/sub
// read one stream in one consumer group: every entry reaches the
// subscribers of both nodes exactly once, stamped in one offset sequence,
// and a client that dropped recovers what it missed from history on the
// other node.
func TestBroadcastRedisXCluster(t *testing.T) {
	rc := redisxClient(t)
	stream := uniqueStream(t, "bx")
	a, b := redisCluster(t, redisxDB, "--broadcast_adapter", "redisx", "--redisx_stream", stream)
	waitGroup(t, rc, stream)

	feed := uniqueStream(t, "feed")
	ca, cb, oldSID, id := subscribeOnBoth(t, a, b, feed)
	q := quoted(id)

	const n = 60
	want := map[int]bool{}
	for i := 1; i <= n; i++ {
		want[i] = true
		gemXAdd(t, rc, stream, "payload", fmt.Sprintf(`{"stream":%q,"data":"%d"}`, feed, i))
	}
	epochsA, lastA := receiveAll(t, "node A", ca, want)
	epochsB, lastB := receiveAll(t, "node B", cb, want)
	if len(epochsA) != 1 || len(epochsB) != 1 || epochsA[0] != epochsB[0] || lastA.Offset != n || lastB.Offset != n {
		t.Fatalf("epochs %v / %v, last offsets %d / %d, want one shared epoch and offset %d", epochsA, epochsB, lastA.Offset, lastB.Offset, n)
	}
	waitStreamEmpty(t, rc, stream)
	ca.barrier()
	cb.barrier()
	for _, s := range []*server{a, b} {
		if strings.Contains(s.Logs(), "Redis stream entr") {
			t.Errorf("a node logged a problem with an entry:\n%s", s.Logs())
		}
	}

	// A drops; what is added meanwhile is in history, served on B.
	ca.conn.UnderlyingConn().Close()
	missed := map[int]bool{}
	for i := n + 1; i <= n+5; i++ {
		missed[i] = true
		gemXAdd(t, rc, stream, "payload", fmt.Sprintf(`{"stream":%q,"data":"%d"}`, feed, i))
	}
	receiveAll(t, "node B, live", cb, missed)
	waitSubscriptionCached(t, redisxDB, oldSID)
	restored := restoreWithHistory(t, b, oldSID, id, feed, lastA)
	_, last := receiveAll(t, "restored client", restored, missed)
	if last.Offset != n+5 {
		t.Errorf("history ended at offset %d, want %d", last.Offset, n+5)
	}
	restored.expect(`{"type":"confirm_history","identifier":` + q + `}`)
	gemXAdd(t, rc, stream, "payload", fmt.Sprintf(`{"stream":%q,"data":"live"}`, feed))
	restored.expect(`{"identifier":` + q + `,"message":"live","stream_id":` + quoted(feed) + `,"epoch":` + quoted(lastA.Epoch) + fmt.Sprintf(`,"offset":%d}`, n+6))
}
