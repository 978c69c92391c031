package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The Pusher app of these tests (see /app/<key> in the behaviour notes).
const (
	pusherKey    = "key-1"
	pusherSecret = "psecret"
	pusherPath   = "/app/" + pusherKey + "?protocol=7&client=js&version=8.6.0"
)

// pusherArgs turn Pusher mode on; --secret s3cr3t gives /api/publish the
// token s3cr3tToken. The http broadcast adapter keeps the nodes off
// Redis's shared __anycable__ channel, where other packages' tests publish
// (Redis pub/sub channels are not per database).
var pusherArgs = []string{"--pusher_app_id", "app-1", "--pusher_app_key", pusherKey, "--pusher_secret", pusherSecret, "--secret", "s3cr3t", "--broadcast_adapter", "http"}

// startPusher starts one node in Pusher mode on the memory broker.
func startPusher(t *testing.T, extra ...string) *server {
	t.Helper()
	return startPusherWith(t, append(append([]string{"--broker", "memory"}, pusherArgs...), extra...)...)
}

// startPusherWith starts a node with args and waits for its Pusher endpoint.
func startPusherWith(t *testing.T, args ...string) *server {
	t.Helper()
	s := startServer(t, nil, args...)
	// Logged after the health line, where startServer stops waiting.
	waitLog(t, s, "Handle Pusher WebSocket connections at http://"+s.Main+"/app/"+pusherKey)
	return s
}

// pusherClient is a Pusher WebSocket client: frames as wsClient records
// them, server pings skipped.
type pusherClient struct {
	*wsClient
	socketID string
}

// dialPusher opens a WebSocket at path (no subprotocol) and starts reading.
func dialPusher(t *testing.T, s *server, path string, header http.Header) *pusherClient {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, resp, err := d.Dial("ws://"+s.Main+path, header)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	c := &wsClient{t: t, conn: conn, resp: resp, frames: make(chan string, 10000), closed: make(chan *websocket.CloseError, 1), pingPrefix: pusherPing}
	t.Cleanup(func() { conn.Close() })
	go c.read()
	return &pusherClient{wsClient: c}
}

var socketIDRe = regexp.MustCompile(`^\d+\.\d+$`)

// connectPusher connects to the app and checks pusher:connection_established
// byte for byte.
func connectPusher(t *testing.T, s *server, header http.Header) *pusherClient {
	t.Helper()
	c := dialPusher(t, s, pusherPath, header)
	f := c.next(5 * time.Second)
	var env struct{ Data string }
	var d struct {
		SocketID string `json:"socket_id"`
	}
	json.Unmarshal([]byte(f), &env)
	json.Unmarshal([]byte(env.Data), &d)
	want := `{"event":"pusher:connection_established","data":` + quoted(`{"socket_id":`+quoted(d.SocketID)+`,"activity_timeout":30}`) + `}`
	if f != want || !socketIDRe.MatchString(d.SocketID) {
		t.Fatalf("not a connection_established with a socket_id like ^\\d+\\.\\d+$: %s", f)
	}
	c.socketID = d.SocketID
	return c
}

const pusherPing = `{"event":"pusher:ping","data":{}}`

func (c *pusherClient) expect(want string) {
	c.t.Helper()
	if got := c.next(5 * time.Second); got != want {
		c.t.Fatalf("frame\n got: %s\nwant: %s", got, want)
	}
}

// expectPrefix checks the next frame starts with prefix and is JSON.
func (c *pusherClient) expectPrefix(prefix string) string {
	c.t.Helper()
	got := c.next(5 * time.Second)
	if !strings.HasPrefix(got, prefix) || !json.Valid([]byte(got)) {
		c.t.Fatalf("frame\n got: %s\nwant: %s...", got, prefix)
	}
	return got
}

// barrier: the server answers a client's frames in order, so the pong
// comes after any answer to the frames before it.
func (c *pusherClient) barrier() {
	c.t.Helper()
	c.send(`{"event":"pusher:ping","data":{}}`)
	c.expect(`{"event":"pusher:pong","data":{}}`)
}

// expectCloseCode waits for the close, with no frame before it.
func (c *pusherClient) expectCloseCode(code int) {
	c.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ce := <-c.closed:
			if ce.Code != code {
				c.t.Fatalf("closed with %d %q, want %d", ce.Code, ce.Text, code)
			}
			return
		case f, ok := <-c.frames:
			if ok && f != pusherPing {
				c.t.Fatalf("frame before the close: %s", f)
			}
		case <-deadline:
			c.t.Fatalf("not closed within 10s")
		}
	}
}

// pusherAuth is the app's signature of text, as an auth endpoint makes it.
func pusherAuth(text string) string {
	mac := hmac.New(sha256.New, []byte(pusherSecret))
	mac.Write([]byte(text))
	return pusherKey + ":" + hex.EncodeToString(mac.Sum(nil))
}

func subscribeFrame(channel, auth, channelData string) string {
	b, _ := json.Marshal(map[string]any{"event": "pusher:subscribe", "data": struct {
		Channel     string `json:"channel"`
		Auth        string `json:"auth,omitempty"`
		ChannelData string `json:"channel_data,omitempty"`
	}{channel, auth, channelData}})
	return string(b)
}

func succeeded(channel string) string {
	return `{"event":"pusher_internal:subscription_succeeded","data":"{}","channel":` + quoted(channel) + `}`
}

// roster is the presence subscription_succeeded of channel; members are
// id, info pairs in id order.
func roster(channel string, members ...string) string {
	var ids, hash []string
	for i := 0; i < len(members); i += 2 {
		ids = append(ids, quoted(members[i]))
		hash = append(hash, quoted(members[i])+":"+members[i+1])
	}
	data := fmt.Sprintf(`{"presence":{"count":%d,"ids":[%s],"hash":{%s}}}`, len(ids), strings.Join(ids, ","), strings.Join(hash, ","))
	return `{"event":"pusher_internal:subscription_succeeded","data":` + quoted(data) + `,"channel":` + quoted(channel) + `}`
}

func memberAdded(channel, id, info string) string {
	return `{"event":"pusher_internal:member_added","data":` + quoted(`{"user_id":`+quoted(id)+`,"user_info":`+info+`}`) + `,"channel":` + quoted(channel) + `}`
}

func memberRemoved(channel, id string) string {
	return `{"event":"pusher_internal:member_removed","data":` + quoted(`{"user_id":`+quoted(id)+`}`) + `,"channel":` + quoted(channel) + `}`
}

func (c *pusherClient) subscribePublic(channel string) {
	c.t.Helper()
	c.send(subscribeFrame(channel, "", ""))
	c.expect(succeeded(channel))
}

func (c *pusherClient) subscribePrivate(channel string) {
	c.t.Helper()
	c.send(subscribeFrame(channel, pusherAuth(c.socketID+":"+channel), ""))
	c.expect(succeeded(channel))
}

// joinPresence subscribes to a presence channel with channelData and
// checks the roster it gets.
func (c *pusherClient) joinPresence(channel, channelData, wantRoster string) {
	c.t.Helper()
	c.send(subscribeFrame(channel, pusherAuth(c.socketID+":"+channel+":"+channelData), channelData))
	c.expect(wantRoster)
}

// authError checks a pusher:subscription_error for channel: AuthError, 403.
func (c *pusherClient) authError(channel string) {
	c.t.Helper()
	f := c.expectPrefix(`{"event":"pusher:subscription_error","channel":` + quoted(channel) + `,"data":{"type":"AuthError","error":`)
	if !strings.HasSuffix(f, `,"status":403}}`) {
		c.t.Fatalf("subscription_error without status 403: %s", f)
	}
}

// signin signs in as user_data {"id":id} and checks pusher:signin_success.
func (c *pusherClient) signin(id string) {
	c.t.Helper()
	ud := `{"id":` + quoted(id) + `}`
	b, _ := json.Marshal(map[string]any{"event": "pusher:signin", "data": map[string]string{"user_data": ud, "auth": pusherAuth(c.socketID + "::user::" + ud)}})
	c.send(string(b))
	c.expect(`{"event":"pusher:signin_success","data":` + quoted(`{"user_data":`+quoted(ud)+`}`) + `}`)
	// The user's channel is subscribed for it, and confirmed as pusher-js
	// expects.
	c.expect(`{"event":"pusher_internal:subscription_succeeded","data":"{}","channel":` + quoted("#server-to-user-"+id) + `}`)
}

const pusherErrorNull = `{"event":"pusher:error","data":{"code":null,"message":`

func TestPusherConnectionEstablished(t *testing.T) {
	t.Parallel()
	s := startPusher(t)
	// AnyCable takes the sid from X-Request-ID; a socket_id must not be.
	h := http.Header{"X-Request-Id": {"111.222"}}
	a, b := connectPusher(t, s, h), connectPusher(t, s, h)
	if a.socketID == b.socketID || a.socketID == "111.222" || b.socketID == "111.222" {
		t.Errorf("socket ids %q and %q: want two distinct ids, not the X-Request-ID", a.socketID, b.socketID)
	}
	// Without the query string too.
	c := dialPusher(t, s, "/app/"+pusherKey, nil)
	c.expectPrefix(`{"event":"pusher:connection_established","data":"{\"socket_id\":`)
	a.barrier()
}

func TestPusherRefusesWrongKeyAndProtocol(t *testing.T) {
	t.Parallel()
	s := startPusher(t)
	w := dialPusher(t, s, "/app/wrong?protocol=7&client=js&version=8.6.0", nil)
	w.expect(`{"event":"pusher:error","data":{"code":4001,"message":"App key \"wrong\" not in this cluster"}}`)
	w.expectCloseCode(4001)

	p := dialPusher(t, s, "/app/"+pusherKey+"?protocol=3&client=js&version=8.6.0", nil)
	t.Logf("protocol 3: %s", p.expectPrefix(`{"event":"pusher:error","data":{"code":4007,"message":`))
	p.expectCloseCode(4007)

	connectPusher(t, s, nil).barrier()
}

func TestPusherPublicAndPrivateSubscribe(t *testing.T) {
	t.Parallel()
	s := startPusher(t)
	c := connectPusher(t, s, nil)
	c.subscribePublic("news")
	c.subscribePrivate("private-orders")

	// Missing auth, a signature of another socket, of another channel, by
	// another key, and a presence channel without channel_data.
	other := connectPusher(t, s, nil)
	c.send(subscribeFrame("private-a", "", ""))
	c.authError("private-a")
	c.send(subscribeFrame("private-b", pusherAuth(other.socketID+":private-b"), ""))
	c.authError("private-b")
	c.send(subscribeFrame("private-c", pusherAuth(c.socketID+":private-x"), ""))
	c.authError("private-c")
	c.send(subscribeFrame("private-d", "key-2:"+strings.Split(pusherAuth(c.socketID+":private-d"), ":")[1], ""))
	c.authError("private-d")
	c.send(subscribeFrame("presence-e", pusherAuth(c.socketID+":presence-e"), ""))
	c.authError("presence-e")
	c.barrier()
}

func TestPusherPresenceRoster(t *testing.T) {
	t.Parallel()
	s := startPusher(t)
	const ch = "presence-room"
	a, b, c := connectPusher(t, s, nil), connectPusher(t, s, nil), connectPusher(t, s, nil)

	a.joinPresence(ch, `{"user_id":"u1","user_info":{"name":"Ann"}}`, roster(ch, "u1", `{"name":"Ann"}`))
	// An integer user_id is its decimal text; ids sorted.
	b.joinPresence(ch, `{"user_id":2,"user_info":{"name":"Bob"}}`, roster(ch, "2", `{"name":"Bob"}`, "u1", `{"name":"Ann"}`))
	a.expect(memberAdded(ch, "2", `{"name":"Bob"}`))
	b.barrier() // the joiner does not hear of itself

	// u1 on a second socket: one member, no member_added.
	c.joinPresence(ch, `{"user_id":"u1","user_info":{"name":"Ann"}}`, roster(ch, "2", `{"name":"Bob"}`, "u1", `{"name":"Ann"}`))
	// c leaves: u1 still has a, so no member_removed.
	c.send(`{"event":"pusher:unsubscribe","data":{"channel":"presence-room"}}`)
	c.barrier()
	a.barrier()
	b.barrier()
	// a leaves too: u1 is gone, at once.
	a.send(`{"event":"pusher:unsubscribe","data":{"channel":"presence-room"}}`)
	a.barrier()
	b.expect(memberRemoved(ch, "u1"))
	b.barrier()
	a.barrier()
	c.barrier()
}

// member_removed comes at once (well within 3 s, presence_ttl left at its
// 15 s) when a member's connection goes, cleanly or not.
func TestPusherPresenceMemberRemovedOnClose(t *testing.T) {
	t.Parallel()
	s := startPusher(t)
	const ch = "presence-lobby"
	w := connectPusher(t, s, nil)
	w.joinPresence(ch, `{"user_id":"watcher","user_info":{}}`, roster(ch, "watcher", `{}`))

	for _, how := range []string{"close frame", "TCP close"} {
		c := connectPusher(t, s, nil)
		c.joinPresence(ch, `{"user_id":"gone","user_info":{"how":`+quoted(how)+`}}`,
			roster(ch, "gone", `{"how":`+quoted(how)+`}`, "watcher", `{}`))
		w.expect(memberAdded(ch, "gone", `{"how":`+quoted(how)+`}`))
		start := time.Now()
		if how == "close frame" {
			c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
		} else {
			c.conn.UnderlyingConn().Close()
		}
		if got := w.next(3 * time.Second); got != memberRemoved(ch, "gone") {
			t.Fatalf("after a %s: %s", how, got)
		}
		t.Logf("member_removed %s after a %s", time.Since(start), how)
	}
	w.barrier()
}

func TestPusherClientEvents(t *testing.T) {
	t.Parallel()
	s := startPusher(t)
	a, b := connectPusher(t, s, nil), connectPusher(t, s, nil)
	a.subscribePrivate("private-orders")
	b.subscribePrivate("private-orders")
	a.send(`{"event":"client-x","channel":"private-orders","data":{"n":1}}`)
	b.expect(`{"event":"client-x","data":{"n":1},"channel":"private-orders"}`)
	a.barrier() // not to the sender

	const ch = "presence-chat"
	a.joinPresence(ch, `{"user_id":"u1","user_info":{}}`, roster(ch, "u1", `{}`))
	b.joinPresence(ch, `{"user_id":"u2","user_info":{}}`, roster(ch, "u1", `{}`, "u2", `{}`))
	a.expect(memberAdded(ch, "u2", `{}`))
	b.send(`{"event":"client-typing","channel":"presence-chat","data":{"t":true}}`)
	a.expect(`{"event":"client-typing","data":{"t":true},"channel":"presence-chat","user_id":"u2"}`)
	b.barrier()

	// A public channel: refused; a channel the client is not on: dropped.
	a.subscribePublic("news")
	b.subscribePublic("news")
	a.send(`{"event":"client-x","channel":"news","data":{}}`)
	a.expect(pusherErrorNull + `"Client event rejected: only supported on private and presence channels"}}`)
	a.send(`{"event":"client-x","channel":"private-elsewhere","data":{}}`)
	a.barrier()
	// b got nothing of either: the next thing it gets is this.
	a.send(`{"event":"client-x","channel":"private-orders","data":{"n":2}}`)
	b.expect(`{"event":"client-x","data":{"n":2},"channel":"private-orders"}`)
}

// More than 10 client events a second: the excess is refused with 4301,
// the rest relayed in order.
func TestPusherClientEventRateLimit(t *testing.T) {
	t.Parallel()
	s := startPusher(t)
	a, b := connectPusher(t, s, nil), connectPusher(t, s, nil)
	a.subscribePrivate("private-burst")
	b.subscribePrivate("private-burst")
	start := time.Now()
	for i := 1; i <= 11; i++ {
		a.send(fmt.Sprintf(`{"event":"client-n","channel":"private-burst","data":{"i":%d}}`, i))
	}
	sent := time.Since(start)
	a.send(`{"event":"pusher:ping","data":{}}`)
	refused := 0
	for f := a.next(5 * time.Second); f != `{"event":"pusher:pong","data":{}}`; f = a.next(5 * time.Second) {
		if !strings.HasPrefix(f, `{"event":"pusher:error","data":{"code":4301,"message":`) {
			t.Fatalf("sender got %s", f)
		}
		refused++
	}
	if refused < 1 {
		t.Fatalf("11 client events in %s: none refused with 4301", sent)
	}
	last := 0
	for range 11 - refused {
		var e struct{ Data struct{ I int } }
		f := b.next(5 * time.Second)
		if json.Unmarshal([]byte(f), &e) != nil || f != fmt.Sprintf(`{"event":"client-n","data":{"i":%d},"channel":"private-burst"}`, e.Data.I) || e.Data.I <= last {
			t.Fatalf("relayed: %s (after i=%d)", f, last)
		}
		last = e.Data.I
	}
	b.barrier()
	t.Logf("11 client events sent in %s: %d refused with 4301, %d relayed", sent, refused, 11-refused)
	if relayed := 11 - refused; relayed > 10 {
		t.Errorf("%d relayed in the first second", relayed)
	}
}

func TestPusherMalformedInput(t *testing.T) {
	t.Parallel()
	s := startPusher(t)
	c := connectPusher(t, s, nil)
	other := connectPusher(t, s, nil)
	other.subscribePublic("news")
	for _, frame := range []string{
		`{not json`,
		`[]`,
		`{"event":42}`,
		`{"event":"foo:bar","data":{}}`,
		`{"event":"pusher:signin","data":{"user_data":"{\"id\":\"u2\"}","auth":"key-1:` + strings.Repeat("0", 64) + `"}}`,
	} {
		c.send(frame)
		if got := c.next(5 * time.Second); !strings.HasPrefix(got, pusherErrorNull) || !json.Valid([]byte(got)) {
			t.Fatalf("after %s: %s", frame, got)
		}
		c.barrier()
	}
	if err := c.conn.WriteMessage(websocket.BinaryMessage, []byte{0, 1, 0xff}); err != nil {
		t.Fatal(err)
	}
	if got := c.next(5 * time.Second); !strings.HasPrefix(got, pusherErrorNull) {
		t.Fatalf("after a binary frame: %s", got)
	}
	c.barrier()
	// A client's pong (an answer to the server's ping) needs no answer.
	c.send(`{"event":"pusher:pong","data":{}}`)
	c.barrier()
	// A signed sign-in still works after a bad one.
	c.signin("u2")
	c.barrier()

	// 64 KiB + 1: the transport closes with 1009.
	big := `{"event":"client-x","channel":"private-a","data":"` + strings.Repeat("x", 65536) + `"}`
	c.send(big)
	c.expectCloseCode(websocket.CloseMessageTooBig)
	other.barrier()
	publish(t, s, `{"stream":"news","data":"{\"event\":\"still\",\"data\":1}"}`, "Authorization: Bearer "+s3cr3tToken)
	other.expect(`{"event":"still","data":1,"channel":"news"}`)
}

func TestPusherShutdown(t *testing.T) {
	t.Parallel()
	s := startPusher(t)
	a, b := connectPusher(t, s, nil), connectPusher(t, s, nil)
	a.subscribePublic("news")
	b.joinPresence("presence-x", `{"user_id":"u","user_info":{}}`, roster("presence-x", "u", `{}`))
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*pusherClient{a, b} {
		f := c.expectPrefix(`{"event":"pusher:error","data":{"code":4200,`)
		if f != `{"event":"pusher:error","data":{"code":4200,"message":"Server restarting"}}` {
			t.Errorf("shutdown frame: %s", f)
		}
		c.expectCloseCode(4200)
	}
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("server did not exit after its clients left")
	}
}

func TestPusherBroadcastFromAPI(t *testing.T) {
	t.Parallel()
	s := startPusher(t)
	c := connectPusher(t, s, nil)
	c.subscribePublic("news")
	c.subscribePrivate("private-orders")
	auth := "Authorization: Bearer " + s3cr3tToken
	publish(t, s, `{"stream":"news","data":"{\"event\":\"x\",\"data\":{\"a\":1}}"}`, auth)
	c.expect(`{"event":"x","data":{"a":1},"channel":"news"}`)
	publish(t, s, `{"stream":"private-orders","data":"{\"event\":\"shipped\",\"data\":\"{\\\"id\\\":7}\"}"}`, auth)
	c.expect(`{"event":"shipped","data":"{\"id\":7}","channel":"private-orders"}`)

	// Publications without a string "event" are not delivered.
	for _, data := range []string{`{\"a\":2}`, `hello`, `{\"event\":5,\"data\":1}`, `[1]`} {
		publish(t, s, `{"stream":"news","data":"`+data+`"}`, auth)
	}
	publish(t, s, `{"stream":"news","data":"{\"event\":\"y\",\"data\":\"s\"}"}`, auth)
	c.expect(`{"event":"y","data":"s","channel":"news"}`)

	// sendToUser: #server-to-user-<id> reaches the signed-in connection.
	c.signin("u7")
	c.barrier()
	publish(t, s, `{"stream":"#server-to-user-u7","data":"{\"event\":\"hi\",\"data\":{}}"}`, auth)
	c.expect(`{"event":"hi","data":{},"channel":"#server-to-user-u7"}`)
	c.barrier()
}

// With public streams on, an Action Cable client can subscribe by name to
// a Pusher public channel, not to the channels Pusher authorizes itself.
func TestPusherChannelsReservedFromPublicStreams(t *testing.T) {
	t.Parallel()
	s := startPusher(t, "--public_streams", "--noauth")
	c := dialWS(t, s, dialOpts{})
	c.welcome()
	c.subscribe("news")
	for _, name := range []string{"private-orders", "presence-room", "#server-to-user-u1"} {
		id := identifier(name)
		c.send(subscribeCmd(id))
		c.expect(`{"type":"reject_subscription","identifier":` + quoted(id) + `}`)
	}
}

// /health reports Pusher mode: the app, its open connections; never the
// secret.
func TestPusherHealth(t *testing.T) {
	t.Parallel()
	s := startPusher(t)
	connectPusher(t, s, nil)
	connectPusher(t, s, nil)
	var body string
	waitUntil(t, "two Pusher clients on /health", func() bool {
		resp, err := httpClient.Get("http://" + s.Main + "/health")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return strings.Contains(body, `"pusher":{"app_id":"app-1","clients":2}`)
	})
	if strings.Contains(body, pusherSecret) {
		t.Errorf("the Pusher secret on /health: %s", body)
	}
}
