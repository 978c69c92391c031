package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
)

// getJSON GETs url and decodes its 200 answer into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	r := do(t, "GET", url, "")
	if r.Status != 200 {
		t.Fatalf("GET %s: %d %s", url, r.Status, r.Body)
	}
	if err := json.Unmarshal([]byte(r.Body), v); err != nil {
		t.Fatalf("GET %s: %v in %s", url, err, r.Body)
	}
}

// The history of a stream over REST and gRPC: all retained, the latest
// limit, after a position, a position of another epoch (409 with the
// stream's position, FAILED_PRECONDITION with a StreamPosition detail),
// a position at the tail (none), and since without epoch (422).
func TestAPIHistory(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public")
	api := "http://" + s.Main + "/api"
	for i := 1; i <= 5; i++ {
		publish(t, s, fmt.Sprintf(`{"stream":"hist/1","data":"{\"n\":%d}"}`, i))
	}
	publish(t, s, `{"stream":"hist/1","data":"gone","meta":{"transient":true}}`)
	r := do(t, "GET", api+"/history/hist%2F1", "")
	want := fmt.Sprintf(`{"epoch":%q,"offset":5,"publications":[{"offset":1,"data":"{\"n\":1}"},{"offset":2,"data":"{\"n\":2}"},`+
		`{"offset":3,"data":"{\"n\":3}"},{"offset":4,"data":"{\"n\":4}"},{"offset":5,"data":"{\"n\":5}"}],"truncated":false}`, s.Epoch)
	if r.Status != 200 || r.Body != want {
		t.Fatalf("history: %d %s\nwant %s", r.Status, r.Body, want)
	}
	var h struct {
		Epoch        string
		Offset       uint64
		Publications []struct {
			Offset uint64
			Data   string
		}
	}
	getJSON(t, api+"/history/hist%2F1?limit=2", &h)
	if len(h.Publications) != 2 || h.Publications[0].Offset != 4 || h.Publications[1].Offset != 5 {
		t.Errorf("limit 2 without since: %+v", h)
	}
	getJSON(t, api+"/history/hist%2F1?limit=2&since=1&epoch="+s.Epoch, &h)
	if len(h.Publications) != 2 || h.Publications[0].Offset != 2 || h.Publications[1].Data != `{"n":3}` {
		t.Errorf("limit 2 since 1: %+v", h)
	}
	getJSON(t, api+"/history/hist%2F1?since=5&epoch="+s.Epoch, &h)
	if len(h.Publications) != 0 || h.Offset != 5 {
		t.Errorf("since the tail: %+v", h)
	}
	getJSON(t, api+"/history/unknown", &h)
	if h.Epoch != "" || h.Offset != 0 || len(h.Publications) != 0 {
		t.Errorf("unknown stream: %+v", h)
	}
	r = do(t, "GET", api+"/history/hist%2F1?since=1&epoch=old", "")
	assertJSONError(t, r, 409, "")
	if !strings.Contains(r.Body, fmt.Sprintf(`"epoch":%q,"offset":5}`, s.Epoch)) {
		t.Errorf("409 without the stream's position: %s", r.Body)
	}
	assertJSONError(t, do(t, "GET", api+"/history/hist?since=1", ""), 422, "epoch is required with since")

	c := dialGRPC(t, s.Main)
	ctx, cancel := withToken("")
	defer cancel()
	resp, err := c.GetHistory(ctx, &cablehubv1.GetHistoryRequest{Stream: "hist/1", Limit: 1})
	if err != nil || resp.GetOffset() != 5 || len(resp.GetPublications()) != 1 || resp.GetPublications()[0].GetData() != `{"n":5}` {
		t.Fatalf("gRPC history: %v %v", resp, err)
	}
	_, err = c.GetHistory(ctx, &cablehubv1.GetHistoryRequest{Stream: "hist/1", Epoch: "old", Since: ptr(uint64(2))})
	wantCode(t, err, codes.FailedPrecondition)
	pos := streamPosition(err)
	if pos == nil || pos.GetEpoch() != s.Epoch || pos.GetOffset() != 5 {
		t.Errorf("FAILED_PRECONDITION details: %v", status.Convert(err).Details())
	}
	_, err = c.GetHistory(ctx, &cablehubv1.GetHistoryRequest{})
	wantCode(t, err, codes.InvalidArgument)
	if status.Convert(err).Message() != "stream is required" {
		t.Errorf("message %q", status.Convert(err).Message())
	}
}

func ptr[T any](v T) *T { return &v }

// streamPosition is the StreamPosition detail of err, if any.
func streamPosition(err error) *cablehubv1.StreamPosition {
	for _, d := range status.Convert(err).Details() {
		if p, ok := d.(*cablehubv1.StreamPosition); ok {
			return p
		}
	}
	return nil
}

// Presence stats count unique ids and their sessions: one user in two
// tabs and another user are 2 users, 3 sessions.
func TestAPIPresenceStats(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public")
	for _, who := range []string{"u1", "u1", "u2"} {
		ws := dialWS(t, s, dialOpts{})
		ws.welcome()
		id := ws.subscribe("stats-room")
		ws.send(joinCmd(id, `{"id":"`+who+`"}`))
	}
	url := "http://" + s.Main + "/api/presence/stats-room/stats"
	waitUntil(t, "3 sessions", func() bool { return do(t, "GET", url, "").Body == `{"users":2,"sessions":3}` })
	if r := do(t, "GET", "http://"+s.Main+"/api/presence/nobody/stats", ""); r.Body != `{"users":0,"sessions":0}` {
		t.Errorf("empty stream: %s", r.Body)
	}
	c := dialGRPC(t, s.Main)
	ctx, cancel := withToken("")
	defer cancel()
	st, err := c.GetPresenceStats(ctx, &cablehubv1.GetPresenceStatsRequest{Stream: "stats-room"})
	if err != nil || st.GetUsers() != 2 || st.GetSessions() != 3 {
		t.Errorf("gRPC stats: %v %v", st, err)
	}
}

type streamsAnswer struct {
	Streams []struct {
		Name        string
		Subscribers int
	}
	UnavailableNodes []string `json:"unavailable_nodes"`
	Truncated        bool
}

type infoAnswer struct {
	Nodes []struct {
		ID            string
		Version       string
		Connections   int
		Subscriptions int
		Streams       int
	}
	UnavailableNodes []string `json:"unavailable_nodes"`
}

// subscribeClients opens n clients on s, each subscribed to stream.
func subscribeClients(t *testing.T, s *server, stream string, n int) []*wsClient {
	t.Helper()
	var out []*wsClient
	for range n {
		ws := dialWS(t, s, dialOpts{})
		ws.welcome()
		ws.subscribe(stream)
		out = append(out, ws)
	}
	return out
}

// twoNodeCluster checks ListStreams and GetInfo on two nodes: each node
// answers for both, counts summed; a node killed drops out within its
// announce TTL, named among the unavailable nodes until then.
func twoNodeCluster(t *testing.T, a, b *server) {
	prefix := uniqueStream(t, "list") + "/"
	subscribeClients(t, a, prefix+"x", 2)
	subscribeClients(t, b, prefix+"x", 1)
	subscribeClients(t, b, prefix+"y", 1)
	want := fmt.Sprintf(`[{"name":"%sx","subscribers":3},{"name":"%sy","subscribers":1}]`, prefix, prefix)
	for _, s := range []*server{a, b} {
		url := "http://" + s.Main + "/api/streams?prefix=" + prefix
		waitUntil(t, "both nodes' streams", func() bool {
			r := do(t, "GET", url, "")
			return strings.HasPrefix(r.Body, `{"streams":`+want+`,"unavailable_nodes":[]`)
		})
		var limited streamsAnswer
		getJSON(t, url+"&limit=1", &limited)
		if len(limited.Streams) != 1 || !limited.Truncated || limited.Streams[0].Subscribers != 3 {
			t.Errorf("limit 1: %+v", limited)
		}
		var info infoAnswer
		waitUntil(t, "both nodes in info", func() bool {
			getJSON(t, "http://"+s.Main+"/api/info", &info)
			return len(info.Nodes) == 2
		})
		streams := []int{info.Nodes[0].Streams, info.Nodes[1].Streams}
		slices.Sort(streams)
		if !slices.Equal(streams, []int{1, 2}) || info.Nodes[0].Connections != 2 || info.Nodes[1].Subscriptions != 2 ||
			len(info.UnavailableNodes) != 0 || info.Nodes[0].Version == "" {
			t.Errorf("info: %+v", info)
		}
	}
	// Which node is b: the one with 2 streams.
	var info infoAnswer
	getJSON(t, "http://"+a.Main+"/api/info", &info)
	bID := info.Nodes[0].ID
	if info.Nodes[1].Streams == 2 {
		bID = info.Nodes[1].ID
	}
	b.cmd.Process.Kill()
	sawMissing := false
	waitUntil(t, "the killed node to drop out", func() bool {
		var got infoAnswer
		getJSON(t, "http://"+a.Main+"/api/info", &got)
		sawMissing = sawMissing || slices.Contains(got.UnavailableNodes, bID)
		return len(got.Nodes) == 1 && len(got.UnavailableNodes) == 0
	})
	if !sawMissing {
		t.Log("the killed node's TTL ran out before a query saw it missing")
	}
	var streams streamsAnswer
	getJSON(t, "http://"+a.Main+"/api/streams?prefix="+prefix, &streams)
	if len(streams.Streams) != 1 || streams.Streams[0].Subscribers != 2 {
		t.Errorf("streams after the kill: %+v", streams)
	}
}

func TestAPIClusterRedis(t *testing.T) {
	t.Parallel()
	a, b := redisCluster(t, 15, "--pubsub", "redis")
	crossNodeCalls(t, a, b, true)
	twoNodeCluster(t, a, b)
}

func TestAPIClusterNATS(t *testing.T) {
	t.Parallel()
	addr := fmt.Sprintf("nats://127.0.0.1:%d", freePort(t))
	a := startServer(t, nil, "--public", "--broker", "nats", "--embed_nats", "--enats_addr", addr)
	b := startServer(t, nil, "--public", "--broker", "nats", "--nats_servers", addr)
	crossNodeCalls(t, a, b, false)
	twoNodeCluster(t, a, b)
}

// crossNodeCalls makes the calls of one node answer for what happened on
// the other, over gRPC: a watch on b gets what is published on a, b's
// history holds it, both nodes list the other's streams and themselves,
// and (with presence) b counts who joined on a.
//
// What it opens it closes, and it returns once the nodes count none of it.
func crossNodeCalls(t *testing.T, a, b *server, presence bool) {
	stream := uniqueStream(t, "cross")
	cb := dialGRPC(t, b.Main)
	ctx, cancel := withToken("")
	defer cancel()
	wctx, stopWatch := context.WithCancel(ctx)
	var clients []*wsClient
	defer func() {
		stopWatch()
		for _, c := range clients {
			c.conn.Close()
		}
		waitUntil(t, "the nodes to count no connection", func() bool {
			info, err := cb.GetInfo(ctx, &cablehubv1.GetInfoRequest{})
			if err != nil || len(info.GetNodes()) != 2 {
				return false
			}
			return info.GetNodes()[0].GetConnections()+info.GetNodes()[1].GetConnections() == 0
		})
	}()
	w, err := cb.Watch(wctx, &cablehubv1.WatchRequest{Stream: stream})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Header(); err != nil {
		t.Fatal(err)
	}
	publish(t, a, fmt.Sprintf(`[{"stream":%q,"data":"1"},{"stream":%q,"data":"2"}]`, stream, stream))
	var epoch string
	for i := uint64(1); i <= 2; i++ {
		pub, err := w.Recv()
		if err != nil || pub.GetOffset() != i || pub.GetData() != fmt.Sprint(i) {
			t.Fatalf("watch on b: %v %v", pub, err)
		}
		epoch = pub.GetEpoch()
	}
	h, err := cb.GetHistory(ctx, &cablehubv1.GetHistoryRequest{Stream: stream})
	if err != nil || h.GetEpoch() != epoch || h.GetOffset() != 2 || len(h.GetPublications()) != 2 {
		t.Fatalf("history on b: %v %v", h, err)
	}
	waitUntil(t, "both nodes over gRPC", func() bool {
		info, err := cb.GetInfo(ctx, &cablehubv1.GetInfoRequest{})
		list, err2 := dialGRPC(t, a.Main).ListStreams(ctx, &cablehubv1.ListStreamsRequest{Prefix: stream})
		return err == nil && err2 == nil && len(info.GetNodes()) == 2 &&
			len(list.GetStreams()) == 1 && list.GetStreams()[0].GetSubscribers() == 1
	})
	if !presence {
		return
	}
	for _, s := range []*server{a, a, b} {
		ws := dialWS(t, s, dialOpts{})
		clients = append(clients, ws)
		ws.welcome()
		id := ws.subscribe(stream)
		who := "u-" + s.Main
		ws.send(joinCmd(id, `{"id":"`+who+`"}`))
	}
	waitUntil(t, "presence joined on both nodes", func() bool {
		st, err := cb.GetPresenceStats(ctx, &cablehubv1.GetPresenceStatsRequest{Stream: stream})
		return err == nil && st.GetUsers() == 2 && st.GetSessions() == 3
	})
}

// A node alone answers for itself at once.
func TestAPISingleNodeInfo(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public")
	subscribeClients(t, s, "solo", 2)
	c := dialGRPC(t, s.Main)
	ctx, cancel := withToken("")
	defer cancel()
	info, err := c.GetInfo(ctx, &cablehubv1.GetInfoRequest{})
	if err != nil || len(info.GetNodes()) != 1 || info.GetNodes()[0].GetConnections() != 2 ||
		info.GetNodes()[0].GetSubscriptions() != 2 || info.GetNodes()[0].GetStreams() != 1 {
		t.Fatalf("info: %v %v", info, err)
	}
	list, err := c.ListStreams(ctx, &cablehubv1.ListStreamsRequest{Prefix: "so"})
	if err != nil || len(list.GetStreams()) != 1 || list.GetStreams()[0].GetSubscribers() != 2 {
		t.Fatalf("streams: %v %v", list, err)
	}
	_, err = c.ListStreams(ctx, &cablehubv1.ListStreamsRequest{Limit: 1001})
	wantCode(t, err, codes.InvalidArgument)
}

// watchREST opens a REST watch and returns its lines.
func watchREST(t *testing.T, url string) (<-chan string, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 10000)
	go func() {
		defer close(lines)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return lines, resp
}

func nextLine(t *testing.T, lines <-chan string) string {
	t.Helper()
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatal("the watch ended")
		}
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("no line in 10 s")
	}
	return ""
}

// A REST watch answers 200 once live, then one JSON object per
// publication, transient ones included; with since it replays first. A
// server shutting down ends it with an error line.
func TestAPIWatchREST(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public")
	api := "http://" + s.Main + "/api"
	publish(t, s, `{"stream":"w/1","data":"one"}`)
	lines, resp := watchREST(t, api+"/watch/w%2F1")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("watch: %d %v", resp.StatusCode, resp.Header)
	}
	replay, _ := watchREST(t, api+"/watch/w%2F1?since=0&epoch="+s.Epoch)
	publish(t, s, `[{"stream":"w/1","data":"{\"two\":2}"},{"stream":"w/1","data":"t","meta":{"transient":true}}]`)
	for _, want := range []string{
		fmt.Sprintf(`{"stream":"w/1","epoch":%q,"offset":2,"data":"{\"two\":2}"}`, s.Epoch),
		`{"stream":"w/1","epoch":"","offset":0,"data":"t"}`,
	} {
		if got := nextLine(t, lines); got != want {
			t.Errorf("line %s, want %s", got, want)
		}
	}
	if got := nextLine(t, replay); got != fmt.Sprintf(`{"stream":"w/1","epoch":%q,"offset":1,"data":"one"}`, s.Epoch) {
		t.Errorf("replayed %s", got)
	}
	if got := nextLine(t, replay); !strings.Contains(got, `"offset":2`) {
		t.Errorf("after the replay %s", got)
	}
	s.stop()
	if got := nextLine(t, lines); got != `{"error":{"code":14,"message":"the server is shutting down: resume on another node"}}` {
		t.Errorf("at shutdown: %s", got)
	}
}

// A gRPC watcher gets every publication of a burst from several
// publishers, in offset order and once; cancelled and resumed from its
// last offset, it gets exactly the rest.
func TestAPIWatchBurstAndResume(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public", "--history_limit", "5000")
	c := dialGRPC(t, s.Main)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	wctx, stopWatch := context.WithCancel(ctx)
	w, err := c.Watch(wctx, &cablehubv1.WatchRequest{Stream: "burst"})
	if err != nil {
		t.Fatal(err)
	}
	if h, err := w.Header(); err != nil || len(h.Get("cablehub-watch")) == 0 {
		t.Fatalf("headers %v %v", h, err)
	}
	const publishers, batches, size = 4, 50, 10 // 2000 publications
	errs := make(chan error, publishers)
	for p := range publishers {
		go func() {
			for i := range batches {
				var items []string
				for j := range size {
					items = append(items, fmt.Sprintf(`{"stream":"burst","data":"%d-%d-%d"}`, p, i, j))
				}
				if _, err := postJSON(s, "["+strings.Join(items, ",")+"]"); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	var last uint64
	epoch := ""
	for last < publishers*batches*size {
		pub, err := w.Recv()
		if err != nil {
			t.Fatalf("after offset %d: %v", last, err)
		}
		if pub.GetOffset() != last+1 {
			t.Fatalf("offset %d after %d", pub.GetOffset(), last)
		}
		last, epoch = pub.GetOffset(), pub.GetEpoch()
	}
	for range publishers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	stopWatch()
	for i := range 5 {
		publish(t, s, fmt.Sprintf(`{"stream":"burst","data":"later-%d"}`, i))
	}
	w2, err := c.Watch(ctx, &cablehubv1.WatchRequest{Stream: "burst", Epoch: epoch, Since: &last})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		pub, err := w2.Recv()
		if err != nil || pub.GetOffset() != last+uint64(i)+1 || pub.GetData() != fmt.Sprintf("later-%d", i) {
			t.Fatalf("resumed: %v %v", pub, err)
		}
	}
	w3, err := c.Watch(ctx, &cablehubv1.WatchRequest{Stream: "burst", Epoch: "old", Since: ptr(uint64(1))})
	if err == nil {
		_, err = w3.Recv()
	}
	wantCode(t, err, codes.FailedPrecondition)
	if p := streamPosition(err); p == nil || p.GetOffset() != last+5 {
		t.Errorf("position %v", p)
	}
}

// REST and gRPC say the same thing about the same mistake, unknown
// fields are ignored on every REST route, and a wrong method is 405 with
// Allow.
func TestRESTAndGRPCErrorsAgree(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--secret", "s3cr3t")
	api := "http://" + s.Main + "/api"
	auth := "Authorization: Bearer " + s3cr3tToken
	c := dialGRPC(t, s.Main)
	ctx, cancel := withToken(s3cr3tToken)
	defer cancel()
	for _, tc := range []struct {
		rest string
		rpc  *cablehubv1.PublishRequest
	}{
		{`{"stream":"","data":"x"}`, &cablehubv1.PublishRequest{Publications: []*cablehubv1.Publication{{Data: "x"}}}},
		{`[{"stream":"a","data":"x"},{"stream":"","data":"x"}]`,
			&cablehubv1.PublishRequest{Publications: []*cablehubv1.Publication{{Stream: "a", Data: "x"}, {Data: "x"}}}},
	} {
		r := do(t, "POST", api+"/publish", tc.rest, auth)
		_, err := c.Publish(ctx, tc.rpc)
		var body struct{ Message string }
		json.Unmarshal([]byte(r.Body), &body)
		if r.Status != 422 || status.Code(err) != codes.InvalidArgument || body.Message != status.Convert(err).Message() {
			t.Errorf("REST %d %q, gRPC %v", r.Status, body.Message, err)
		}
	}
	r := do(t, "POST", api+"/publish", okPub)
	var body struct{ Message string }
	json.Unmarshal([]byte(r.Body), &body)
	noToken, cancel2 := withToken("")
	defer cancel2()
	_, err := c.Publish(noToken, onePub("a", "x"))
	if r.Status != 401 || body.Message != status.Convert(err).Message() || !strings.Contains(body.Message, "derived from --secret") {
		t.Errorf("401: REST %q, gRPC %v", body.Message, err)
	}
	if r := do(t, "POST", api+"/disconnect", `{"identifier":"x","foo":1}`, auth); r.Status != 201 {
		t.Errorf("disconnect with an unknown field: %d %s", r.Status, r.Body)
	}
	if r := do(t, "POST", api+"/disconnect", `{"identifier":"x","reconnect":"yes"}`, auth); r.Status != 422 || strings.Contains(r.Body, "proto:") {
		t.Errorf("disconnect with a wrong type: %d %s", r.Status, r.Body)
	}
	if r := do(t, "GET", api+"/disconnect", ""); r.Status != 405 || r.Header.Get("Allow") != "POST" {
		t.Errorf("GET disconnect: %d %v", r.Status, r.Header)
	}
}
