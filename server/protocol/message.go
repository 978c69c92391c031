package protocol

import (
	"encoding/json"
	"strconv"
)

// EncodeMessage turns a publication's data into the "message" value clients
// receive, exactly as AnyCable does: data that is valid JSON (other than
// null) is decoded and re-encoded by encoding/json, so object keys come out
// sorted, numbers as float64 and <, >, & escaped; anything else becomes a
// JSON string. Clients written against AnyCable see the same bytes.
//
// It runs once per publication, not per subscriber.
func EncodeMessage(data string) []byte {
	var v any
	if err := json.Unmarshal([]byte(data), &v); err == nil && v != nil {
		if out, err := json.Marshal(v); err == nil {
			return out
		}
	}
	return appendString(nil, data)
}

// Command is a client frame: {"command":..,"identifier":..,"data":..}.
type Command struct {
	Command    string          `json:"command"`
	Identifier string          `json:"identifier"`
	Data       json.RawMessage `json:"data,omitempty"`
	History    json.RawMessage `json:"history,omitempty"`
	Presence   json.RawMessage `json:"presence,omitempty"`
}

// ParseCommand decodes a client frame. Wrong field types (a numeric
// identifier, say) are an error like malformed JSON. Plain subscribe and
// unsubscribe commands take a faster path with the same result
// (parsePlainCommand).
func ParseCommand(frame []byte) (*Command, error) {
	if c, ok := parsePlainCommand(frame); ok {
		return c, nil
	}
	var c Command
	if err := json.Unmarshal(frame, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// The server messages below are built by hand, in AnyCable's key order.

// Welcome is {"type":"welcome","sid":..}; with restored ids it also carries
// "restored":true and "restored_ids".
func Welcome(sid string, restoredIDs []string) []byte {
	b := append([]byte(`{"type":"welcome","sid":`), appendString(nil, sid)...)
	if restoredIDs != nil {
		b = append(b, `,"restored":true,"restored_ids":`...)
		ids, _ := json.Marshal(restoredIDs)
		b = append(b, ids...)
	}
	return append(b, '}')
}

// Ping is {"type":"ping","message":<timestamp>}.
func Ping(ts int64) []byte {
	b := []byte(`{"type":"ping","message":`)
	b = appendInt(b, ts)
	return append(b, '}')
}

// Pong answers a client's {"command":"ping"}.
func Pong() []byte { return []byte(`{"type":"pong"}`) }

// Confirm is confirm_subscription for identifier.
func Confirm(identifier string) []byte { return typed("confirm_subscription", identifier) }

// Reject is reject_subscription for identifier.
func Reject(identifier string) []byte { return typed("reject_subscription", identifier) }

// ConfirmHistory is confirm_history for identifier.
func ConfirmHistory(identifier string) []byte { return typed("confirm_history", identifier) }

// RejectHistory is reject_history for identifier.
func RejectHistory(identifier string) []byte { return typed("reject_history", identifier) }

func typed(kind, identifier string) []byte {
	b := append([]byte(`{"type":"`), kind...)
	b = append(b, `","identifier":`...)
	b = appendString(b, identifier)
	return append(b, '}')
}

// Disconnect reasons, as AnyCable names them.
const (
	ReasonUnauthorized  = "unauthorized"
	ReasonTokenExpired  = "token_expired"
	ReasonServerRestart = "server_restart"
	ReasonRemote        = "remote"
	ReasonNoPong        = "no_pong"
	ReasonTooSlow       = "too_slow"
	// ReasonStreamGap: a subscription missed publications that history
	// cannot give back; the client reconnects and learns which by its
	// history request's reject_history.
	ReasonStreamGap = "stream_gap"
	// ReasonTooManyConnections: the node had --max-conn connections open;
	// the client reconnects later, through the load balancer to any node.
	ReasonTooManyConnections = "too_many_connections"
	// ReasonStreamUnavailable: the node could not listen to a stream the
	// client subscribed to (its pub/sub is down or did not confirm in
	// time); the client reconnects and subscribes again.
	ReasonStreamUnavailable = "stream_unavailable"
)

// Disconnect is {"type":"disconnect","reason":..,"reconnect":..}; reconnect
// is always present.
func Disconnect(reason string, reconnect bool) []byte {
	b := append([]byte(`{"type":"disconnect","reason":`), appendString(nil, reason)...)
	if reconnect {
		return append(b, `,"reconnect":true}`...)
	}
	return append(b, `,"reconnect":false}`...)
}

// Transmission is a message to one subscription, as a channel's transmit
// sends it: {"identifier":..,"message":..}.
func Transmission(identifier string, message []byte) []byte {
	b := append([]byte(`{"identifier":`), appendString(nil, identifier)...)
	b = append(b, `,"message":`...)
	b = append(b, message...)
	return append(b, '}')
}

// Presence wraps a presence payload: {"type":"presence","identifier":..,"message":..}.
func Presence(identifier string, message []byte) []byte {
	b := append([]byte(`{"type":"presence","identifier":`), appendString(nil, identifier)...)
	b = append(b, `,"message":`...)
	b = append(b, message...)
	return append(b, '}')
}

func appendInt(b []byte, n int64) []byte {
	return strconv.AppendInt(b, n, 10)
}
