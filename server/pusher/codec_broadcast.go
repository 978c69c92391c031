package pusher

import (
	"encoding/json"

	"github.com/cablehub/cablehub/server/protocol"
)

// presenceMessage is the message of a session's presence frame: the info
// it gets after joining (the roster) or an error, or, published, a
// member's join or leave.
type presenceMessage struct {
	Type    string `json:"type"`
	Total   int    `json:"total"`
	Reason  string `json:"reason"`
	Records []struct {
		ID   string          `json:"id"`
		Info json.RawMessage `json:"info"`
	} `json:"records"`
	ID   string          `json:"id"`
	Info json.RawMessage `json:"info"`
}

// presenceFrame frames a presence message for channel: the roster as
// pusher_internal:subscription_succeeded, an error as a subscription
// error.
func presenceFrame(channel string, raw json.RawMessage) []byte {
	var m presenceMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil
	}
	switch m.Type {
	case "info":
		return internalEvent("pusher_internal:subscription_succeeded", channel, roster(&m))
	case "error":
		msg := "Presence unavailable on " + channel
		if m.Reason != "" {
			msg += ": " + m.Reason
		}
		return subscriptionError(channel, "PresenceError", msg, 503)
	}
	return nil
}

// roster is the data of a presence channel's subscription_succeeded:
// {"presence":{"count":N,"ids":[..],"hash":{id: info or null}}}.
func roster(m *presenceMessage) string {
	ids := make([]string, 0, len(m.Records))
	hash := make(map[string]json.RawMessage, len(m.Records))
	for _, r := range m.Records {
		ids = append(ids, r.ID)
		hash[r.ID] = orNull(r.Info)
	}
	type presence struct {
		Count int                        `json:"count"`
		IDs   []string                   `json:"ids"`
		Hash  map[string]json.RawMessage `json:"hash"`
	}
	out, _ := json.Marshal(struct {
		Presence presence `json:"presence"`
	}{presence{m.Total, ids, hash}})
	return string(out)
}

// memberData is the data of member_added and member_removed.
type memberData struct {
	UserID   string          `json:"user_id"`
	UserInfo json.RawMessage `json:"user_info,omitempty"`
}

// AppendBroadcast appends the Pusher frame of publication p for the
// channel named identifier (see Codec): an event, a member's join or
// leave, or the end of a terminated user's connection. A publication
// that is none of these appends nothing and gives nil for an empty dst,
// which the session takes as nothing to send.
func (Codec) AppendBroadcast(dst []byte, identifier string, p *protocol.Publication, message []byte) []byte {
	switch p.BroadcastType {
	case "presence":
		var m presenceMessage
		if json.Unmarshal(message, &m) != nil {
			return dst
		}
		data := memberData{UserID: m.ID}
		event := "pusher_internal:member_removed"
		if m.Type == "join" {
			event, data.UserInfo = "pusher_internal:member_added", m.Info
		}
		text, _ := json.Marshal(data)
		return append(dst, internalEvent(event, identifier, string(text))...)
	case terminateType:
		return append(dst, terminateFrame...)
	case "":
	default:
		return dst
	}
	var e clientEvent
	if json.Unmarshal(message, &e) != nil || e.Event == "" {
		return dst
	}
	dst = append(dst, `{"event":`...)
	dst = appendJSONString(dst, e.Event)
	dst = append(dst, `,"data":`...)
	dst = append(dst, orNull(e.Data)...)
	dst = append(dst, `,"channel":`...)
	dst = appendJSONString(dst, identifier)
	if e.UserID != "" {
		dst = append(dst, `,"user_id":`...)
		dst = appendJSONString(dst, e.UserID)
	}
	return append(dst, '}')
}
