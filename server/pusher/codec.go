package pusher

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/cablehub/cablehub/server/protocol"
)

// Codec is the Pusher Channels wire format (protocol 7) as a session
// codec. A session's identifier is the Pusher channel name itself, so a
// publication is framed without parsing anything but its message.
//
// Client events map onto commands: pusher:subscribe and
// pusher:unsubscribe onto subscribe and unsubscribe (the subscribe data,
// with auth and channel_data, travels as the command's data for the
// Router), client-* events onto whisper, pusher:ping and pusher:pong onto
// ping and pong. Server messages map back: the welcome is
// pusher:connection_established, a confirmation
// pusher_internal:subscription_succeeded (for a presence channel the
// presence info the session gets after joining carries it, with the
// members), a rejection pusher:subscription_error, presence events
// pusher_internal:member_added and member_removed, a disconnect a
// pusher:error whose code tells pusher-js whether to reconnect.
//
// A publication must be an object with a string "event" (what the HTTP
// API, the SDKs and client events publish); others are not delivered on
// Pusher connections, as Pusher has no frame for them. Its data is sent
// as it was published (a string from the HTTP API, an object from
// /api/publish or a client event).
type Codec struct {
	// ActivityTimeout is the activity_timeout told to clients, in
	// seconds: how long a client waits in silence before it pings.
	ActivityTimeout int
}

// Channel name prefixes with a meaning in the protocol.
const (
	privatePrefix  = "private-"
	presencePrefix = "presence-"
	clientPrefix   = "client-"
	// userPrefix is the stream of a signed-in user's own events
	// (the SDKs' sendToUser): no client can subscribe to it by name.
	userPrefix = "#server-to-user-"
)

// terminateType is the BroadcastType of a publication on a user's stream
// that closes the user's connections (terminate_connections).
const terminateType = "pusher:terminate"

// Frames with no variable part.
var (
	pongFrame      = []byte(`{"event":"pusher:pong","data":{}}`)
	pingFrame      = []byte(`{"event":"pusher:ping","data":{}}`)
	terminateFrame = []byte(`{"event":"pusher:error","data":{"code":4009,"message":"Connection terminated by the application"}}`)
)

// envelope is a client frame.
type envelope struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

// subscribeData is the data of pusher:subscribe (and of the subscription
// a sign-in makes to the user's stream).
type subscribeData struct {
	Channel     string `json:"channel"`
	Auth        string `json:"auth"`
	ChannelData string `json:"channel_data"`
	UserData    string `json:"user_data"`
}

var errUnsupported = errors.New("pusher: unsupported event")

// Decode maps a client frame onto a command (see Codec).
func (Codec) Decode(frame []byte) (*protocol.Command, error) {
	var e envelope
	if err := json.Unmarshal(frame, &e); err != nil {
		return nil, err
	}
	switch {
	case e.Event == "pusher:subscribe" || e.Event == "pusher:unsubscribe":
		var d subscribeData
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return nil, err
		}
		if e.Event == "pusher:unsubscribe" {
			return &protocol.Command{Command: "unsubscribe", Identifier: d.Channel}, nil
		}
		return &protocol.Command{Command: "subscribe", Identifier: d.Channel, Data: e.Data}, nil
	case e.Event == "pusher:ping":
		return &protocol.Command{Command: "ping"}, nil
	case e.Event == "pusher:pong":
		return &protocol.Command{Command: "pong"}, nil
	case strings.HasPrefix(e.Event, clientPrefix) && e.Channel != "":
		data, err := json.Marshal(clientEvent{Event: e.Event, Data: orNull(e.Data)})
		if err != nil {
			return nil, err
		}
		return &protocol.Command{Command: "whisper", Identifier: e.Channel, Data: data}, nil
	}
	return nil, errUnsupported
}

// clientEvent is a client event as published to the channel's other
// subscribers; UserID names the sender on a presence channel.
type clientEvent struct {
	Event  string          `json:"event"`
	Data   json.RawMessage `json:"data"`
	UserID string          `json:"user_id,omitempty"`
}

func orNull(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	return raw
}

// TagWhisper adds the sender's user_id to a client event of a presence
// channel, as Pusher does (pusher-js passes it to handlers as
// metadata.user_id).
func (Codec) TagWhisper(data []byte, member string) []byte {
	var e clientEvent
	if err := json.Unmarshal(data, &e); err != nil {
		return data
	}
	e.UserID = member
	out, err := json.Marshal(e)
	if err != nil {
		return data
	}
	return out
}

// serverMessage is an Action Cable server message, as sessions compose
// them.
type serverMessage struct {
	Type       string          `json:"type"`
	Identifier string          `json:"identifier"`
	Message    json.RawMessage `json:"message"`
	SID        string          `json:"sid"`
	Reason     string          `json:"reason"`
	Reconnect  *bool           `json:"reconnect"`
}

// Encode maps a server message onto its Pusher frame, nil for those
// Pusher has no frame for (history, a presence channel's confirmation).
func (c Codec) Encode(frame []byte) []byte {
	var m serverMessage
	if err := json.Unmarshal(frame, &m); err != nil {
		return nil
	}
	switch m.Type {
	case "welcome":
		return c.established(m.SID)
	case "ping":
		return pingFrame
	case "pong":
		return pongFrame
	case "confirm_subscription":
		if strings.HasPrefix(m.Identifier, presencePrefix) {
			return nil // the presence info confirms it, with the members
		}
		return internalEvent("pusher_internal:subscription_succeeded", m.Identifier, "{}")
	case "reject_subscription":
		return subscriptionError(m.Identifier, "AuthError", "Subscription to "+m.Identifier+" refused: invalid or missing authorization, or an invalid channel name", 403)
	case "presence":
		return presenceFrame(m.Identifier, m.Message)
	case "disconnect":
		reconnect := m.Reconnect == nil || *m.Reconnect
		return errorFrame(disconnectCode(m.Reason, reconnect), disconnectMessage(m.Reason))
	}
	return nil
}

func (c Codec) established(socketID string) []byte {
	data := `{"socket_id":` + strconv.Quote(socketID) + `,"activity_timeout":` + strconv.Itoa(c.ActivityTimeout) + `}`
	b := append([]byte(`{"event":"pusher:connection_established","data":`), strconv.Quote(data)...)
	return append(b, '}')
}

// internalEvent frames event on channel with data, a JSON text sent as a
// string (as Pusher sends every internal event's data).
func internalEvent(event, channel, data string) []byte {
	b := append([]byte(`{"event":`), strconv.Quote(event)...)
	b = append(b, `,"data":`...)
	b = appendJSONString(b, data)
	b = append(b, `,"channel":`...)
	b = appendJSONString(b, channel)
	return append(b, '}')
}

// subscriptionError tells pusher-js a subscription failed: it routes the
// event to the channel, whose pusher:subscription_error handlers (and
// Laravel Echo's error callbacks) run.
func subscriptionError(channel, kind, msg string, status int) []byte {
	data, _ := json.Marshal(struct {
		Type   string `json:"type"`
		Error  string `json:"error"`
		Status int    `json:"status"`
	}{kind, msg, status})
	b := append([]byte(`{"event":"pusher:subscription_error","channel":`), appendJSONString(nil, channel)...)
	b = append(b, `,"data":`...)
	b = append(b, data...)
	return append(b, '}')
}

// errorFrame is pusher:error with code (0 for none: JSON null, an error
// that does not end the connection).
func errorFrame(code int, msg string) []byte {
	b := []byte(`{"event":"pusher:error","data":{"code":`)
	if code == 0 {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, int64(code), 10)
	}
	b = append(b, `,"message":`...)
	b = appendJSONString(b, msg)
	return append(b, "}}"...)
}

// Close codes of the Pusher protocol: 4000-4099 the client must not
// reconnect, 4100-4199 reconnect after backing off, 4200-4299 reconnect
// at once.
const (
	codeUnknownApp   = 4001
	codeProtocol     = 4007
	codeUnauthorized = 4009
	codeOverCapacity = 4100
	codeReconnect    = 4200
	codeNoPong       = 4201
	codeClientEvents = 4301
)

// disconnectCode is the close code of a disconnect with reason.
func disconnectCode(reason string, reconnect bool) int {
	switch {
	case reason == protocol.ReasonNoPong:
		return codeNoPong
	case reason == protocol.ReasonTooSlow || reason == protocol.ReasonTooManyConnections:
		return codeOverCapacity
	case reconnect:
		return codeReconnect
	}
	return codeUnauthorized
}

func disconnectMessage(reason string) string {
	switch reason {
	case protocol.ReasonServerRestart:
		return "Server restarting"
	case protocol.ReasonNoPong:
		return "Pong reply not received"
	case protocol.ReasonTooSlow:
		return "Client too slow: messages were not read"
	case protocol.ReasonTooManyConnections:
		return "Over connection limit"
	case "":
		return "Closed by the server"
	}
	return "Closed by the server: " + reason
}

// closeCodeOf reads the code of a pusher:error frame errorFrame built
// (the last frame a session sends as it closes), 0 if frame is none.
func closeCodeOf(frame []byte) int {
	const head = `{"event":"pusher:error","data":{"code":`
	if !bytes.HasPrefix(frame, []byte(head)) || len(frame) < len(head)+4 {
		return 0
	}
	code, err := strconv.Atoi(string(frame[len(head) : len(head)+4]))
	if err != nil || code < 4000 || code > 4999 {
		return 0
	}
	return code
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}
