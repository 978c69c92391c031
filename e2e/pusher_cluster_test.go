package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cablehub/cablehub/server/pusher"
)

// pusherClusterDB is the Redis DB of the Pusher cluster tests. Every DB of
// the default 16 is taken (0-14 by e2e tests, 15 by unit tests), so they
// share the RPC cluster tests' DB, which no test flushes, and keep apart
// as those do: by channel names and user ids unique to each run.
const pusherClusterDB = rpcClusterDB

// pusherCluster starts two nodes in Pusher mode sharing a Redis broker
// and pub/sub.
func pusherCluster(t *testing.T, extra ...string) (a, b *server) {
	t.Helper()
	args := append([]string{"--broker", "redis", "--pubsub", "redis", "--redis_url", redisURL(t, pusherClusterDB)}, pusherArgs...)
	args = append(args, extra...)
	return startPusherWith(t, args...), startPusherWith(t, args...)
}

// unique is name with a suffix unique to this run, valid in Pusher
// channel names and user ids.
func unique(name string) string {
	return fmt.Sprintf("%s-%d", name, time.Now().UnixNano())
}

// Members on two nodes see each other come and go, and each other's
// client events; one user on both nodes is one member.
func TestPusherClusterPresence(t *testing.T) {
	a, b := pusherCluster(t)
	ch := unique("presence-cluster")
	ca, cb := connectPusher(t, a, nil), connectPusher(t, b, nil)

	ca.joinPresence(ch, `{"user_id":"alice","user_info":{"node":"a"}}`, roster(ch, "alice", `{"node":"a"}`))
	cb.joinPresence(ch, `{"user_id":"bob","user_info":{"node":"b"}}`, roster(ch, "alice", `{"node":"a"}`, "bob", `{"node":"b"}`))
	ca.expect(memberAdded(ch, "bob", `{"node":"b"}`))
	cb.barrier()

	ca.send(`{"event":"client-hi","channel":` + quoted(ch) + `,"data":{"from":"a"}}`)
	cb.expect(`{"event":"client-hi","data":{"from":"a"},"channel":` + quoted(ch) + `,"user_id":"alice"}`)
	cb.send(`{"event":"client-hi","channel":` + quoted(ch) + `,"data":{"from":"b"}}`)
	ca.expect(`{"event":"client-hi","data":{"from":"b"},"channel":` + quoted(ch) + `,"user_id":"bob"}`)
	ca.barrier()
	cb.barrier()

	// bob on node A as well: one member, no member_added anywhere.
	cb2 := connectPusher(t, a, nil)
	cb2.joinPresence(ch, `{"user_id":"bob","user_info":{"node":"b"}}`, roster(ch, "alice", `{"node":"a"}`, "bob", `{"node":"b"}`))
	ca.barrier()
	cb.barrier()
	// bob leaves node B: still on A, no member_removed.
	cb.send(`{"event":"pusher:unsubscribe","data":{"channel":` + quoted(ch) + `}}`)
	cb.barrier()
	ca.barrier()
	// and A: gone, at once.
	cb2.send(`{"event":"pusher:unsubscribe","data":{"channel":` + quoted(ch) + `}}`)
	ca.expect(memberRemoved(ch, "bob"))

	// bob back on node B; alice's connection on A drops: B hears at once.
	cb.joinPresence(ch, `{"user_id":"bob","user_info":{"node":"b"}}`, roster(ch, "alice", `{"node":"a"}`, "bob", `{"node":"b"}`))
	ca.expect(memberAdded(ch, "bob", `{"node":"b"}`))
	start := time.Now()
	ca.conn.UnderlyingConn().Close()
	if got := cb.next(3 * time.Second); got != memberRemoved(ch, "alice") {
		t.Fatalf("after alice's connection dropped: %s", got)
	}
	t.Logf("member_removed on node B %s after a TCP close on node A", time.Since(start))
	cb.barrier()
}

// /api/publish on one node reaches Pusher clients on the other, on
// channels and on a signed-in user's own stream.
func TestPusherClusterBroadcast(t *testing.T) {
	a, b := pusherCluster(t)
	ch, user := unique("news"), unique("user")
	cb := connectPusher(t, b, nil)
	cb.subscribePublic(ch)
	auth := "Authorization: Bearer " + s3cr3tToken
	publish(t, a, fmt.Sprintf(`{"stream":%q,"data":"{\"event\":\"x\",\"data\":{\"a\":1}}"}`, ch), auth)
	cb.expect(`{"event":"x","data":{"a":1},"channel":` + quoted(ch) + `}`)

	cb.signin(user)
	cb.barrier()
	publish(t, a, fmt.Sprintf(`{"stream":%q,"data":"{\"event\":\"notice\",\"data\":{\"n\":1}}"}`, "#server-to-user-"+user), auth)
	cb.expect(`{"event":"notice","data":{"n":1},"channel":` + quoted("#server-to-user-"+user) + `}`)
}

// A node killed with its members: the others see them removed once the
// presence TTL has passed.
func TestPusherClusterNodeKilled(t *testing.T) {
	a, b := pusherCluster(t, "--presence_ttl", "2")
	ch := unique("presence-kill")
	ca, cb := connectPusher(t, a, nil), connectPusher(t, b, nil)
	ca.joinPresence(ch, `{"user_id":"stays","user_info":{}}`, roster(ch, "stays", `{}`))
	cb.joinPresence(ch, `{"user_id":"killed","user_info":{}}`, roster(ch, "killed", `{}`, "stays", `{}`))
	ca.expect(memberAdded(ch, "killed", `{}`))

	if err := b.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if got := ca.next(10 * time.Second); got != memberRemoved(ch, "killed") {
		t.Fatalf("after node B was killed: %s", got)
	}
	t.Logf("member_removed %s after node B was killed (presence TTL 2s)", time.Since(start))
	ca.barrier()
}

// pusherGet makes a signed GET of the Pusher HTTP API on s and returns
// the status and body.
func pusherGet(t *testing.T, s *server, path string, params url.Values) (int, string) {
	t.Helper()
	q := url.Values{"auth_key": {pusherKey}, "auth_timestamp": {strconv.FormatInt(time.Now().Unix(), 10)}, "auth_version": {"1.0"}}
	for k, v := range params {
		q[k] = v
	}
	m := hmac.New(sha256.New, []byte(pusherSecret))
	m.Write([]byte(pusher.StringToSign("GET", path, q)))
	q.Set("auth_signature", hex.EncodeToString(m.Sum(nil)))
	resp, err := httpClient.Get("http://" + s.Main + path + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// The channel queries answer for the cluster: a channel whose only
// subscriber is on node B is occupied for node A, its subscriptions are
// counted on every node, and it is no longer occupied once the last
// leaves.
func TestPusherClusterChannelQueries(t *testing.T) {
	a, b := pusherCluster(t)
	ch := unique("cq")
	cb := connectPusher(t, b, nil)
	cb.send(`{"event":"pusher:subscribe","data":{"channel":` + quoted(ch) + `}}`)
	cb.expect(`{"event":"pusher_internal:subscription_succeeded","data":"{}","channel":` + quoted(ch) + `}`)
	want := `{"channels":{` + quoted(ch) + `:{}}}`
	waitUntil(t, "the channel listed on node A", func() bool {
		code, body := pusherGet(t, a, "/apps/app-1/channels", url.Values{"filter_by_prefix": {ch}})
		return code == 200 && strings.TrimSpace(body) == want
	})
	if code, body := pusherGet(t, a, "/apps/app-1/channels/"+ch, nil); code != 200 || strings.TrimSpace(body) != `{"occupied":true}` {
		t.Errorf("channel on node A: %d %s", code, body)
	}
	// Subscriptions are counted on every node: one on A, two on B.
	ca := connectPusher(t, a, nil)
	ca.subscribePublic(ch)
	cb2 := connectPusher(t, b, nil)
	cb2.subscribePublic(ch)
	count := func(want string) func() bool {
		return func() bool {
			code, body := pusherGet(t, a, "/apps/app-1/channels/"+ch, url.Values{"info": {"subscription_count"}})
			return code == 200 && strings.TrimSpace(body) == want
		}
	}
	waitUntil(t, "three subscriptions counted on node A", count(`{"occupied":true,"subscription_count":3}`))
	ca.send(`{"event":"pusher:unsubscribe","data":{"channel":` + quoted(ch) + `}}`)
	cb2.send(`{"event":"pusher:unsubscribe","data":{"channel":` + quoted(ch) + `}}`)
	waitUntil(t, "one subscription left", count(`{"occupied":true,"subscription_count":1}`))
	cb.send(`{"event":"pusher:unsubscribe","data":{"channel":` + quoted(ch) + `}}`)
	waitUntil(t, "the channel gone on node A", func() bool {
		code, body := pusherGet(t, a, "/apps/app-1/channels/"+ch, nil)
		return code == 200 && strings.TrimSpace(body) == `{"occupied":false}`
	})
}

// On the NATS JetStream broker (which keeps no presence) Pusher channels
// fan out across nodes and client events cross them; a presence channel
// is refused with a subscription error, not left pending.
func TestPusherClusterJetStream(t *testing.T) {
	addr := fmt.Sprintf("nats://127.0.0.1:%d", freePort(t))
	args := append([]string{"--broker", "nats"}, pusherArgs...)
	a := startPusherWith(t, append(args, "--embed_nats", "--enats_addr", addr)...)
	b := startPusherWith(t, append(args, "--nats_servers", addr)...)
	ch := unique("private-js")
	ca, cb := connectPusher(t, a, nil), connectPusher(t, b, nil)
	ca.subscribePrivate(ch)
	cb.subscribePrivate(ch)
	publish(t, a, fmt.Sprintf(`{"stream":%q,"data":"{\"event\":\"x\",\"data\":{\"a\":1}}"}`, ch), "Authorization: Bearer "+s3cr3tToken)
	cb.expect(`{"event":"x","data":{"a":1},"channel":` + quoted(ch) + `}`)
	ca.expect(`{"event":"x","data":{"a":1},"channel":` + quoted(ch) + `}`)
	cb.send(`{"event":"client-hi","channel":` + quoted(ch) + `,"data":{"from":"b"}}`)
	ca.expect(`{"event":"client-hi","data":{"from":"b"},"channel":` + quoted(ch) + `}`)

	room := unique("presence-js")
	cd := `{"user_id":"u1"}`
	ca.send(subscribeFrame(room, pusherAuth(ca.socketID+":"+room+":"+cd), cd))
	ca.expectPrefix(`{"event":"pusher:subscription_error","channel":` + quoted(room) + `,"data":{"type":"PresenceError"`)
	ca.barrier()
}
