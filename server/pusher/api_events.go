package pusher

// This file holds the HTTP API's event endpoints: POST /apps/<id>/events
// and POST /apps/<id>/batch_events, and the decoding of their bodies into
// publications.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/cablehub/cablehub/server/protocol"
)

// Pusher's limits on events.
const (
	maxEventName     = 200      // bytes of an event name
	maxEventData     = 10 << 10 // bytes of an event's data (of the string, for string data)
	maxEventChannels = 100      // channels of one event
	maxBatchEvents   = 10       // events of one batch
)

// eventRequest is one event as a client sends it, in the body of
// /events or as an item of /batch_events.
type eventRequest struct {
	Name     string          `json:"name"`
	Data     json.RawMessage `json:"data"`
	Channel  *string         `json:"channel"`
	Channels []string        `json:"channels"`
	SocketID *string         `json:"socket_id"`
	Info     string          `json:"info"`
}

// event is a validated event.
type event struct {
	name     string
	data     json.RawMessage // any JSON value but null, as sent
	channels []string        // 1 to maxEventChannels, valid, without repeats
	socketID string          // "" for none
	info     infoSet
}

// decodeEvent decodes and validates the body of POST /events (see
// eventRequest.validate); its errors are the answers to give.
func decodeEvent(body []byte) (event, *RequestError) {
	var er eventRequest
	if rerr := decodeJSON(body, &er); rerr != nil {
		return event{}, rerr
	}
	return er.validate(false)
}

// decodeBatch decodes and validates the body of POST /batch_events,
// {"batch":[<event>, ...]}: 1 to maxBatchEvents events, each with one
// channel (see eventRequest.validate). An event's error names its index.
func decodeBatch(body []byte) ([]event, *RequestError) {
	var br struct {
		Batch []eventRequest `json:"batch"`
	}
	if rerr := decodeJSON(body, &br); rerr != nil {
		return nil, rerr
	}
	if len(br.Batch) == 0 {
		return nil, badRequest("Missing events: batch must hold 1 to %d events", maxBatchEvents)
	}
	if len(br.Batch) > maxBatchEvents {
		return nil, badRequest("Batch too large: %d events, the limit is %d", len(br.Batch), maxBatchEvents)
	}
	evs := make([]event, len(br.Batch))
	for i := range br.Batch {
		ev, rerr := br.Batch[i].validate(true)
		if rerr != nil {
			return nil, &RequestError{Status: rerr.Status, Message: fmt.Sprintf("batch[%d]: %s", i, rerr.Message)}
		}
		evs[i] = ev
	}
	return evs, nil
}

// validate checks an event as Pusher does: a name of 1 to maxEventName
// bytes; data, any JSON value but null, of at most maxEventData bytes
// (413 over it; a string counts its decoded bytes); channel or channels
// (not both; in a batch only channel), 1 to maxEventChannels valid names
// (see validChannel), repeats dropped; socket_id, when given, "<digits>.<digits>";
// info, user_count (all channels presence-*) and subscription_count.
func (er *eventRequest) validate(batch bool) (event, *RequestError) {
	ev := event{name: er.Name, data: er.Data}
	if er.Name == "" {
		return ev, badRequest("Missing event name (name)")
	}
	if len(er.Name) > maxEventName {
		return ev, badRequest("Event name too long: %d bytes, the limit is %d", len(er.Name), maxEventName)
	}
	if rerr := checkData(er.Data); rerr != nil {
		return ev, rerr
	}
	channels, rerr := er.channels(batch)
	if rerr != nil {
		return ev, rerr
	}
	ev.channels = channels
	if er.SocketID != nil {
		if !validSocketID(*er.SocketID) {
			return ev, badRequest("Invalid socket_id %s: expected <digits>.<digits>", quoteShort(*er.SocketID))
		}
		ev.socketID = *er.SocketID
	}
	if ev.info, rerr = parseInfo(er.Info, true); rerr != nil {
		return ev, rerr
	}
	return ev, nil
}

// channels returns the event's channels, checked and without repeats.
func (er *eventRequest) channels(batch bool) ([]string, *RequestError) {
	var list []string
	switch {
	case er.Channel != nil && er.Channels != nil:
		return nil, badRequest("Give either channel or channels, not both")
	case batch && er.Channels != nil:
		return nil, badRequest("A batch event has one channel (channel), not channels")
	case er.Channel != nil:
		list = []string{*er.Channel}
	default:
		list = er.Channels
	}
	if len(list) == 0 {
		if batch {
			return nil, badRequest("Missing channel")
		}
		return nil, badRequest("Missing channels: give channel or channels")
	}
	if len(list) > maxEventChannels {
		return nil, badRequest("Too many channels: %d, the limit is %d", len(list), maxEventChannels)
	}
	seen := make(map[string]bool, len(list))
	out := make([]string, 0, len(list))
	for _, ch := range list {
		if !validChannel(ch) {
			return nil, badRequest("Invalid channel name %s", quoteShort(ch))
		}
		if !seen[ch] {
			seen[ch] = true
			out = append(out, ch)
		}
	}
	return out, nil
}

// checkData refuses missing or null data (400) and data over maxEventData
// bytes (413).
func checkData(data json.RawMessage) *RequestError {
	if len(data) == 0 || string(data) == "null" {
		return badRequest("Missing event data (data)")
	}
	size := len(data)
	if data[0] == '"' {
		var s string
		if json.Unmarshal(data, &s) == nil {
			size = len(s)
		}
	}
	if size > maxEventData {
		return &RequestError{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("Event data too large: %d bytes, the limit is %d", size, maxEventData)}
	}
	return nil
}

// validSocketID reports whether s is "<digits>.<digits>".
func validSocketID(s string) bool {
	dot := strings.IndexByte(s, '.')
	if dot <= 0 || dot == len(s)-1 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if i != dot && (s[i] < '0' || s[i] > '9') {
			return false
		}
	}
	return true
}

// quoteShort quotes s for a message, cut to 64 bytes.
func quoteShort(s string) string {
	if len(s) > 64 {
		return strconv.Quote(s[:64]) + "…"
	}
	return strconv.Quote(s)
}

// payload is the Data of an event's publications: the JSON object
// {"event":<name>,"data":<data as sent>}.
func (ev *event) payload() string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// Cannot fail: a string and a RawMessage that holds a JSON value.
	_ = enc.Encode(struct {
		Event string          `json:"event"`
		Data  json.RawMessage `json:"data"`
	}{ev.name, ev.data})
	return string(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// publications appends to pubs one publication of the event per channel,
// in the order of its channels, excluding its socket_id.
func (ev *event) publications(pubs []protocol.Publication) []protocol.Publication {
	data := ev.payload()
	for _, ch := range ev.channels {
		pubs = append(pubs, protocol.Publication{Stream: ch, Data: data, ExcludeSocket: ev.socketID})
	}
	return pubs
}

// events serves POST /apps/<id>/events: it publishes the event on each of
// its channels in one Broadcast and answers {} or, when info asks for
// attributes, {"channels":{"<channel>":{<attributes>}}}, read before the
// event is published so that a failed read publishes nothing.
func (a *api) events(r *apiRequest) (any, *RequestError) {
	ev, rerr := decodeEvent(r.body)
	if rerr != nil {
		return nil, rerr
	}
	var attrs map[string]channelAttrs
	if ev.info.any() {
		attrs = make(map[string]channelAttrs, len(ev.channels))
		for _, ch := range ev.channels {
			if attrs[ch], rerr = a.attrsOf(r, ch, ev.info); rerr != nil {
				return nil, rerr
			}
		}
	}
	if err := a.b.Broadcast(r.ctx, ev.publications(nil)); err != nil {
		return nil, a.backendError(r, "while publishing the event", err)
	}
	if attrs == nil {
		return struct{}{}, nil
	}
	return map[string]any{"channels": attrs}, nil
}

// batchEvents serves POST /apps/<id>/batch_events: it publishes every
// event, in order, in one Broadcast and answers {} or, when any event has
// an info, {"batch":[{<attributes of event i's channel>}, ...]} with {}
// for the events without info (attributes read before publishing).
func (a *api) batchEvents(r *apiRequest) (any, *RequestError) {
	evs, rerr := decodeBatch(r.body)
	if rerr != nil {
		return nil, rerr
	}
	var attrs []channelAttrs
	pubs := make([]protocol.Publication, 0, len(evs))
	for i := range evs {
		if evs[i].info.any() && attrs == nil {
			attrs = make([]channelAttrs, len(evs))
		}
		if evs[i].info.any() {
			if attrs[i], rerr = a.attrsOf(r, evs[i].channels[0], evs[i].info); rerr != nil {
				return nil, rerr
			}
		}
		pubs = evs[i].publications(pubs)
	}
	if err := a.b.Broadcast(r.ctx, pubs); err != nil {
		return nil, a.backendError(r, "while publishing the events", err)
	}
	if attrs == nil {
		return struct{}{}, nil
	}
	return map[string]any{"batch": attrs}, nil
}
