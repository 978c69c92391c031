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

// history sends what the subscription's stream published since the
// client's position, then confirm_history; or reject_history when the
// broker cannot serve it. held tells that the caller already holds the
// subscription's live messages for this request.
func (s *Session) history(identifier string, raw json.RawMessage, held bool) {
	var req historyRequest
	err := json.Unmarshal(raw, &req)
	s.mu.Lock()
	sub := s.subs[identifier]
	if sub == nil {
		s.mu.Unlock()
		return
	}
	pos, hasPos := req.Streams[sub.Stream]
	if err != nil || (req.Since <= 0 && len(req.Streams) == 0) {
		// Nothing to look up: AnyCable only logs such a request.
		s.node.log.Debug("history request without since or streams", "sid", s.sid, "identifier", identifier)
		if held {
			s.finishReplay(sub)
		}
		s.mu.Unlock()
		return
	}
	if !held {
		if sub.replay == nil {
			sub.replay = &replay{}
		}
		sub.replay.pending++
	}
	stream := sub.Stream
	s.mu.Unlock()

	ctx, cancel := s.brokerContext()
	defer cancel()
	var pubs []protocol.Publication
	switch {
	case hasPos:
		pubs, err = s.node.broker.HistoryFrom(ctx, stream, pos.Epoch, pos.Offset)
	case req.Since > 0:
		pubs, err = s.node.broker.HistorySince(ctx, stream, req.Since)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.subs[identifier] != sub {
		return // unsubscribed meanwhile
	}
	if err != nil {
		s.node.log.Debug("history not available", "sid", s.sid, "stream", stream, "error", err)
		s.Send(protocol.RejectHistory(identifier))
	} else {
		for i := range pubs {
			frame := protocol.AppendBroadcast(nil, identifier, &pubs[i], s.node.messages.message(&pubs[i]))
			if !s.sendOrdered(sub, frame, pubs[i].Epoch, pubs[i].Offset) {
				return // closing, or cut as too slow: the rest is for nobody
			}
		}
		s.Send(protocol.ConfirmHistory(identifier))
	}
	// The first history request after a restore also ends its hold.
	if sub.replay.restored {
		sub.replay.restored = false
		sub.replay.pending--
	}
	s.finishReplay(sub)
}

// confirm sends the confirmation of sub, then the live messages held
// meanwhile.
func (s *Session) confirm(identifier string, sub *subscription) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Send(protocol.Confirm(identifier))
	s.finishReplay(sub)
}

// finishReplay ends one pending replay of sub and, once none is left,
// releases the live messages held meanwhile, skipping what history already
// sent; s.mu is held.
func (s *Session) finishReplay(sub *subscription) {
	r := sub.replay
	if r == nil {
		return
	}
	r.pending--
	if r.pending > 0 {
		return
	}
	sub.replay = nil
	for _, h := range r.held {
		s.sendOrdered(sub, h.frame, h.epoch, h.offset)
	}
}

// releaseRestoreHolds lets live messages of restored subscriptions flow
// when the client did not ask for their history in time.
func (s *Session) releaseRestoreHolds() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sub := range s.subs {
		if sub.replay != nil && sub.replay.restored {
			sub.replay.restored = false
			s.finishReplay(sub)
		}
	}
}
