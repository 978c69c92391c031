package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cablehub/cablehub/server/protocol"
)

// position is a stream's last message in JetStream as a node knows it: its
// JetStream sequence (0: the subject has none), epoch and offset, and the
// NATS server it was published through.
type position struct {
	seq    uint64
	epoch  string
	offset uint64
	server string
	// behind marks a position found older than one this node had seen in
	// the same epoch: the store went back, and the epoch must end.
	behind bool
}

// valid reports whether the position's epoch may still be continued and
// served when server is the NATS server this node is connected to: see
// NATS for the rules.
func (p position) valid(server string, standalone bool) bool {
	return p.seq != 0 && p.epoch != "" && !p.behind && (!standalone || p.server == server)
}

// next is the epoch and offset of a publication written on top of p.
func (p position) next(server string, standalone bool) (string, uint64) {
	if p.valid(server, standalone) {
		return p.epoch, p.offset + 1
	}
	e := newStreamEpoch()
	for e == p.epoch {
		e = newStreamEpoch()
	}
	return e, 1
}

// maxPositions bounds the streams whose positions a node remembers; past
// it, one is forgotten for each new one (it is read again when needed).
const maxPositions = 100_000

// positions remembers the last message this node wrote or read of each
// stream: the expected last sequence of its next publish, and the witness
// that tells when the store went back. Safe for concurrent use.
type positions struct {
	mu  sync.Mutex
	max int
	m   map[string]position
}

func newPositions(max int) positions { return positions{max: max, m: map[string]position{}} }

func (ps *positions) get(stream string) (position, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p, ok := ps.m[stream]
	return p, ok
}

// put records p, what this node just wrote (or read) as the stream's last
// message.
func (ps *positions) put(stream string, p position) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.set(stream, p)
}

// set stores p, making room when the bound is reached; ps.mu is held.
func (ps *positions) set(stream string, p position) {
	if _, ok := ps.m[stream]; !ok && len(ps.m) >= ps.max {
		for k := range ps.m {
			delete(ps.m, k)
			break
		}
	}
	ps.m[stream] = p
}

func (ps *positions) forget(stream string) {
	ps.mu.Lock()
	delete(ps.m, stream)
	ps.mu.Unlock()
}

// witness takes p, the stream's last message as just read from JetStream,
// given before, what this node knew before the read began. A store that
// never goes back returns a message at least as late as before's, so an
// earlier one of the same epoch means it went back: p is marked behind,
// which ends the epoch at the next publication. The node then remembers p
// unless it meanwhile recorded a later message itself (its own publish
// racing with this read).
func (ps *positions) witness(stream string, before position, known bool, p position) position {
	if known && before.epoch == p.epoch && (before.behind || before.seq > p.seq) {
		p.behind = true
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if cur, ok := ps.m[stream]; !ok || cur.epoch != p.epoch || p.seq > cur.seq || (p.behind && !cur.behind) {
		ps.set(stream, p)
	}
	return p
}

// last reads the stream's last message from JetStream; a subject without
// one has the zero position. The history stream is created when missing.
func (b *NATS) last(ctx context.Context, stream string) (position, error) {
	if !b.conn.IsConnected() {
		return position{}, errNATSDown
	}
	s, err := b.historyStream(ctx)
	if err != nil {
		return position{}, err
	}
	before, known := b.positions.get(stream)
	m, err := s.GetLastMsgForSubject(ctx, historySubject(stream))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return b.positions.witness(stream, before, known, position{}), nil
	}
	if err != nil {
		b.forgetStream(err)
		return position{}, err
	}
	pubs, err := protocol.DecodeStreamMessages(m.Data)
	if err != nil || len(pubs) == 0 {
		return position{}, fmt.Errorf("malformed message %d in JetStream: %v", m.Sequence, err)
	}
	p := pubs[len(pubs)-1]
	return b.positions.witness(stream, before, known, position{seq: m.Sequence, epoch: p.Epoch, offset: p.Offset, server: m.Header.Get(natsServerHeader)}), nil
}

// current reads the stream's last message and reports whether its epoch
// can be served: none when the subject is empty or the epoch ends at the
// next publication (see NATS).
func (b *NATS) current(ctx context.Context, stream string) (position, bool, error) {
	pos, err := b.last(ctx, stream)
	if err != nil {
		return position{}, false, err
	}
	return pos, pos.valid(b.conn.ConnectedServerId(), b.standalone()), nil
}

// read returns the stream's retained publications of epoch (its last
// history_limit), oldest first, up to the message at sequence to, within
// the TTL, through a short-lived ordered consumer filtered on the
// stream's subject (a few requests, whatever the count).
func (b *NATS) read(ctx context.Context, stream, epoch string, to uint64) ([]historyEntry, error) {
	s, err := b.historyStream(ctx)
	if err != nil {
		return nil, err
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{historySubject(stream)},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		// Left alone, the server drops it soon after this read.
		InactiveThreshold: 5 * time.Second,
	})
	if err != nil {
		b.forgetStream(err)
		return nil, err
	}
	cutoff := time.Time{}
	if b.opts.HistoryTTL > 0 {
		cutoff = b.now().Add(-b.opts.HistoryTTL)
	}
	var out []historyEntry
	for {
		batch, err := cons.FetchNoWait(b.opts.HistoryLimit)
		if err != nil {
			return nil, err
		}
		got, done := 0, false
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			done = done || md.Sequence.Stream >= to
			at := stampedAt(m.Headers(), md.Timestamp)
			if md.Sequence.Stream > to || !at.After(cutoff) {
				continue
			}
			pubs, err := protocol.DecodeStreamMessages(m.Data())
			if err != nil {
				continue
			}
			for _, p := range pubs {
				if p.Epoch == epoch {
					out = append(out, historyEntry{at: at, pub: p})
				}
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, err
		}
		if got == 0 || done {
			// A subject keeps history_limit messages, each holding one
			// publication or more: the stream keeps its last
			// history_limit publications.
			return out[max(0, len(out)-b.opts.HistoryLimit):], nil
		}
	}
}

// stampedAt is when a message was stamped, by its publishing node's clock,
// or stored when it does not say.
func stampedAt(h nats.Header, stored time.Time) time.Time {
	if ms, err := strconv.ParseInt(h.Get(natsTimeHeader), 10, 64); err == nil {
		return time.UnixMilli(ms)
	}
	return stored
}

// HistoryFrom returns the publications of stream after offset, failing
// with ErrHistoryUnavailable in the same cases as Memory.HistoryFrom: the
// epoch is not the stream's current one (or that one ends at the next
// publication: see NATS), the stream has no message, the offset is beyond
// the last or below the oldest one kept.
func (b *NATS) HistoryFrom(ctx context.Context, stream, epoch string, offset uint64) ([]protocol.Publication, error) {
	last, ok, err := b.current(ctx, stream)
	if err != nil {
		return nil, err
	}
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: stream %q has no history in a valid epoch", ErrHistoryUnavailable, stream)
	case epoch != last.epoch:
		return nil, fmt.Errorf("%w: unknown epoch %s, current %s", ErrHistoryUnavailable, epoch, last.epoch)
	case offset > last.offset:
		return nil, fmt.Errorf("%w: offset %d is beyond the latest %d", ErrHistoryUnavailable, offset, last.offset)
	case offset == last.offset:
		return nil, nil
	}
	kept, err := b.read(ctx, stream, epoch, last.seq)
	if err != nil {
		return nil, err
	}
	return after(kept, offset)
}

// Tail returns the epoch and offset of the stream's last message when
// its epoch is still valid; "" and 0 otherwise.
func (b *NATS) Tail(ctx context.Context, stream string) (string, uint64, error) {
	last, ok, err := b.current(ctx, stream)
	if err != nil || !ok {
		return "", 0, err
	}
	return last.epoch, last.offset, nil
}

// HistorySince returns the publications of stream made at or after since
// (unix seconds) in its current epoch; an
// unknown stream has none. It reads the whole retained subject (at most
// history_limit messages), as the Redis broker does.
func (b *NATS) HistorySince(ctx context.Context, stream string, since int64) ([]protocol.Publication, error) {
	last, ok, err := b.current(ctx, stream)
	if err != nil || !ok {
		return nil, err
	}
	kept, err := b.read(ctx, stream, last.epoch, last.seq)
	if err != nil {
		return nil, err
	}
	var out []protocol.Publication
	for _, e := range kept {
		if e.at.Unix() >= since {
			out = append(out, e.pub)
		}
	}
	return out, nil
}
