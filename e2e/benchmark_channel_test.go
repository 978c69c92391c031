package e2e

import (
	"encoding/json"
	"testing"
	"time"
)

// performCmd is an Action Cable "message" command: data is the action's
// JSON, sent as a string.
func performCmd(id string, data map[string]any) string {
	d, _ := json.Marshal(data)
	b, _ := json.Marshal(map[string]string{"command": "message", "identifier": id, "data": string(d)})
	return string(b)
}

// With --benchmark_channel, BenchmarkChannel behaves as Action Cable load
// tools (websocket-bench) expect: echo transmits the data back to the
// sender only; broadcast sends it to every subscriber (REST publications to
// "all" too) and transmits it back to the sender as broadcastResult.
func TestBenchmarkChannel(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public", "--benchmark_channel")
	const id = `{"channel":"BenchmarkChannel"}`
	clients := make([]*wsClient, 2)
	for i := range clients {
		c := dialWS(t, s, dialOpts{protocols: []string{"actioncable-v1-json"}})
		c.welcome()
		c.send(subscribeCmd(id))
		c.expect(`{"type":"confirm_subscription","identifier":` + quoted(id) + `}`)
		clients[i] = c
	}
	a, b := clients[0], clients[1]

	a.send(performCmd(id, map[string]any{"action": "echo", "payload": map[string]any{"n": 1, "s": "x"}}))
	a.expect(`{"identifier":` + quoted(id) + `,"message":{"action":"echo","payload":{"n":1,"s":"x"}}}`)

	a.send(performCmd(id, map[string]any{"action": "broadcast", "payload": "hi"}))
	// The sender gets the broadcast and its result, in either order.
	got := map[string]bool{a.next(5 * time.Second): true, a.next(5 * time.Second): true}
	for _, want := range []string{
		`{"identifier":` + quoted(id) + `,"message":{"action":"broadcast","payload":"hi"}}`,
		`{"identifier":` + quoted(id) + `,"message":{"action":"broadcastResult","payload":"hi"}}`,
	} {
		if !got[want] {
			t.Fatalf("sender got %v, missing %s", got, want)
		}
	}
	b.expect(`{"identifier":` + quoted(id) + `,"message":{"action":"broadcast","payload":"hi"}}`)

	// An unknown action does nothing; the echo after it is still answered.
	b.send(performCmd(id, map[string]any{"action": "nope"}))
	b.send(performCmd(id, map[string]any{"action": "echo", "payload": 2}))
	b.expect(`{"identifier":` + quoted(id) + `,"message":{"action":"echo","payload":2}}`)

	if r := do(t, "POST", "http://"+s.API+"/api/publish", `{"stream":"all","data":"{\"from\":\"rest\"}"}`); r.Status != 201 {
		t.Fatalf("publish: %d %s", r.Status, r.Body)
	}
	// A REST publication is stamped, so it carries its offset as usual.
	for _, c := range clients {
		c.expect(`{"identifier":` + quoted(id) + `,"message":{"from":"rest"},"stream_id":"all","epoch":"` + s.Epoch + `","offset":1}`)
	}
}

// Without the flag BenchmarkChannel does not exist (without an RPC back
// end either, which would otherwise be asked for it).
func TestBenchmarkChannelOffByDefault(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public", "--norpc")
	const id = `{"channel":"BenchmarkChannel"}`
	c := dialWS(t, s, dialOpts{protocols: []string{"actioncable-v1-json"}})
	c.welcome()
	c.send(subscribeCmd(id))
	c.expect(`{"type":"reject_subscription","identifier":` + quoted(id) + `}`)
}
