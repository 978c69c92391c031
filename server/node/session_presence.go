package node

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/cablehub/cablehub/server/broker"
	"github.com/cablehub/cablehub/server/protocol"
	"github.com/cablehub/cablehub/server/streams"
)

// Reasons a join is refused, sent to the client as a presence error
// ({"type":"presence","identifier":..,"message":{"type":"error","reason":..}}).
const (
	reasonPresenceInfoTooLarge = "presence_info_too_large"
	reasonPresenceLimit        = "presence_limit"
	reasonPresenceAnonymous    = "presence_requires_identifiers"
	reasonPresenceStreamFull   = "presence_stream_full"
	reasonPresenceUnavailable  = "presence_unavailable"
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
	s.joinStream(identifier, stream, id, info, "")
}

// joinMember joins the presence of a subscription whose route named its
// member (SessionOptions.Router), then sends the session the stream's
// presence info, which includes it; it reports whether it joined. The
// others see the member join; the session itself learns it from the info.
//
// A join that fails is told as a presence error (the client waits for an
// answer: its confirmation is the info), whatever the reason: a broker
// without presence, or one that is down.
func (s *Session) joinMember(identifier, stream string, m *streams.Member) bool {
	joined, told := s.joinStream(identifier, stream, m.ID, m.Info, s.sid)
	switch {
	case joined:
		s.presenceInfo(identifier)
	case !told:
		s.refuseJoin(identifier, reasonPresenceUnavailable)
	}
	return joined
}

// joinStream records the session's presence id with its info (already
// normalised) on stream, within Options.MaxPresence and the broker's
// limit of ids per stream, telling every subscriber (but exclude, when
// set) when the id is new there. It reports whether the session joined,
// and, when not, whether the client was told why (a limit).
func (s *Session) joinStream(identifier, stream, id string, info json.RawMessage, exclude string) (joined, told bool) {
	opts := &s.node.opts
	s.mu.Lock()
	_, already := s.present[stream]
	full := opts.MaxPresence > 0 && len(s.present) >= opts.MaxPresence
	s.mu.Unlock()
	if !already && full {
		s.refuseJoin(identifier, reasonPresenceLimit)
		return false, true
	}
	ctx, cancel := s.brokerContext()
	defer cancel()
	first, err := s.node.broker.PresenceJoin(ctx, stream, s.sid, id, info)
	if errors.Is(err, broker.ErrPresenceFull) {
		s.refuseJoin(identifier, reasonPresenceStreamFull)
		return false, true
	}
	if err != nil {
		s.node.log.Debug("presence join refused", "sid", s.sid, "stream", stream, "error", err)
		return false, false
	}
	s.mu.Lock()
	closed := s.closed
	if !closed {
		if s.present == nil {
			s.present = map[string]struct{}{}
		}
		s.present[stream] = struct{}{}
	}
	s.mu.Unlock()
	if closed {
		// The session ended while the broker joined it: its end did not
		// see this presence, which would otherwise stay for good. (Its
		// context is done with it.)
		lctx, lcancel := context.WithTimeout(context.Background(), brokerTimeout)
		defer lcancel()
		if _, _, err := s.node.broker.PresenceLeave(lctx, stream, s.sid); err != nil {
			s.node.log.Warn("presence leave failed", "sid", s.sid, "stream", stream, "error", err)
		}
		return false, true
	}
	if first {
		s.presenceEvent(stream, id, "join", info, exclude)
	}
	return true, false
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
		s.presenceEvent(stream, id, "leave", nil, "")
	}
}

// leaveAll leaves every presence the session joined
// (SessionOptions.LeaveOnClose).
func (s *Session) leaveAll() {
	s.mu.Lock()
	streams := make([]string, 0, len(s.present))
	for stream := range s.present {
		streams = append(streams, stream)
	}
	s.mu.Unlock()
	for _, stream := range streams {
		s.leaveStream(stream)
	}
}

// presenceEvent tells the stream's subscribers (but the session named
// exclude) that the session's presence id joined or left, as one broker
// call of its own.
func (s *Session) presenceEvent(stream, id, kind string, info json.RawMessage, exclude string) {
	ctx, cancel := s.brokerContext()
	defer cancel()
	s.node.presenceEvent(ctx, stream, id, kind, info, exclude)
}

// presenceStream returns the stream of a subscription that allows presence.
func (s *Session) presenceStream(identifier string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.subs.lookup(identifier)
	if !ok || s.closed {
		return "", false
	}
	return sub.presenceStream()
}

// presenceInfo answers the presence command with the stream's records, in
// AnyCable's shape ({"info":..,"id":..} per record), within
// Options.MaxPresenceReply (see presenceReply); a broker without presence,
// or one that fails, gives {"type":"error","total":0}.
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
	s.Send(presenceReply(identifier, info, s.node.opts.maxPresenceReply()))
}

// truncatedField ends a presence reply that left records out.
const truncatedField = `,"truncated":true`

// presenceReply encodes the presence reply frame within most bytes:
// total stays the stream's real number of ids, records holds those that
// fit, from the first id on (omitted when none does), and
// "truncated":true follows when some were left out. A stream's records can
// far exceed what a client's queue takes (--presence_max_members ids of
// --max_presence_info_size each), and a frame over it would cut the client
// as too slow instead of answering. Info values were normalised at join and
// are copied as they are.
func presenceReply(identifier string, info *broker.PresenceInfo, most int) []byte {
	// The body may grow to limit and still leave room for the envelope,
	// the records' closing bracket, the truncated field and the last brace.
	limit := most - len(protocol.Presence(identifier, nil)) - len(`]`) - len(truncatedField) - len(`}`)
	size := 64
	for _, r := range info.Records {
		if size += len(r.Info) + len(r.ID) + 24; size >= limit {
			break
		}
	}
	b := append(make([]byte, 0, min(size, most)), `{"type":"info","total":`...)
	b = strconv.AppendInt(b, int64(info.Total), 10)
	head := len(b)
	truncated := false
	for i, r := range info.Records {
		mark := len(b)
		if i == 0 {
			b = append(b, `,"records":[`...)
		} else {
			b = append(b, ',')
		}
		if b = appendPresenceRecord(b, r); len(b) > limit {
			b, truncated = b[:mark], true
			break
		}
	}
	if len(b) > head {
		b = append(b, ']')
	}
	if truncated {
		b = append(b, truncatedField...)
	}
	return protocol.Presence(identifier, append(b, '}'))
}

// appendPresenceRecord appends r as {"info":..,"id":..}, info left out when
// the join gave none.
func appendPresenceRecord(b []byte, r broker.PresenceRecord) []byte {
	b = append(b, '{')
	if len(r.Info) > 0 {
		b = append(b, `"info":`...)
		b = append(b, r.Info...)
		b = append(b, ',')
	}
	id, _ := json.Marshal(r.ID)
	b = append(b, `"id":`...)
	b = append(b, id...)
	return append(b, '}')
}
