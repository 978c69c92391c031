package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cablehub/cablehub/server/config"
	"github.com/cablehub/cablehub/server/rpc"
)

// rpcClusterDB is the Redis DB the RPC cluster tests share; they keep apart
// by unique streams and users, and flush nothing.
const rpcClusterDB = 8

// rpcClusterSecret is the nodes' --secret: the HTTP RPC key and the REST
// API token derive from it.
const rpcClusterSecret = "rpc-cluster-secret"

// rpcBackend is an RPC application both nodes of a cluster call.
type rpcBackend struct {
	app  *appPeer
	host string                   // for --rpc_host
	room func(room string) string // the stream its ChatChannel uses for a room
	// connects counts the Connect calls the app has seen so far.
	connects func() int
	// disconnected matches the app's line for a Disconnect call of sid.
	disconnected func(sid string) func(string) bool
}

// startRPCBackend starts the named back end: "http" (serverless-js over
// HTTP RPC) or "grpc" (the Ruby app).
func startRPCBackend(t *testing.T, kind string) *rpcBackend {
	t.Helper()
	switch kind {
	case "http":
		if _, err := exec.LookPath("node"); err != nil {
			t.Skip("node is not installed")
		}
		npmCI(t)
		app, base := startServerlessPeer(t, rpc.DeriveSecret(rpcClusterSecret))
		return &rpcBackend{app: app, host: base, room: func(r string) string { return "room:" + r },
			connects: func() int { return strings.Count(app.stderrText(), "POST /_anycable/connect ") },
			disconnected: func(sid string) func(string) bool {
				return func(l string) bool { return l == "disconnected "+sid }
			}}
	default:
		app := startRubyRPCApp(t)
		return &rpcBackend{app: app.appPeer, host: app.host, room: func(r string) string { return "chat:" + r },
			connects: func() int { return countPrefix(app.snapshot(), "CALL connect ") },
			disconnected: func(sid string) func(string) bool {
				return func(l string) bool { return strings.HasPrefix(l, `DISCONNECT {"sid":"`+sid+`",`) }
			}}
	}
}

func countPrefix(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// rpcCluster starts two nodes sharing Redis (broker and pub/sub) that call
// the same back end, which broadcasts and disconnects through node b's
// REST API. It returns a, b and the API token.
func rpcCluster(t *testing.T, be *rpcBackend) (*server, *server, string) {
	t.Helper()
	args := []string{"--secret", rpcClusterSecret, "--rpc_host", be.host,
		"--broker", "redis", "--pubsub", "redis", "--redis_url", redisURL(t, rpcClusterDB)}
	a := startServer(t, nil, args...)
	b := startServer(t, nil, args...)
	token := config.DeriveSecret(rpcClusterSecret, "api-cable")
	be.app.configure(t, "http://"+b.Main+"/api", token)
	return a, b, token
}

// chatIdentifier is the identifier of room's ChatChannel subscription.
func chatIdentifier(room string) string {
	b, _ := json.Marshal(map[string]string{"channel": "ChatChannel", "room": room})
	return string(b)
}

// dialUser connects to s (with query, such as ?sid=) on the extended
// protocol, identified to the app by the `user` cookie.
func dialUser(t *testing.T, s *server, user, query string) *wsClient {
	t.Helper()
	return dialWS(t, s, dialOpts{query: query, header: http.Header{"Cookie": {"theme=dark; user=" + user}}})
}

// joinRoom subscribes c to room's ChatChannel and checks the app's
// confirmation.
func (c *wsClient) joinRoom(room string) string {
	c.t.Helper()
	id := chatIdentifier(room)
	c.send(subscribeCmd(id))
	c.expect(`{"identifier":` + quoted(id) + `,"type":"confirm_subscription"}`)
	return id
}

// perform sends a channel action as Action Cable clients do: data is the
// JSON-encoded action object.
func (c *wsClient) perform(id, data string) {
	c.t.Helper()
	b, _ := json.Marshal(map[string]string{"command": "message", "identifier": id, "data": data})
	c.send(string(b))
}

// epochOf reads the epoch a broadcast frame carries.
func epochOf(t *testing.T, frame string) string {
	t.Helper()
	var f struct {
		Epoch string `json:"epoch"`
	}
	if err := json.Unmarshal([]byte(frame), &f); err != nil || f.Epoch == "" {
		t.Fatalf("no epoch in %s (%v)", frame, err)
	}
	return f.Epoch
}

// TestRPCCluster: two nodes on Redis calling one RPC application (each
// transport). A client on node A subscribed through RPC gets a publication
// made through node B's REST API and the app's own broadcast (which goes
// through B), as does a client on B; dropped, it restores its session on
// node B without a new Connect and gets the missed messages of the RPC
// stream from history; a remote disconnect by the identifiers the app
// returned, issued on node B, closes that user's sessions on both nodes
// and not another user's.
func TestRPCCluster(t *testing.T) {
	for _, kind := range []string{"http", "grpc"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			be := startRPCBackend(t, kind)
			a, b, token := rpcCluster(t, be)
			auth := "Authorization: Bearer " + token
			room := uniqueStream(t, "room")
			user := strings.ReplaceAll(uniqueStream(t, "user"), "/", "-")
			stream := be.room(room)

			ca := dialUser(t, a, user, "")
			sid := ca.welcome()
			id := ca.joinRoom(room)
			q := quoted(id)
			cb := dialUser(t, b, "bystander-"+user, "")
			cb.welcome()
			cb.joinRoom(room)

			// Through B's REST API, then the app's broadcast (which it makes
			// through B): both nodes' clients get each, in order.
			publish(t, b, fmt.Sprintf(`{"stream":%q,"data":"{\"via\":\"b\"}"}`, stream), auth)
			first := ca.next(5 * time.Second)
			epoch := epochOf(t, first)
			stamp := func(n int) string { return fmt.Sprintf(`,"stream_id":%q,"epoch":%q,"offset":%d`, stream, epoch, n) }
			if want := `{"identifier":` + q + `,"message":{"via":"b"}` + stamp(1) + `}`; first != want {
				t.Fatalf("node A's client got\n %s\nwant\n %s", first, want)
			}
			ca.perform(id, `{"action":"broadcast","text":"via the app"}`)
			ca.expect(`{"identifier":` + q + `,"message":{"from":"` + user + `","text":"via the app"}` + stamp(2) + `}`)
			cb.expect(`{"identifier":` + q + `,"message":{"via":"b"}` + stamp(1) + `}`)
			cb.expect(`{"identifier":` + q + `,"message":{"from":"` + user + `","text":"via the app"}` + stamp(2) + `}`)

			// Dropped on A, restored on B from the session cache in Redis.
			// Node A writes the session's final state when it notices the
			// drop, before it calls the app's Disconnect; a client back
			// sooner gets what was cached before (up to 200 ms after its
			// last change, with restored_ids saying so), so the test waits
			// for that call.
			connects := be.connects()
			ca.conn.UnderlyingConn().Close()
			be.app.waitLine(t, 10*time.Second, be.disconnected(sid))
			publish(t, b, fmt.Sprintf(`{"stream":%q,"data":"3"}`, stream), auth)
			publish(t, a, fmt.Sprintf(`{"stream":%q,"data":"4"}`, stream), auth)
			restored := dialUser(t, b, user, "?sid="+sid)
			if w := restored.next(5 * time.Second); !strings.HasPrefix(w, `{"type":"welcome","sid":"`) ||
				!strings.HasSuffix(w, `","restored":true,"restored_ids":[`+q+`]}`) {
				t.Fatalf("restore on node B: %s", w)
			}
			restored.send(historyCmd(id, fmt.Sprintf(`{"streams":{%q:{"epoch":%q,"offset":2}}}`, stream, epoch)))
			restored.expect(`{"identifier":` + q + `,"message":3` + stamp(3) + `}`)
			restored.expect(`{"identifier":` + q + `,"message":4` + stamp(4) + `}`)
			restored.expect(`{"type":"confirm_history","identifier":` + q + `}`)
			// The channel is the app's again, without a new subscribe: an
			// action reaches it (and its broadcast, through B, comes back).
			restored.perform(id, `{"action":"broadcast","text":"restored"}`)
			restored.expect(`{"identifier":` + q + `,"message":{"from":"` + user + `","text":"restored"}` + stamp(5) + `}`)
			if n := be.connects(); n != connects {
				t.Errorf("the app saw %d Connect calls during the restore, want none", n-connects)
			}

			// The same user on A again; the remote disconnect goes through B.
			again := dialUser(t, a, user, "")
			again.welcome()
			r := do(t, "POST", "http://"+b.Main+"/api/disconnect",
				fmt.Sprintf(`{"identifier":%q,"reconnect":false}`, `{"user":"`+user+`"}`), auth)
			if r.Status != 201 {
				t.Fatalf("disconnect through B: %d %s", r.Status, r.Body)
			}
			for _, c := range []*wsClient{again, restored} {
				c.expect(`{"type":"disconnect","reason":"remote","reconnect":false}`)
				c.expectClose(1000, "Closed remotely")
			}
			cb.expect(`{"identifier":` + q + `,"message":3` + stamp(3) + `}`)
			cb.expect(`{"identifier":` + q + `,"message":4` + stamp(4) + `}`)
			cb.expect(`{"identifier":` + q + `,"message":{"from":"` + user + `","text":"restored"}` + stamp(5) + `}`)
			cb.barrier()
		})
	}
}
