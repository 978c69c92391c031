package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The bearer token of the REST API of a node started with --secret
// test-secret.
const testSecretAuth = "Authorization: Bearer 598bc7d3c9d5515311f23dc9ed694257b88e3f5fd8c746c60680fdc9c5caa580"

// waitClients waits until s (started with --metrics_http /metrics) counts
// n connected clients: a session that ended is unregistered after its
// restore state is written, so a dropped client is then restorable.
func waitClients(t *testing.T, s *server, n int) {
	t.Helper()
	re := regexp.MustCompile(fmt.Sprintf(`(?m)^anycable_go_clients_num %d$`, n))
	deadline := time.Now().Add(10 * time.Second)
	for !re.MatchString(do(t, "GET", "http://"+s.Main+"/metrics", "").Body) {
		if time.Now().After(deadline) {
			t.Fatalf("%s does not count %d clients", s.Main, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// drop closes c's socket without a close frame and waits until s has
// noticed: n clients are left.
func drop(t *testing.T, s *server, c *wsClient, n int) {
	t.Helper()
	c.conn.UnderlyingConn().Close()
	waitClients(t, s, n)
}

// kick disconnects identifiers through s's REST API.
func kick(t *testing.T, s *server, identifiers string, reconnect bool) {
	t.Helper()
	body := fmt.Sprintf(`{"identifier":%s,"reconnect":%v}`, quoted(identifiers), reconnect)
	if r := do(t, "POST", "http://"+s.Main+"/api/disconnect", body, testSecretAuth); r.Status != 201 {
		t.Fatalf("disconnect: %d %s", r.Status, r.Body)
	}
}

// expectRefused checks that a connection is refused as unauthorized.
func expectRefused(c *wsClient) {
	c.t.Helper()
	c.expect(`{"type":"disconnect","reason":"unauthorized","reconnect":false}`)
	c.expectClose(1000, "Auth Failed")
}

// expectRestoredIDs reads a welcome, checks that it restores exactly ids,
// and returns the restored session's sid.
func expectRestoredIDs(c *wsClient, ids ...string) string {
	c.t.Helper()
	f := c.next(5 * time.Second)
	var w struct {
		Type        string   `json:"type"`
		SID         string   `json:"sid"`
		Restored    bool     `json:"restored"`
		RestoredIDs []string `json:"restored_ids"`
	}
	if err := json.Unmarshal([]byte(f), &w); err != nil || w.Type != "welcome" || !w.Restored || fmt.Sprint(w.RestoredIDs) != fmt.Sprint(ids) {
		c.t.Fatalf("welcome %s, want one restoring %v", f, ids)
	}
	return w.SID
}

// rpcConnectApp is an HTTP RPC back end whose Connect identifies the
// connections with the cookie user=<name> as {"user":"<name>"} (welcoming
// them with their sid) and refuses the others; channels are left to the
// server's public streams.
func rpcConnectApp(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req struct {
			Env struct {
				Headers map[string]string `json:"headers"`
			} `json:"env"`
		}
		json.Unmarshal(body, &req)
		w.Header().Set("Content-Type", "application/json")
		if !strings.HasSuffix(r.URL.Path, "/connect") {
			w.Write([]byte(`{"status":1}`))
			return
		}
		user, ok := strings.CutPrefix(req.Env.Headers["cookie"], "user=")
		if !ok {
			w.Write([]byte(`{"status":2,"transmissions":["{\"type\":\"disconnect\",\"reason\":\"unauthorized\",\"reconnect\":false}"]}`))
			return
		}
		welcome := `{"type":"welcome","sid":` + quoted(r.Header.Get("X-Anycable-Meta-Sid")) + `}`
		resp, _ := json.Marshal(map[string]any{"status": 1, "identifiers": `{"user":"` + user + `"}`, "transmissions": []string{welcome}})
		w.Write(resp)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/rpc"
}

// Item 5: a client disconnected through the API (reconnect false) cannot
// come back by restoring its session without credentials: neither the
// live session the disconnect closed nor one of the user's that had
// dropped just before. Its restore identifies as new, with a JWT or with
// the application's Connect, which refuse it. A session identified after
// the disconnect is restored as usual.
func TestRemoteDisconnectEndsRestore(t *testing.T) {
	t.Parallel()
	token := jwtToken(t, "test-secret", jwt.MapClaims{"ext": `{"user":"ann"}`})
	setups := map[string]struct {
		args  []string
		creds dialOpts
	}{
		"jwt": {[]string{"--enforce_jwt", "--norpc"}, dialOpts{query: "?jid=" + token}},
		"rpc": {[]string{"--rpc_host", rpcConnectApp(t)}, dialOpts{header: http.Header{"Cookie": {"user=ann"}}}},
	}
	for name, setup := range setups {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, nil, append([]string{"--secret", "test-secret", "--public_streams", "--metrics_http", "/metrics"}, setup.args...)...)
			live := dialWS(t, s, setup.creds)
			liveSID := live.welcome()
			live.subscribe("revoke/1")
			gone := dialWS(t, s, setup.creds)
			goneSID := gone.welcome()
			gone.subscribe("revoke/1")
			drop(t, s, gone, 1)

			kick(t, s, `{"user":"ann"}`, false)
			live.expect(`{"type":"disconnect","reason":"remote","reconnect":false}`)
			live.expectClose(1000, "Closed remotely")
			waitClients(t, s, 0)
			for _, sid := range []string{liveSID, goneSID} {
				expectRefused(dialWS(t, s, dialOpts{query: "?sid=" + sid}))
			}

			after := dialWS(t, s, setup.creds)
			afterSID := after.welcome()
			id := after.subscribe("revoke/1")
			drop(t, s, after, 0)
			expectRestoredIDs(dialWS(t, s, dialOpts{query: "?sid=" + afterSID}), id)
		})
	}
}

// Item 5: a restored session keeps its JWT's exp: restored before it (also
// from a session that was itself restored), not after it. The client then
// identifies as new: without a token it is refused, with the expired token
// it gets token_expired.
func TestRestoreEndsAtJWTExpiry(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--secret", "test-secret", "--public_streams", "--norpc", "--metrics_http", "/metrics")
	exp := time.Now().Add(4 * time.Second).Truncate(time.Second)
	token := jwtToken(t, "test-secret", jwt.MapClaims{"ext": `{"user":"bob"}`, "exp": exp.Unix()})

	a := dialWS(t, s, dialOpts{query: "?jid=" + token})
	aSID := a.welcome()
	id := a.subscribe("expiry/1")
	drop(t, s, a, 0)
	b := dialWS(t, s, dialOpts{query: "?sid=" + aSID})
	bSID := expectRestoredIDs(b, id)
	drop(t, s, b, 0)
	a2 := dialWS(t, s, dialOpts{query: "?jid=" + token})
	a2SID := a2.welcome()
	a2.subscribe("expiry/1")
	drop(t, s, a2, 0)

	time.Sleep(time.Until(exp.Add(time.Second)))
	expectRefused(dialWS(t, s, dialOpts{query: "?sid=" + bSID}))
	expired := dialWS(t, s, dialOpts{query: "?sid=" + a2SID + "&jid=" + token})
	expired.expect(`{"type":"disconnect","reason":"token_expired","reconnect":false}`)
	expired.expectClose(1000, "Auth Failed")
}

// Item 5, in a cluster on the Redis broker: a disconnect made through node
// A's API ends restores on node B too, of the session it closed on A and
// of one that had dropped from A just before; another user's session
// dropped from A is restored on B.
func TestClusterRemoteDisconnectEndsRestore(t *testing.T) {
	a, b := redisCluster(t, 5, "--secret", "test-secret", "--enforce_jwt", "--metrics_http", "/metrics")
	ann := dialOpts{query: "?jid=" + jwtToken(t, "test-secret", jwt.MapClaims{"ext": `{"user":"ann"}`})}
	cat := dialOpts{query: "?jid=" + jwtToken(t, "test-secret", jwt.MapClaims{"ext": `{"user":"cat"}`})}
	stream := uniqueStream(t, "revoke")

	live := dialWS(t, a, ann)
	liveSID := live.welcome()
	live.subscribe(stream)
	onB := dialWS(t, b, ann)
	onB.welcome()
	gone := dialWS(t, a, ann)
	goneSID := gone.welcome()
	gone.subscribe(stream)
	drop(t, a, gone, 1)
	other := dialWS(t, a, cat)
	otherSID := other.welcome()
	id := other.subscribe(stream)
	drop(t, a, other, 1)

	kick(t, a, `{"user":"ann"}`, false)
	for _, c := range []*wsClient{live, onB} {
		// onB's disconnect shows that node B has the command.
		c.expect(`{"type":"disconnect","reason":"remote","reconnect":false}`)
		c.expectClose(1000, "Closed remotely")
	}
	waitClients(t, a, 0)
	for _, sid := range []string{liveSID, goneSID} {
		expectRefused(dialWS(t, b, dialOpts{query: "?sid=" + sid}))
	}
	expectRestoredIDs(dialWS(t, b, dialOpts{query: "?sid=" + otherSID}), id)
}

// Item 13: X-Request-ID never becomes a session id, so no client chooses a
// sid: the same request id on two nodes gives two distinct random sids,
// and naming a live or a cached session's sid in it gives another sid,
// which cannot overwrite that session's restore state.
func TestClusterRequestIDIsNotTheSID(t *testing.T) {
	a, b := redisCluster(t, 2, "--metrics_http", "/metrics")
	sidRe := regexp.MustCompile(`^[A-Za-z0-9_-]{21}$`)
	dial := func(s *server, requestID string) (*wsClient, string) {
		t.Helper()
		c := dialWS(t, s, dialOpts{header: http.Header{"X-Request-Id": {requestID}}})
		sid := c.welcome()
		if !sidRe.MatchString(sid) || sid == requestID {
			t.Fatalf("X-Request-ID %q gave sid %q, want a random one", requestID, sid)
		}
		return c, sid
	}
	onA, sidA := dial(a, "same1")
	_, sidB := dial(b, "same1")
	if sidA == sidB {
		t.Fatalf("one X-Request-ID gave the same sid %q on two nodes", sidA)
	}
	dial(b, sidA)
	id := onA.subscribe(uniqueStream(t, "mine"))
	drop(t, a, onA, 0)
	c, _ := dial(b, sidA)
	c.subscribe(uniqueStream(t, "theirs"))
	drop(t, b, c, 2)
	expectRestoredIDs(dialWS(t, b, dialOpts{query: "?sid=" + sidA}), id)
}
