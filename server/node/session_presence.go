package node

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/cablehub/cablehub/server/broker"
	"github.com/cablehub/cablehub/server/protocol"
)

// Reasons a join is refused, sent to the client as a presence error
// ({"type":"presence","identifier":..,"message":{"type":"error","reason":..}}).
const (
	reasonPresenceInfoTooLarge = "presence_info_too_large"
	reasonPresenceLimit        = "presence_limit"
	reasonPresenceAnonymous    = "presence_requires_identifiers"
)

// presenceRequest is the client's presence field of join.
type presenceRequest struct {
	ID   *string         `json:"id"`
	Info json.RawMessage `json:"info"`
}

// join records the client's presence on a subscription's stream; the first
// session of a presence id makes every subscriber get a join event. The
// info is normalised once here (as publications are: keys sorted), so that
// presence replies and events copy it instead of re-encoding it each time.
func (s *Session) join(identifier string, raw json.RawMessage) {
	stream, ok := s.presenceStream(identifier)
	if !ok || len(raw) == 0 || string(raw) == "null" {
		return
	}
	var req presenceRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		s.node.metrics.FailedClientMsgTotal.Inc()
		s.node.log.Debug("malformed presence", "sid", s.sid, "error", err)
		return
	}
	opts := &s.node.opts
	id := ""
	if req.ID != nil {
		id = *req.ID
	}
	if opts.PresenceFromIdentifiers {
		if s.identifiers == "" {
			s.refuseJoin(identifier, reasonPresenceAnonymous)
			return
		}
		id = s.identifiers
	}
	var info json.RawMessage
	if len(req.Info) > 0 && string(req.Info) != "null" {
		if opts.MaxPresenceInfo > 0 && len(req.Info) > opts.MaxPresenceInfo {
			s.refuseJoin(identifier, reasonPresenceInfoTooLarge)
			return
		}
		info = protocol.EncodeMessage(string(req.Info))
	}
	s.joinStream(identifier, stream, id, info)
}

// joinStream records the session's presence id with its info (already
// normalised) on stream, within Options.MaxPresence, telling every
// subscriber when the id is new there.
func (s *Session) joinStream(identifier, stream, id string, info json.RawMessage) {
	opts := &s.node.opts
	s.mu.Lock()
	_, already := s.present[stream]
	full := opts.MaxPresence > 0 && len(s.present) >= opts.MaxPresence
	s.mu.Unlock()
	if !already && full {
		s.refuseJoin(identifier, reasonPresenceLimit)
		return
	}
	ctx, cancel := s.brokerContext()
	defer cancel()
	joined, err := s.node.broker.PresenceJoin(ctx, stream, s.sid, id, info)
	if err != nil {
		s.node.log.Debug("presence join refused", "sid", s.sid, "stream", stream, "error", err)
		return
	}
	s.mu.Lock()
	if s.present == nil {
		s.present = map[string]struct{}{}
	}
	s.present[stream] = struct{}{}
	s.mu.Unlock()
	if joined {
		s.presenceEvent(stream, id, "join", info)
	}
}

// refuseJoin tells the client its join was not recorded, and why.
func (s *Session) refuseJoin(identifier, reason string) {
	s.node.metrics.FailedClientMsgTotal.Inc()
	s.node.log.Debug("presence join refused", "sid", s.sid, "reason", reason)
	msg := append([]byte(`{"type":"error","reason":`), strconv.Quote(reason)...)
	s.Send(protocol.Presence(identifier, append(msg, '}')))
}

func (s *Session) leave(identifier string) {
	if stream, ok := s.presenceStream(identifier); ok {
		s.leaveStream(stream)
	}
}

func (s *Session) leaveStream(stream string) {
	s.mu.Lock()
	delete(s.present, stream)
	s.mu.Unlock()
	ctx, cancel := s.brokerContext()
	defer cancel()
	id, left, err := s.node.broker.PresenceLeave(ctx, stream, s.sid)
	if err != nil && !errors.Is(err, broker.ErrPresenceUnsupported) {
		s.node.log.Warn("presence leave failed", "sid", s.sid, "stream", stream, "error", err)
		return
	}
	if left {
		s.presenceEvent(stream, id, "leave", nil)
	}
}

// presenceEvent tells the stream's subscribers that the session's presence
// id joined or left, as one broker call of its own.
func (s *Session) presenceEvent(stream, id, kind string, info json.RawMessage) {
	ctx, cancel := s.brokerContext()
	defer cancel()
	s.node.presenceEvent(ctx, stream, id, kind, info)
}

// presenceStream returns the stream of a subscription that allows presence.
func (s *Session) presenceStream(identifier string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.subs[identifier]
	if !ok || s.closed {
		return "", false
	}
	return sub.presenceStream()
}

// presenceInfo answers the presence command with the stream's records, in
// AnyCable's shape ({"info":..,"id":..} per record); a broker without
// presence, or one that fails, gives {"type":"error","total":0}. Info
// values were normalised at join and are copied as they are.
func (s *Session) presenceInfo(identifier string) {
	stream, ok := s.presenceStream(identifier)
	if !ok {
		return
	}
	ctx, cancel := s.brokerContext()
	defer cancel()
	info, err := s.node.Presence(ctx, stream)
	if err != nil {
		s.Send(protocol.Presence(identifier, []byte(`{"type":"error","total":0}`)))
		return
	}
	size := 64
	for _, r := range info.Records {
		size += len(r.Info) + len(r.ID) + 24
	}
	b := append(make([]byte, 0, size), `{"type":"info","total":`...)
	b = strconv.AppendInt(b, int64(info.Total), 10)
	if len(info.Records) > 0 {
		b = append(b, `,"records":[`...)
		for i, r := range info.Records {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			if len(r.Info) > 0 {
				b = append(b, `"info":`...)
				b = append(b, r.Info...)
				b = append(b, ',')
			}
			id, _ := json.Marshal(r.ID)
			b = append(b, `"id":`...)
			b = append(b, id...)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	s.Send(protocol.Presence(identifier, append(b, '}')))
}
