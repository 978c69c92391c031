// Package sse serves Action Cable sessions over Server-Sent Events, as
// AnyCable's /events endpoint does: a GET names its subscription in the
// query (or a POST sends subscribe commands, one JSON per line), and the
// server's messages come back as events of a text/event-stream body.
package sse

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/cablehub/cablehub/server/protocol"
)

// Codec writes a session's messages as Server-Sent Events (a node.Codec).
// A message with a type ("welcome", "confirm_subscription", "ping",
// "disconnect", ...) is an event of that name whose data is the whole
// message; a publication is an unnamed event, which EventSource dispatches
// as "message", carrying an id "<offset>/<epoch>/<stream>" when the broker
// stamped it, so a reconnecting client resumes from it (Last-Event-ID).
//
// With Envelope false (GET requests) a publication's data is its payload
// alone: a JSON string as the raw string, anything else as compact JSON.
// With Envelope true (POST requests, which may subscribe to several
// channels) it is the whole Action Cable message, identifier included.
// Clients send nothing over this transport, so Decode refuses everything.
type Codec struct {
	Envelope bool
}

// retryForever tells EventSource not to reconnect: sent with a disconnect
// that says not to reconnect. It is the longest delay JavaScript timers
// take (2^31-1 ms, about 24.8 days), not AnyCable's year (31536000000):
// EventSources written in JavaScript (the npm eventsource package, the
// polyfills) wait with setTimeout, which runs a longer delay after 1 ms,
// so a year made them reconnect at once.
const retryForever = "retry: 2147483647\n"

// Decode refuses: an SSE client has no way to send.
func (Codec) Decode([]byte) (*protocol.Command, error) {
	return nil, errNoInput
}

// Encode writes a server message (Action Cable JSON) as one event.
func (c Codec) Encode(frame []byte) []byte {
	typ, ok := messageType(frame)
	if !ok {
		// A transmission of the App's: not composed by us.
		var m struct {
			Type    string          `json:"type"`
			Message json.RawMessage `json:"message"`
		}
		if json.Unmarshal(frame, &m) != nil {
			return appendEvent(nil, "", frame)
		}
		typ = m.Type
		if typ == "" && !c.Envelope && len(m.Message) > 0 {
			return appendEvent(nil, "", payloadText(m.Message))
		}
	}
	out := appendEvent(nil, typ, frame)
	if typ == "disconnect" && bytes.Contains(frame, []byte(`"reconnect":false`)) {
		out = append(out[:len(out)-1], retryForever+"\n"...)
	}
	return out
}

var errNoInput = errors.New("sse: clients send nothing over Server-Sent Events")

// AppendBroadcast writes publication p, for a subscription under
// identifier, as one event.
func (c Codec) AppendBroadcast(dst []byte, identifier string, p *protocol.Publication, message []byte) []byte {
	var data []byte
	if c.Envelope || p.BroadcastType != "" {
		data = protocol.AppendBroadcast(nil, identifier, p, message)
	} else {
		data = payloadText(message)
	}
	dst = appendData(dst, p.BroadcastType, data)
	if p.Epoch != "" {
		dst = append(dst, "id: "...)
		dst = strconv.AppendUint(dst, p.Offset, 10)
		dst = append(dst, '/')
		dst = append(dst, p.Epoch...)
		dst = append(dst, '/')
		dst = appendLine(dst, p.Stream)
		dst = append(dst, '\n')
	}
	return append(dst, '\n')
}

// appendEvent appends an event named typ ("" for none) with data.
func appendEvent(dst []byte, typ string, data []byte) []byte {
	return append(appendData(dst, typ, data), '\n')
}

// appendData appends the event line (when typ is set) and data lines:
// every line break of data (CRLF, CR or LF) starts a new data line, as the
// format requires.
func appendData(dst []byte, typ string, data []byte) []byte {
	if typ != "" {
		dst = append(dst, "event: "...)
		dst = appendLine(dst, typ)
		dst = append(dst, '\n')
	}
	dst = append(dst, "data: "...)
	for i := 0; i < len(data); i++ {
		switch b := data[i]; b {
		case '\r':
			if i+1 < len(data) && data[i+1] == '\n' {
				i++
			}
			dst = append(dst, "\ndata: "...)
		case '\n':
			dst = append(dst, "\ndata: "...)
		default:
			dst = append(dst, b)
		}
	}
	return append(dst, '\n')
}

// appendLine appends s with line breaks turned into spaces: an event name
// or id is one line.
func appendLine(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b == '\r' || b == '\n' {
			b = ' '
		}
		dst = append(dst, b)
	}
	return dst
}

// payloadText is the data of a publication for a GET client: message (a
// JSON value) as compact JSON, or the string itself when it is a JSON
// string.
func payloadText(message []byte) []byte {
	if len(message) > 0 && message[0] == '"' {
		var s string
		if json.Unmarshal(message, &s) == nil {
			return []byte(s)
		}
	}
	var buf bytes.Buffer
	if json.Compact(&buf, message) == nil {
		return buf.Bytes()
	}
	return message
}

// messageType reads the type of a message composed by the protocol
// package, which starts with it: {"type":"<name>",... (ok false for any
// other message).
func messageType(frame []byte) (string, bool) {
	const prefix = `{"type":"`
	if !bytes.HasPrefix(frame, []byte(prefix)) {
		return "", false
	}
	rest := frame[len(prefix):]
	end := bytes.IndexByte(rest, '"')
	if end <= 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return "", false
	}
	return string(rest[:end]), true
}
