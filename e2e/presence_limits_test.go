package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cablehub/cablehub/client"
	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
)

// presenceInfoReply is the message of a presence reply.
type presenceInfoReply struct {
	Type      string `json:"type"`
	Total     int    `json:"total"`
	Truncated bool   `json:"truncated"`
	Records   []struct {
		ID   string          `json:"id"`
		Info json.RawMessage `json:"info"`
	} `json:"records"`
}

// checkTruncated fails unless reply lists the first of n ids joined as
// presenceID(i) with info, not all of them, with the real total, and says
// it is truncated.
func checkTruncated(t *testing.T, what string, reply presenceInfoReply, n int, info string) {
	t.Helper()
	if reply.Type != "info" || reply.Total != n || !reply.Truncated || len(reply.Records) == 0 || len(reply.Records) >= n {
		t.Fatalf("%s: type %q, total %d, truncated %v, %d records", what, reply.Type, reply.Total, reply.Truncated, len(reply.Records))
	}
	for i, r := range reply.Records {
		if r.ID != presenceID(i) || string(r.Info) != info {
			t.Fatalf("%s: record %d is %s", what, i, r.ID)
		}
	}
}

func presenceID(i int) string { return fmt.Sprintf("user-%03d", i) }

// Item 8: a stream whose presence records add up to more than a client can
// take (here 12 ids with 120 KB of info each, 1.4 MB) still answers. The
// WebSocket presence reply arrives, within half of the client's queue
// (--ws_max_pending_size, 1 MiB by default) so the client is not cut as
// too slow, and REST and gRPC answer within 1 MiB: each lists the first
// records that fit, the real total, and "truncated":true.
func TestPresenceReplyOfLargeStreamIsBounded(t *testing.T) {
	t.Parallel()
	const n = 12
	s := startServer(t, nil, "--public", "--max_message_size", "262144", "--max_presence_info_size", "131072")
	info := `"` + strings.Repeat("i", 120_000) + `"`
	watcher := dialWS(t, s, dialOpts{})
	watcher.welcome()
	id := watcher.subscribe("crowd")
	for i := range n {
		c := dialWS(t, s, dialOpts{})
		c.welcome()
		c.subscribe("crowd")
		c.send(joinCmd(id, fmt.Sprintf(`{"id":%q,"info":%s}`, presenceID(i), info)))
		if f := watcher.next(10 * time.Second); !strings.Contains(f, `"type":"join"`) {
			t.Fatalf("join %d: %.200s", i, f)
		}
	}

	watcher.send(`{"command":"presence","identifier":` + quoted(id) + `}`)
	f := watcher.next(10 * time.Second)
	var frame struct {
		Type       string            `json:"type"`
		Identifier string            `json:"identifier"`
		Message    presenceInfoReply `json:"message"`
	}
	if err := json.Unmarshal([]byte(f), &frame); err != nil || frame.Type != "presence" || frame.Identifier != id {
		t.Fatalf("presence reply: %v %.300s", err, f)
	}
	if len(f) > 512<<10 {
		t.Errorf("presence reply of %d bytes, over half of the client's 1 MiB queue", len(f))
	}
	checkTruncated(t, "WebSocket", frame.Message, n, info)
	watcher.barrier() // still connected

	r := do(t, "GET", presenceURL(s, "crowd"), "")
	var rest presenceInfoReply
	if err := json.Unmarshal([]byte(r.Body), &rest); r.Status != 200 || err != nil {
		t.Fatalf("REST: %d %v %.300s", r.Status, err, r.Body)
	}
	if len(r.Body) > 1<<20 {
		t.Errorf("REST answer of %d bytes", len(r.Body))
	}
	checkTruncated(t, "REST", rest, n, info)
	if len(rest.Records) <= len(frame.Message.Records) {
		t.Errorf("REST lists %d records, no more than the WebSocket reply's %d", len(rest.Records), len(frame.Message.Records))
	}

	ctx, cancel := withToken("")
	defer cancel()
	resp, err := dialGRPC(t, s.GRPC).GetPresence(ctx, &cablehubv1.GetPresenceRequest{Stream: "crowd"})
	if err != nil {
		t.Fatal(err)
	}
	if size := proto.Size(resp); size > 1<<20 {
		t.Errorf("gRPC answer of %d bytes", size)
	}
	if resp.GetTotal() != n || !resp.GetTruncated() || len(resp.Records) != len(rest.Records) {
		t.Errorf("gRPC: total %d, truncated %v, %d records", resp.GetTotal(), resp.GetTruncated(), len(resp.Records))
	}
	p, err := newGoClient(t, s.GRPC, client.Options{}).Presence(ctx, "crowd")
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != n || !p.Truncated || len(p.Records) != len(rest.Records) {
		t.Errorf("Go client: total %d, truncated %v, %d records", p.Total, p.Truncated, len(p.Records))
	}
}

// Item 8: --presence_max_members (here from ANYCABLE_PRESENCE_MAX_MEMBERS)
// caps the presence ids of a stream. A join of one more id gets the
// presence error; its connection keeps working (broadcasts, presence
// reads) and joins once a place is free. More sessions of a present id
// are no new ids.
func TestPresenceMaxMembers(t *testing.T) {
	t.Parallel()
	s := startServer(t, []string{"ANYCABLE_PRESENCE_MAX_MEMBERS=2"}, "--public")
	clients := make([]*wsClient, 4)
	var id string
	for i := range clients {
		clients[i] = dialWS(t, s, dialOpts{})
		clients[i].welcome()
		id = clients[i].subscribe("capped")
	}
	q := quoted(id)
	for i, user := range []string{"u0", "u1"} {
		clients[i].send(joinCmd(id, `{"id":"`+user+`"}`))
		for _, c := range clients {
			c.expect(`{"type":"presence","identifier":` + q + `,"message":{"id":"` + user + `","type":"join"}}`)
		}
	}
	over := clients[2]
	over.send(joinCmd(id, `{"id":"u2","info":"late"}`))
	over.expect(`{"type":"presence","identifier":` + q + `,"message":{"type":"error","reason":"presence_stream_full"}}`)
	clients[3].send(joinCmd(id, `{"id":"u0","info":"tab 2"}`)) // a present id: no new member
	clients[3].barrier()
	publish(t, s, `{"stream":"capped","data":"{\"n\":1}"}`)
	for _, c := range clients {
		c.expect(`{"identifier":` + q + `,"message":{"n":1}` + s.stamp("capped", 1) + `}`)
	}
	want := `{"type":"info","total":2,"records":[{"id":"u0","info":"tab 2"},{"id":"u1"}]}`
	if r := do(t, "GET", presenceURL(s, "capped"), ""); r.Body != want {
		t.Errorf("REST presence %s\nwant %s", r.Body, want)
	}
	over.send(`{"command":"presence","identifier":` + q + `}`)
	over.expect(`{"type":"presence","identifier":` + q + `,"message":{"type":"info","total":2,"records":[{"info":"tab 2","id":"u0"},{"id":"u1"}]}}`)

	clients[1].send(`{"command":"leave","identifier":` + q + `}`)
	over.expect(`{"type":"presence","identifier":` + q + `,"message":{"id":"u1","type":"leave"}}`)
	over.send(joinCmd(id, `{"id":"u2","info":"late"}`))
	over.expect(`{"type":"presence","identifier":` + q + `,"message":{"id":"u2","info":"late","type":"join"}}`)
}

// Item 8: with the Redis broker the cap holds across nodes: a stream full
// through node A refuses a new id joining through node B.
func TestClusterPresenceMaxMembers(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	startRedis(t, port)
	args := []string{"--public", "--broker", "redis", "--redis_url", fmt.Sprintf("redis://127.0.0.1:%d/0", port), "--presence_max_members", "1"}
	a, b := startServer(t, nil, args...), startServer(t, nil, args...)
	ca, cb := dialWS(t, a, dialOpts{}), dialWS(t, b, dialOpts{})
	ca.welcome()
	cb.welcome()
	id := ca.subscribe("shared")
	cb.subscribe("shared")
	q := quoted(id)
	ca.send(joinCmd(id, `{"id":"alice"}`))
	ca.expect(`{"type":"presence","identifier":` + q + `,"message":{"id":"alice","type":"join"}}`)
	cb.expect(`{"type":"presence","identifier":` + q + `,"message":{"id":"alice","type":"join"}}`)
	cb.send(joinCmd(id, `{"id":"bob"}`))
	cb.expect(`{"type":"presence","identifier":` + q + `,"message":{"type":"error","reason":"presence_stream_full"}}`)
	if r := do(t, "GET", presenceURL(b, "shared"), ""); r.Body != `{"type":"info","total":1,"records":[{"id":"alice"}]}` {
		t.Errorf("presence through B: %s", r.Body)
	}
}
