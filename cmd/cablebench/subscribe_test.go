package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestIdentifyReachesServer checks what a server sees of a client's
// identity in each --rpc_user mode: the Cookie header or the user query
// parameter of the upgrade request.
func TestIdentifyReachesServer(t *testing.T) {
	type seen struct{ cookie, user, other string }
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Header.Get("Cookie"), r.URL.Query().Get("user"), r.URL.Query().Get("other")}
		http.Error(w, "no upgrade here", http.StatusBadRequest)
	}))
	defer srv.Close()
	base := "ws://" + strings.TrimPrefix(srv.URL, "http://") + "/cable?other=1"
	for _, c := range []struct {
		via  string
		want seen
	}{
		{"cookie", seen{cookie: "user=bench-7", other: "1"}},
		{"query", seen{user: "bench-7", other: "1"}},
	} {
		target, header, err := identify(base, 7, c.via)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = dial(ctx, target, header, "actioncable-v1-json")
		cancel()
		if err == nil || !strings.Contains(err.Error(), "400") {
			t.Fatalf("%s: dial: %v, want the server's 400", c.via, err)
		}
		if s := <-got; s != c.want {
			t.Errorf("%s: server saw %+v, want %+v", c.via, s, c.want)
		}
	}
}

// TestRPCSubscriptionMatchesApplicationFrames checks that an RPC
// subscription recognises the bench back end's frames (an application's
// key order, not Cablehub's) and fails on a refusal.
func TestRPCSubscriptionMatchesApplicationFrames(t *testing.T) {
	sub := newRPCSubscription(benchRPCChannel, "room-1")
	if want := `{"command":"subscribe","identifier":"{\"channel\":\"BenchRPCChannel\",\"stream\":\"room-1\"}"}`; string(sub.command) != want {
		t.Errorf("command %s, want %s", sub.command, want)
	}
	ident := `{"channel":"BenchRPCChannel","stream":"room-1"}`
	refusal := rpcConnect("s1", nil).GetTransmissions() // no user: refused
	cases := []struct {
		name    string
		match   func([]byte) (bool, error)
		frame   string
		ok, err bool
	}{
		{"welcome", sub.welcome, `{"type":"welcome","sid":"s1"}`, true, false},
		{"ping before the welcome", sub.welcome, `{"type":"ping","message":1}`, false, false},
		{"refused connection", sub.welcome, refusal[0], false, true},
		{"confirmation", sub.confirm, channelFrame(ident, "confirm_subscription"), true, false},
		{"another channel's confirmation", sub.confirm, channelFrame(`{"channel":"BenchRPCChannel"}`, "confirm_subscription"), false, false},
		{"rejection", sub.confirm, channelFrame(ident, "reject_subscription"), false, true},
		{"not JSON", sub.confirm, `plain text`, false, false},
	}
	for _, c := range cases {
		ok, err := c.match([]byte(c.frame))
		if ok != c.ok || (err != nil) != c.err {
			t.Errorf("%s: matched %v, error %v; want %v, error %v", c.name, ok, err, c.ok, c.err)
		}
	}
}
