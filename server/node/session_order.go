package node

import (
	"sort"
	"time"

	"github.com/cablehub/cablehub/server/protocol"
)

// Offsets are contiguous per stream and epoch: every stamped publication
// gets the next one. A subscription that sees offset n+2 after n has missed
// n+1, either still on its way (two nodes' publications can cross in a
// cluster pub/sub) or lost (a pub/sub reconnect dropped it). The client
// must not simply get n+2: it would skip n+1 for good, since clients ask
// history only from their last position. So messages past a gap are held;
// if the gap is not closed by live messages within Options.GapWait, the missing
// range is read from history. When history cannot serve it, the client is
// told to reconnect from where it was (its position is still before the
// gap), so its history request gets reject_history: the documented signal
// that it must resynchronise.

// DefaultGapWait is how long messages past a gap wait for the missing ones
// to arrive live before history is asked, when Options.GapWait is zero.
const DefaultGapWait = 200 * time.Millisecond

// gap is a subscription's messages held past a gap in its offsets.
type gap struct {
	held      []heldFrame // sorted by offset, one per offset
	heldBytes int
	filling   bool // a history read is in progress or scheduled
}

var resyncFrame = protocol.Disconnect(protocol.ReasonStreamGap, true)

// sendOrdered sends a publication frame of feed f in stream order; s.mu is
// held. Unstamped frames go at once. Within an epoch, a frame at or below
// the client's position is dropped (it has it), the next offset is sent
// (and then whatever it makes contiguous), and one past a gap is held. A
// client without a position takes the stream from wherever it is. Another
// epoch means the broker lost its state and started over: with a
// cluster-wide broker (Options.CatchUp) everything in the new epoch is new
// to the client, so it resumes from the epoch's start, filling the gap up
// to this frame from history; otherwise each node has an epoch of its own
// and the client takes the frame's position as it is. It reports false
// when the connection no longer takes frames.
//
// A new epoch ends the old one: what of the old one the client lacks past
// its position is gone for it. That is nothing when the node's pub/sub
// delivered the old epoch without interruption; but publications accepted
// just before the node's pub/sub connection dropped may never have reached
// it, and the catch-up after the drop cannot read an epoch the broker lost.
// So after a drop (Node.HandleInterrupted), a subscription whose position
// was not confirmed since (by a publication of its epoch, or by the
// catch-up, see verified) is told to resync instead of moving on.
func (s *Session) sendOrdered(f *feed, frame []byte, epoch string, offset uint64) bool {
	switch {
	case offset == 0:
		return s.emit(frame)
	case f.epoch == "" && s.node.opts.Reorder:
		// No position yet, and publications may cross on their way from
		// two nodes: the first ones wait Options.GapWait and go out sorted, so an
		// earlier one arriving second is not taken for one already sent.
		s.holdPastGap(f, heldFrame{frame: frame, epoch: epoch, offset: offset})
		return true
	case f.epoch != "" && epoch != f.epoch && s.node.opts.CatchUp && f.gen != s.node.interruptions.Load():
		s.resync(f)
		return false
	case f.epoch == "" || (epoch != f.epoch && (!s.node.opts.CatchUp || offset == 1)):
		s.advance(f, epoch, offset)
		f.gap = nil
		return s.emit(frame)
	case epoch != f.epoch:
		s.advance(f, epoch, 0)
		f.gap = nil
	case offset <= f.lastOffset:
		return true
	case offset == f.lastOffset+1:
		s.advance(f, epoch, offset)
		if !s.emit(frame) {
			return false
		}
		return s.releaseContiguous(f)
	}
	s.holdPastGap(f, heldFrame{frame: frame, epoch: epoch, offset: offset})
	return true
}

// advance moves f's position to (epoch, offset), known complete as of the
// node's current count of pub/sub interruptions; s.mu is held.
func (s *Session) advance(f *feed, epoch string, offset uint64) {
	f.epoch, f.lastOffset, f.gen = epoch, offset, s.node.interruptions.Load()
}

// emit sends a frame in order; a nil frame (a publication excluded for
// this session) is passed without sending.
func (s *Session) emit(frame []byte) bool {
	if frame == nil {
		return true
	}
	return s.sendWire(frame)
}

// releaseContiguous sends the held frames that follow the client's position
// without a gap; s.mu is held.
func (s *Session) releaseContiguous(f *feed) bool {
	g := f.gap
	if g == nil {
		return true
	}
	i := 0
	for ; i < len(g.held) && g.held[i].offset <= f.lastOffset+1; i++ {
		h := g.held[i]
		g.heldBytes -= len(h.frame)
		if h.offset <= f.lastOffset {
			continue
		}
		s.advance(f, f.epoch, h.offset)
		if !s.emit(h.frame) {
			return false
		}
	}
	g.held = g.held[i:]
	if len(g.held) == 0 && !g.filling {
		f.gap = nil
	}
	return true
}

// holdPastGap keeps h until the gap before it is filled, and schedules the
// fill; s.mu is held. A subscription holding more than maxHeldBytes is
// resynchronised instead.
func (s *Session) holdPastGap(f *feed, h heldFrame) {
	g := f.gap
	if g == nil {
		g = &gap{}
		f.gap = g
	}
	i := sort.Search(len(g.held), func(i int) bool { return g.held[i].offset >= h.offset })
	if i < len(g.held) && g.held[i].offset == h.offset {
		return
	}
	g.held = append(g.held, heldFrame{})
	copy(g.held[i+1:], g.held[i:])
	g.held[i] = h
	g.heldBytes += len(h.frame)
	if g.heldBytes > maxHeldBytes {
		s.resync(f)
		return
	}
	if !g.filling {
		g.filling = true
		for id, sub := range s.subs.all() {
			if sub.feed(f.stream) == f {
				s.node.timers.add(timer{s: s, kind: timerGap, gap: &gapFeed{identifier: id, stream: f.stream}}, s.node.opts.gapWait())
				break
			}
		}
	}
}

// fillGap reads what a subscription misses from history, if its gap is
// still open, and sends it with the held messages in order.
func (s *Session) fillGap(identifier, stream string) {
	s.mu.Lock()
	sub := s.subs.get(identifier)
	var f *feed
	if sub != nil {
		f = sub.feed(stream)
	}
	if f == nil || f.gap == nil {
		s.mu.Unlock()
		return
	}
	if len(f.gap.held) == 0 {
		f.gap = nil
		s.mu.Unlock()
		return
	}
	if f.epoch == "" {
		s.startFromHeld(identifier, f)
		s.mu.Unlock()
		return
	}
	epoch, from := f.epoch, f.lastOffset
	s.mu.Unlock()
	// Off the timer goroutine: the broker may take its time.
	go func() {
		defer s.recoverPanic("gap fill")
		ctx, cancel := s.brokerContext()
		defer cancel()
		var pubs []protocol.Publication
		var err error
		if from == 0 {
			// From an epoch's start: AnyCable's rule refuses offset 0 to
			// clients, so read all that is kept and take the epoch's part.
			pubs, err = s.node.broker.HistorySince(ctx, stream, 0)
		} else {
			pubs, err = s.node.broker.HistoryFrom(ctx, stream, epoch, from)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed || s.subs.get(identifier) != sub || sub.feed(stream) != f || f.gap == nil {
			return // the session ended (its broker call may have been cut), or the gap is gone
		}
		s.node.metrics.GapFillsTotal.Inc()
		if err == nil {
			for i := range pubs {
				if pubs[i].Epoch != f.epoch || pubs[i].Offset <= f.lastOffset {
					continue
				}
				if pubs[i].Offset != f.lastOffset+1 && from == 0 {
					break // the epoch's start is no longer kept
				}
				// Past the start, history holds every offset but the voided
				// (stamped, then not published): a hole is passed.
				var frame []byte // nil: excluded (exclude_socket), only passed
				if pubs[i].ExcludeSocket == "" || pubs[i].ExcludeSocket != s.sid {
					frame = s.codec.AppendBroadcast(nil, identifier, &pubs[i], s.node.messages.message(&pubs[i]))
				}
				s.advance(f, f.epoch, pubs[i].Offset)
				if !s.emit(frame) || !s.releaseContiguous(f) {
					return
				}
			}
		}
		f.gap.filling = false
		if len(f.gap.held) > 0 {
			s.node.log.Debug("gap not fillable from history", "sid", s.sid, "stream", stream, "error", err)
			s.resync(f)
			return
		}
		f.gap = nil
	}()
}

// startFromHeld gives a subscription without a position the one just
// before the first frame it held, and sends what follows without a gap;
// the rest waits for a fill like any gap. s.mu is held.
func (s *Session) startFromHeld(identifier string, f *feed) {
	first := f.gap.held[0]
	s.advance(f, first.epoch, first.offset-1)
	f.gap.filling = false
	if !s.releaseContiguous(f) || f.gap == nil {
		return
	}
	f.gap.filling = true
	s.node.timers.add(timer{s: s, kind: timerGap, gap: &gapFeed{identifier: identifier, stream: f.stream}}, s.node.opts.gapWait())
}

// resync tells the client to reconnect from its position before the gap,
// which history cannot fill: its history request then gets reject_history,
// the signal that it missed messages for good. s.mu is held.
func (s *Session) resync(f *feed) {
	f.gap = nil
	s.node.metrics.GapResyncsTotal.Inc()
	s.close(1000, "", resyncFrame)
}

// position is a subscription's place in a stream: the last offset it got
// and the epoch that counts in.
type position struct {
	epoch  string
	offset uint64
}

// position returns the place of identifier's subscription in stream, if
// it has one.
func (s *Session) position(identifier, stream string) (position, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.feedOf(identifier, stream)
	if f == nil || f.epoch == "" {
		return position{}, false
	}
	return position{f.epoch, f.lastOffset}, true
}

// verified records that history confirmed identifier's subscription in
// stream complete at pos as of the interruption count gen: it can move to
// a new epoch without a resync (see sendOrdered).
func (s *Session) verified(identifier, stream string, pos position, gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.feedOf(identifier, stream); f != nil && f.epoch == pos.epoch && f.lastOffset >= pos.offset && f.gen < gen {
		f.gen = gen
	}
}

// resyncAt tells the client to resync when identifier's subscription in
// stream is still in pos's epoch, which history can no longer serve.
func (s *Session) resyncAt(identifier, stream string, pos position) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.feedOf(identifier, stream); f != nil && f.epoch == pos.epoch && !s.closed {
		s.resync(f)
	}
}

// feedOf is identifier's subscription's feed of stream; s.mu is held.
func (s *Session) feedOf(identifier, stream string) *feed {
	if sub := s.subs.get(identifier); sub != nil {
		return sub.feed(stream)
	}
	return nil
}
