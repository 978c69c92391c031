package node

import (
	"encoding/json"

	"github.com/cablehub/cablehub/server/protocol"
)

// replay holds a subscription's live messages back while history is
// being sent, so the client sees the stream in order.
type replay struct {
	// pending counts what must happen before held messages go out: the
	// confirmation of a new subscription, each history request in
	// progress, and, while restored is set, a restored subscription's
	// first history request (or the restore hold running out).
	pending   int
	restored  bool
	held      []heldFrame
	heldBytes int
}

// heldFrame is a live publication's frame held back, with its position.
type heldFrame struct {
	frame  []byte
	epoch  string
	offset uint64
}

// maxHeldBytes bounds the live messages one subscription holds back while
// its history is replayed (at most Options.RestoreHold after a restore).
const maxHeldBytes = 4 << 20

// historyRequest is the client's history field.
type historyRequest struct {
	Since   int64 `json:"since"`
	Streams map[string]struct {
		Epoch  string `json:"epoch"`
		Offset uint64 `json:"offset"`
	} `json:"streams"`
}

// history sends what the subscription's streams published since the
// client's position, then confirm_history; or reject_history when the
// broker cannot serve one of them. held tells that the caller already holds
// the subscription's live messages for this request.
func (s *Session) history(identifier string, raw json.RawMessage, held bool) {
	var req historyRequest
	err := json.Unmarshal(raw, &req)
	s.mu.Lock()
	sub := s.subs.get(identifier)
	if sub == nil {
		s.mu.Unlock()
		return
	}
	feeds := append([]*feed(nil), sub.feeds...)
	if err != nil || (req.Since <= 0 && len(req.Streams) == 0) {
		// Nothing to look up: AnyCable only logs such a request.
		s.node.log.Debug("history request without since or streams", "sid", s.sid, "identifier", identifier)
		if held {
			s.finishReplays(feeds)
		}
		s.mu.Unlock()
		return
	}
	if !held {
		for _, f := range feeds {
			if f.replay == nil {
				f.replay = &replay{}
			}
			f.replay.pending++
		}
	}
	s.mu.Unlock()

	found := make([][]protocol.Publication, len(feeds))
	for i, f := range feeds {
		if found[i], err = s.fetchHistory(f.stream, &req); err != nil {
			s.node.log.Debug("history not available", "sid", s.sid, "stream", f.stream, "error", err)
			break
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.subs.get(identifier) != sub {
		return // unsubscribed meanwhile
	}
	if err != nil {
		s.Send(protocol.RejectHistory(identifier))
	} else {
		for i, f := range feeds {
			for j := range found[i] {
				p := &found[i][j]
				frame := s.codec.AppendBroadcast(nil, identifier, p, s.node.messages.message(p))
				if !s.sendOrdered(f, frame, p.Epoch, p.Offset) {
					return // closing, or cut as too slow: the rest is for nobody
				}
			}
		}
		s.Send(protocol.ConfirmHistory(identifier))
	}
	for _, f := range feeds {
		// The first history request after a restore also ends its hold.
		if f.replay != nil && f.replay.restored {
			f.replay.restored = false
			f.replay.pending--
		}
	}
	s.finishReplays(feeds)
}

// fetchHistory reads what stream published since the request's position
// for it, or since its time; nothing when the request names neither.
func (s *Session) fetchHistory(stream string, req *historyRequest) ([]protocol.Publication, error) {
	ctx, cancel := s.brokerContext()
	defer cancel()
	if pos, ok := req.Streams[stream]; ok {
		return s.node.broker.HistoryFrom(ctx, stream, pos.Epoch, pos.Offset)
	}
	if req.Since > 0 {
		return s.node.broker.HistorySince(ctx, stream, req.Since)
	}
	return nil, nil
}

// confirm sends the confirmation of sub, then the live messages held
// meanwhile.
func (s *Session) confirm(identifier string, sub *subscription) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Send(protocol.Confirm(identifier))
	s.finishReplays(sub.feeds)
}

// finishReplays ends one pending replay of each feed and, for those with
// none left, releases the live messages held meanwhile, skipping what
// history already sent; s.mu is held.
func (s *Session) finishReplays(feeds []*feed) {
	for _, f := range feeds {
		r := f.replay
		if r == nil {
			continue
		}
		r.pending--
		if r.pending > 0 {
			continue
		}
		f.replay = nil
		for _, h := range r.held {
			s.sendOrdered(f, h.frame, h.epoch, h.offset)
		}
	}
}

// releaseRestoreHolds lets live messages of restored subscriptions flow
// when the client did not ask for their history in time.
func (s *Session) releaseRestoreHolds() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sub := range s.subs.all() {
		for _, f := range sub.feeds {
			if f.replay != nil && f.replay.restored {
				f.replay.restored = false
				s.finishReplays([]*feed{f})
			}
		}
	}
}
