package pusher

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cablehub/cablehub/server/node"
	"github.com/cablehub/cablehub/server/protocol"
)

// Client events a connection may send per ClientEventWindow (Pusher's
// limit: 10 a second); past it they are refused with a pusher:error of
// code 4301 and not relayed.
const (
	ClientEventLimit  = 10
	ClientEventWindow = time.Second
)

// conn is a Pusher WebSocket as a node.Connection: the session's frames
// pass through to the socket, and the client's frames to the session,
// after what only the protocol itself knows: a frame that is not a
// Pusher event, or an event Pusher does not define, is answered with a
// pusher:error (code null) and the connection keeps working; client
// events are refused on public channels and beyond ClientEventLimit; a
// sign-in is verified here and answered, then subscribes the session to
// the user's stream. It also gives the close of a session the Pusher
// close code of its last frame, and closes a connection whose user was
// terminated (terminate_connections publishes on the user's stream).
type conn struct {
	node.Connection
	app      *App
	socketID string
	// handle is the session's; the fields below are the reader's alone
	// (Serve calls onFrame one frame at a time).
	handle      func([]byte)
	signedIn    bool
	windowStart int64
	inWindow    int
	// events counts what the connection's clients do (nil: not counted);
	// clients, when set, the open connections.
	events  *Metrics
	clients *atomic.Int64
	// now is the rate limit's clock, in unix nanoseconds (nil: time.Now).
	now func() int64
}

// nextSocketID is the session's sid generator (node.SessionOptions.NewSID):
// the connection learns its socket_id, which sign-ins sign, as the node
// takes it.
func (c *conn) nextSocketID() string {
	c.socketID = NewSocketID()
	return c.socketID
}

// Send passes frame on, unless it is the end of a terminated user.
func (c *conn) Send(frame, slow []byte) bool {
	if len(frame) == len(terminateFrame) && bytes.Equal(frame, terminateFrame) {
		c.Close(codeUnauthorized, "terminated", frame)
		return false
	}
	return c.Connection.Send(frame, slow)
}

// Close closes with the Pusher code of last, a pusher:error, when it has
// one (a session's disconnect), else with code.
func (c *conn) Close(code int, reason string, last []byte) {
	if pc := closeCodeOf(last); pc != 0 {
		code = pc
	}
	c.Connection.Close(code, reason, last)
}

// Serve starts reading the client's frames (see conn).
func (c *conn) Serve(handle func([]byte), end func()) {
	c.handle = handle
	closed := c.events.opened()
	if c.clients != nil {
		c.clients.Add(1)
		counted := closed
		closed = func() {
			c.clients.Add(-1)
			counted()
		}
	}
	if end != nil {
		sessionEnd := end
		end = func() {
			closed()
			sessionEnd()
		}
	} else {
		end = closed
	}
	if handle == nil {
		c.Connection.Serve(nil, end)
		return
	}
	c.Connection.Serve(c.onFrame, end)
}

func (c *conn) onFrame(frame []byte) {
	var e envelope
	if err := json.Unmarshal(frame, &e); err != nil || e.Event == "" {
		c.refuse("Invalid message: a JSON object with a string \"event\" is expected")
		return
	}
	switch {
	case e.Event == "pusher:subscribe" || e.Event == "pusher:unsubscribe" ||
		e.Event == "pusher:ping" || e.Event == "pusher:pong":
		c.handle(frame)
	case e.Event == "pusher:signin":
		c.signin(e.Data)
	case strings.HasPrefix(e.Event, clientPrefix):
		c.clientEvent(&e, frame)
	default:
		c.refuse("Unsupported event: " + e.Event)
	}
}

// refuse answers a client frame with a pusher:error that keeps the
// connection open.
func (c *conn) refuse(msg string) {
	c.events.refused()
	c.Connection.Send(errorFrame(0, msg), nil)
}

// clientEvent relays a client event through the session (which drops it
// unless the client is subscribed to the channel), within the rate
// limit and on private and presence channels only.
func (c *conn) clientEvent(e *envelope, frame []byte) {
	if !strings.HasPrefix(e.Channel, privatePrefix) && !strings.HasPrefix(e.Channel, presencePrefix) {
		c.refuse("Client event rejected: only supported on private and presence channels")
		return
	}
	now := time.Now().UnixNano()
	if c.now != nil {
		now = c.now()
	}
	if now-c.windowStart >= int64(ClientEventWindow) {
		c.windowStart, c.inWindow = now, 0
	}
	if c.inWindow >= ClientEventLimit {
		c.events.refused()
		c.Connection.Send(errorFrame(codeClientEvents, "Client event rejected: rate limit exceeded"), nil)
		return
	}
	c.inWindow++
	c.events.clientEvent()
	c.handle(frame)
}

// signinData is the data of pusher:signin.
type signinData struct {
	UserData string `json:"user_data"`
	Auth     string `json:"auth"`
}

// signin verifies a pusher:signin, answers pusher:signin_success, and
// subscribes the session to the user's stream (the Router checks the
// signature again: a client that sends that subscription itself gets
// nothing more than by signing in).
func (c *conn) signin(raw json.RawMessage) {
	var d signinData
	if err := json.Unmarshal(raw, &d); err != nil {
		c.refuse("Invalid pusher:signin: data must hold user_data and auth")
		return
	}
	if c.signedIn {
		c.refuse("Already signed in")
		return
	}
	id, err := userID(d.UserData)
	if err != nil || !c.app.VerifyUser(c.socketID, d.UserData, d.Auth) {
		c.refuse("Sign-in refused: invalid signature or user_data without an id")
		return
	}
	c.signedIn = true
	c.events.signin()
	data, _ := json.Marshal(map[string]string{"user_data": d.UserData})
	b := append([]byte(`{"event":"pusher:signin_success","data":`), appendJSONString(nil, string(data))...)
	c.Connection.Send(append(b, '}'), nil)
	sub, _ := json.Marshal(struct {
		Event string        `json:"event"`
		Data  subscribeData `json:"data"`
	}{"pusher:subscribe", subscribeData{Channel: userPrefix + id, Auth: d.Auth, UserData: d.UserData}})
	c.handle(sub)
}

// TerminatePublication is the publication that closes every connection
// signed in as userID, on every node.
func TerminatePublication(userID string) protocol.Publication {
	return protocol.Publication{Stream: userPrefix + userID, Data: "{}", BroadcastType: terminateType, Transient: true}
}
