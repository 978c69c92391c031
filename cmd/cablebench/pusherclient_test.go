package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cablehub/cablehub/server/pusher"
)

// Pusher's documented examples (Authentication and authorization
// signatures; HTTP API reference, worked authentication example).
const (
	docKey    = "278d425bdf160c739803"
	docSecret = "7ad3773142a6692b25b8"
)

func TestPusherChannelAuth(t *testing.T) {
	got := pusherChannelAuth(docKey, docSecret, "1234.1234", "private-foobar", "")
	if want := docKey + ":58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"; got != want {
		t.Errorf("private-foobar: %s, want %s", got, want)
	}
	// A presence subscription signs its channel_data too: checked against
	// the server's own implementation.
	app := &pusher.App{Key: docKey, Secret: docSecret}
	data := pusherChannelData(7)
	if data != `{"user_id":"7","user_info":{"n":7}}` {
		t.Errorf("channel_data %s", data)
	}
	got = pusherChannelAuth(docKey, docSecret, "1.2", "presence-bench", data)
	if !app.VerifyChannel("1.2", "presence-bench", data, got) {
		t.Errorf("presence auth %s does not verify", got)
	}
	o := &pusherOptions{key: docKey, secret: docSecret}
	var cmd struct {
		Event string
		Data  struct{ Channel, Auth, Channel_data string }
	}
	json.Unmarshal(o.subscribeCommand("1.2", "presence-bench", 7), &cmd)
	if cmd.Event != "pusher:subscribe" || cmd.Data.Channel != "presence-bench" || cmd.Data.Auth != got || cmd.Data.Channel_data != data {
		t.Errorf("presence subscribe %+v", cmd)
	}
	if c := o.subscribeCommand("1.2", "bench", 7); string(c) != `{"event":"pusher:subscribe","data":{"channel":"bench"}}` {
		t.Errorf("public subscribe %s", c)
	}
}

func TestPusherSignedQuery(t *testing.T) {
	body := `{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}`
	q, err := url.ParseQuery(pusherSignedQuery("POST", "/apps/3/events", []byte(body), docKey, docSecret, 1353088179))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"auth_key": docKey, "auth_timestamp": "1353088179", "auth_version": "1.0",
		"body_md5":       "ec365a775a4cd0599faeb73354201b6f",
		"auth_signature": "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c",
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
}

// TestPusherAPIPublisher publishes one event and a batch to a server that
// verifies the requests as Cablehub does.
func TestPusherAPIPublisher(t *testing.T) {
	app := &pusher.App{ID: "app-1", Key: "key-1", Secret: "psecret"}
	type seen struct {
		path string
		body string
	}
	got := make(chan seen, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := app.VerifyRequest(r.Method, r.URL.EscapedPath(), r.URL.Query(), body, time.Now()); err != nil {
			http.Error(w, err.Message, err.Status)
			return
		}
		got <- seen{r.URL.Path, string(body)}
		io.WriteString(w, "{}")
	}))
	defer srv.Close()
	p := newPusherAPIPublisher(srv.URL+"/", &pusherOptions{appID: "app-1", key: "key-1", secret: "psecret"}, 1)
	ctx := context.Background()
	if err := p.publish(ctx, []item{{"private-bench", `{"n":1,"t":2}`}}); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s.path != "/apps/app-1/events" || s.body != `{"name":"bench","channel":"private-bench","data":"{\"n\":1,\"t\":2}"}` {
		t.Errorf("event: %+v", s)
	}
	if err := p.publish(ctx, []item{{"a", "1"}, {"b", "2"}}); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s.path != "/apps/app-1/batch_events" || s.body != `{"batch":[{"name":"bench","channel":"a","data":"1"},{"name":"bench","channel":"b","data":"2"}]}` {
		t.Errorf("batch: %+v", s)
	}
	p.secret = "wrong"
	if err := p.publish(ctx, []item{{"a", "1"}}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("bad signature: %v, want the 401", err)
	}
}

type capturePublisher struct{ items []item }

func (c *capturePublisher) publish(_ context.Context, items []item) error {
	c.items = append(c.items, items...)
	return nil
}

func TestPusherEventPublisher(t *testing.T) {
	var c capturePublisher
	pusherEventPublisher{&c}.publish(context.Background(), []item{{"news", `{"n":3,"t":4}`}})
	if len(c.items) != 1 || c.items[0].stream != "news" || c.items[0].data != `{"event":"bench","data":{"n":3,"t":4}}` {
		t.Errorf("published %+v", c.items)
	}
}

func TestPusherURL(t *testing.T) {
	for raw, want := range map[string]string{
		"ws://127.0.0.1:8080":                          "ws://127.0.0.1:8080/app/key-1?client=cablebench&protocol=7&version=1.0",
		"ws://127.0.0.1:8080/":                         "ws://127.0.0.1:8080/app/key-1?client=cablebench&protocol=7&version=1.0",
		"ws://127.0.0.1:8080/app/other":                "ws://127.0.0.1:8080/app/other?client=cablebench&protocol=7&version=1.0",
		"ws://127.0.0.1:8080/app/key-1?protocol=6&x=1": "ws://127.0.0.1:8080/app/key-1?protocol=6&x=1",
	} {
		if got, err := pusherURL(raw, "key-1"); err != nil || got != want {
			t.Errorf("%s: %s, %v; want %s", raw, got, err, want)
		}
	}
}

// TestParsePusherFrames checks the frames a Pusher client reads, as
// Cablehub and AnyCable write them.
func TestParsePusherFrames(t *testing.T) {
	for _, frame := range []string{
		`{"event":"bench","data":{"n":5,"t":1761000000000000123},"channel":"news"}`,               // published as an object
		`{"event":"bench","data":"{\"n\":5,\"t\":1761000000000000123}","channel":"private-news"}`, // through the Pusher API
		`{"channel":"news","data":{"n":5,"t":1761000000000000123},"event":"bench"}`,               // another key order
	} {
		if n, sent, ok := parseMessage([]byte(frame)); !ok || n != 5 || sent != 1761000000000000123 {
			t.Errorf("%s: %d, %d, %v", frame, n, sent, ok)
		}
	}
	if _, _, ok := parseMessage([]byte(`{"event":"pusher_internal:member_added","data":"{\"user_id\":\"1\"}","channel":"presence-x"}`)); ok {
		t.Error("a member event parsed as a publication")
	}

	for frame, want := range map[string]string{
		`{"event":"pusher:ping","data":{}}`: "pusher:ping",
		`{"data":{},"event":"pusher:ping"}`: "pusher:ping",
		`{"event":"a\"b","data":1}`:         `a"b`,
		`not json`:                          "",
	} {
		if got := pusherEvent([]byte(frame)); got != want {
			t.Errorf("event of %s: %q, want %q", frame, got, want)
		}
	}

	for frame, want := range map[string]string{
		`{"event":"pusher:connection_established","data":"{\"socket_id\":\"123.456\",\"activity_timeout\":30}"}`: "123.456", // Cablehub, Pusher
		`{"event":"pusher:connection_established","data":{"socket_id":"abc","activity_timeout":30}}`:             "abc",     // AnyCable
		`{"event":"pusher:ping","data":{}}`: "",
	} {
		if got, err := establishedSocketID([]byte(frame)); err != nil || got != want {
			t.Errorf("socket_id of %s: %q, %v; want %q", frame, got, err, want)
		}
	}
	var refusal *refusalError
	if _, err := establishedSocketID([]byte(`{"event":"pusher:error","data":{"code":4001,"message":"App key"}}`)); !errors.As(err, &refusal) {
		t.Errorf("pusher:error before the socket_id: %v", err)
	}

	roster := `{"event":"pusher_internal:subscription_succeeded","data":"{\"presence\":{\"count\":1,\"ids\":[\"1\"],\"hash\":{\"1\":{\"n\":1}}}}","channel":"presence-news"}`
	cases := []struct {
		frame   string
		ok, err bool
	}{
		{roster, true, false},
		{`{"channel":"presence-news","event":"pusher_internal:subscription_succeeded","data":"{}"}`, true, false},
		{strings.Replace(roster, "presence-news", "presence-other", 1), false, false},
		{`{"event":"bench","data":{},"channel":"presence-news"}`, false, false},
		{`{"event":"pusher:subscription_error","channel":"presence-news","data":{"type":"AuthError","status":403}}`, false, true},
		{`{"event":"pusher:error","data":{"code":4009,"message":"rejected"}}`, false, true}, // AnyCable's rejection
	}
	for _, c := range cases {
		ok, err := subscriptionSucceeded([]byte(c.frame), "presence-news")
		if ok != c.ok || (err != nil) != c.err {
			t.Errorf("%s: %v, %v; want %v, error %v", c.frame, ok, err, c.ok, c.err)
		}
	}
}

// TestConnectPusher runs a client against a server that, before
// confirming the subscription, sends a member event and a ping, and then
// publishes once the pong came; and a server that refuses the
// subscription.
func TestConnectPusher(t *testing.T) {
	app := &pusher.App{Key: "key-1", Secret: "psecret"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		ws.WriteMessage(websocket.TextMessage, []byte(`{"event":"pusher:connection_established","data":"{\"socket_id\":\"1.2\",\"activity_timeout\":30}"}`))
		var sub struct {
			Data struct{ Channel, Auth, Channel_data string }
		}
		if ws.ReadJSON(&sub) != nil {
			return
		}
		d := sub.Data
		if !app.VerifyChannel("1.2", d.Channel, d.Channel_data, d.Auth) {
			ws.WriteMessage(websocket.TextMessage, []byte(`{"event":"pusher:subscription_error","channel":"`+d.Channel+`","data":{"type":"AuthError","status":403}}`))
			return
		}
		ws.WriteMessage(websocket.TextMessage, []byte(`{"event":"pusher_internal:member_added","data":"{\"user_id\":\"9\"}","channel":"`+d.Channel+`"}`))
		ws.WriteMessage(websocket.TextMessage, []byte(`{"event":"pusher:ping","data":{}}`))
		ws.WriteMessage(websocket.TextMessage, []byte(`{"event":"pusher_internal:subscription_succeeded","data":"{\"presence\":{\"count\":1}}","channel":"`+d.Channel+`"}`))
		if _, pong, err := ws.ReadMessage(); err != nil || string(pong) != `{"event":"pusher:pong","data":{}}` {
			t.Errorf("pong %s, %v", pong, err)
			return
		}
		ws.WriteMessage(websocket.TextMessage, []byte(`{"event":"bench","data":"{\"n\":4,\"t\":8}","channel":"`+d.Channel+`"}`))
		ws.ReadMessage() // until the client closes
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	target, _ := pusherURL("ws"+strings.TrimPrefix(srv.URL, "http"), "key-1")
	o := &pusherOptions{key: "key-1", secret: "psecret", stats: &pusherStats{}}
	c, err := connectPusher(ctx, target, "presence-bench", 7, o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.nc.Close()
	var got []byte
	c.readFor(time.Now().Add(5*time.Second), func(data []byte) (bool, error) {
		err := c.feed(data, func(p []byte) { got = append(got, p...) })
		return len(got) > 0, err
	})
	if n, sent, ok := parseMessage(got); !ok || n != 4 || sent != 8 {
		t.Errorf("publication %s parsed as %d, %d, %v", got, n, sent, ok)
	}
	if p, m := o.stats.pings.Load(), o.stats.memberEvents.Load(); p != 1 || m != 1 {
		t.Errorf("%d pings, %d member events; want 1 and 1", p, m)
	}

	o.secret = "wrong"
	_, err = connectPusher(ctx, target, "private-bench", 7, o)
	var refusal *refusalError
	if !errors.As(err, &refusal) || refusal.typ != "pusher:subscription_error" {
		t.Errorf("refused subscription: %v", err)
	}
}

// TestKeeperAnswersPings has a keeper read a subscribed client that the
// server then pings, sends a member event, and closes with a pusher:error.
func TestKeeperAnswersPings(t *testing.T) {
	pongs := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		ws.WriteMessage(websocket.TextMessage, []byte(`{"event":"pusher:connection_established","data":{"socket_id":"1.2"}}`))
		ws.ReadMessage()
		ws.WriteMessage(websocket.TextMessage, []byte(`{"event":"pusher_internal:subscription_succeeded","data":"{}","channel":"news"}`))
		time.Sleep(50 * time.Millisecond) // the client is the keeper's by now
		ws.WriteMessage(websocket.TextMessage, []byte(`{"event":"pusher:ping","data":{}}`))
		_, pong, _ := ws.ReadMessage()
		pongs <- string(pong)
		ws.WriteMessage(websocket.TextMessage, []byte(`{"event":"pusher_internal:member_added","data":"{\"user_id\":\"9\"}","channel":"news"}`))
		ws.WriteMessage(websocket.TextMessage, []byte(`{"event":"pusher:error","data":{"code":4200,"message":"Server restarting"}}`))
		ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4200, ""))
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	target, _ := pusherURL("ws"+strings.TrimPrefix(srv.URL, "http"), "key-1")
	o := &pusherOptions{key: "key-1", secret: "psecret", stats: &pusherStats{}}
	c, err := connectPusher(ctx, target, "news", 0, o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.nc.Close()
	k, err := newKeeper(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.add(0, c); err != nil {
		t.Fatal(err)
	}
	if pong := <-pongs; pong != `{"event":"pusher:pong","data":{}}` {
		t.Errorf("pong %s", pong)
	}
	for deadline := time.Now().Add(5 * time.Second); o.stats.errors.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if err := k.close(); err == nil || !strings.Contains(err.Error(), "client 0") {
		t.Errorf("keeper: %v, want client 0 closed", err)
	}
	if m, e := o.stats.memberEvents.Load(), o.firstErrorNote(); m != 1 || !strings.Contains(e, "Server restarting") {
		t.Errorf("%d member events, error note %q", m, e)
	}
}
