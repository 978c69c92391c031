package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cablehub/cablehub/server/protocol"
)

// --- history ---

// streamState returns the state of stream's JetStream stream in epoch, or
// nil when it does not exist.
func (b *NATS) streamState(ctx context.Context, epoch, stream string) (*jetstream.StreamState, error) {
	if !b.conn.IsConnected() {
		return nil, errNATSDown
	}
	s, err := b.js.Stream(ctx, jsStreamName(epoch, stream))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	st := s.CachedInfo().State
	return &st, nil
}

// read returns stream's retained entries with sequences from..to within
// the TTL, oldest first, through a short-lived ordered consumer (a few
// requests, whatever the count). Sequences aged out meanwhile are skipped.
func (b *NATS) read(ctx context.Context, epoch, stream string, from, to uint64) ([]historyEntry, error) {
	if from > to {
		return nil, nil
	}
	cons, err := b.js.OrderedConsumer(ctx, jsStreamName(epoch, stream), jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from,
		// Left alone, the server drops it soon after this read.
		InactiveThreshold: 5 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	cutoff := int64(0)
	if b.opts.HistoryTTL > 0 {
		cutoff = b.now().Add(-b.opts.HistoryTTL).UnixMilli()
	}
	out := make([]historyEntry, 0, to-from+1)
	for next := from; next <= to; {
		batch, err := cons.FetchNoWait(int(to - next + 1))
		if err != nil {
			return nil, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			next = md.Sequence.Stream + 1
			var sp natsStored
			if json.Unmarshal(m.Data(), &sp) != nil || sp.At <= cutoff {
				continue
			}
			out = append(out, historyEntry{at: time.UnixMilli(sp.At), pub: protocol.Publication{
				Stream: stream, Data: sp.Data, BroadcastType: sp.BroadcastType, Epoch: epoch, Offset: md.Sequence.Stream}})
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, err
		}
		if got == 0 {
			break
		}
	}
	return out, nil
}

// HistoryFrom returns the publications of stream after offset, failing
// with ErrHistoryUnavailable in the same cases as Memory.HistoryFrom: the
// epoch is not the current one, the stream has no JetStream stream, the
// offset is beyond its last sequence or below the oldest one kept. It reads
// from max(offset, first sequence): the entry at offset itself tells
// whether offset is still kept. An epoch other than the one this node
// holds makes it reread the epoch first.
func (b *NATS) HistoryFrom(ctx context.Context, stream, epoch string, offset uint64) ([]protocol.Publication, error) {
	current, err := b.Epoch(ctx)
	if err == nil && epoch != current {
		// This node may not have seen a new epoch yet: reread it.
		current, err = b.loadEpoch(ctx)
	}
	if err != nil {
		return nil, err
	}
	if epoch != current {
		return nil, fmt.Errorf("%w: unknown epoch %s, current %s", ErrHistoryUnavailable, epoch, current)
	}
	st, err := b.streamState(ctx, current, stream)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, fmt.Errorf("%w: stream %q has no history", ErrHistoryUnavailable, stream)
	}
	if offset > st.LastSeq {
		return nil, fmt.Errorf("%w: offset %d is beyond the latest %d", ErrHistoryUnavailable, offset, st.LastSeq)
	}
	if offset == st.LastSeq {
		return nil, nil
	}
	kept, err := b.read(ctx, current, stream, max(offset, st.FirstSeq), st.LastSeq)
	if err != nil {
		return nil, err
	}
	return after(kept, offset)
}

// HistorySince returns the publications of stream made at or after since
// (unix seconds, by the publishing node's clock); an unknown stream has
// none. It reads the whole retained stream (at most history_limit
// entries), as the Redis broker does.
func (b *NATS) HistorySince(ctx context.Context, stream string, since int64) ([]protocol.Publication, error) {
	epoch, err := b.Epoch(ctx)
	if err != nil {
		return nil, err
	}
	st, err := b.streamState(ctx, epoch, stream)
	if err != nil || st == nil || st.Msgs == 0 {
		return nil, err
	}
	kept, err := b.read(ctx, epoch, stream, st.FirstSeq, st.LastSeq)
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

// --- delivery ---

// follow is the consumer delivering one followed stream; cc is nil while
// it could not be started (NATS down), and Run retries.
type follow struct {
	epoch string
	cc    jetstream.ConsumeContext
}

// Follow starts delivering stream's publications to this node (called
// when its first local subscriber comes; pubsub.Follower). It returns once
// the consumer exists, so a publication accepted after the subscriber was
// confirmed is delivered. When JetStream cannot be reached, Run retries.
func (b *NATS) Follow(stream string) {
	b.fmu.Lock()
	defer b.fmu.Unlock()
	f := &follow{}
	b.follows[stream] = f
	ctx, cancel := context.WithTimeout(context.Background(), natsOpTimeout)
	defer cancel()
	if err := b.start(ctx, stream, f); err != nil {
		b.log.Warn("JetStream consumer not started; retried", "stream", stream, "error", err)
	}
}

// Unfollow stops delivering stream (its last local subscriber left).
func (b *NATS) Unfollow(stream string) {
	b.fmu.Lock()
	defer b.fmu.Unlock()
	if f, ok := b.follows[stream]; ok {
		if f.cc != nil {
			f.cc.Stop()
		}
		delete(b.follows, stream)
	}
}

// start creates f's ordered consumer on stream in the current epoch (and
// the stream, if missing), delivering after the stream's last sequence;
// b.fmu is held. Ordered consumers resume after the last sequence they
// delivered when NATS reconnects.
func (b *NATS) start(ctx context.Context, stream string, f *follow) error {
	if !b.conn.IsConnected() {
		return errNATSDown
	}
	epoch, err := b.Epoch(ctx)
	if err != nil {
		return err
	}
	st, err := b.streamState(ctx, epoch, stream)
	if err != nil {
		return err
	}
	last := uint64(0)
	if st == nil {
		if epoch, last, err = b.ensureStream(ctx, stream); err != nil {
			return err
		}
	} else {
		last = st.LastSeq
	}
	if f.epoch != "" && f.epoch != epoch {
		// Moving to a new epoch (JetStream lost its state): everything
		// published in it is new to this node's subscribers, including
		// what came before the move.
		last = 0
	}
	cons, err := b.js.OrderedConsumer(ctx, jsStreamName(epoch, stream), jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: last + 1,
	})
	if err != nil {
		return err
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { b.handle(stream, epoch, m) },
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			b.log.Debug("JetStream consumer", "stream", stream, "error", err)
		}))
	if err != nil {
		return err
	}
	f.epoch, f.cc = epoch, cc
	return nil
}

// handle delivers one consumed publication, stamped with its sequence.
func (b *NATS) handle(stream, epoch string, m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		return
	}
	var sp natsStored
	if err := json.Unmarshal(m.Data(), &sp); err != nil {
		b.log.Warn("malformed publication in JetStream", "stream", stream, "error", err)
		return
	}
	b.deliver(&protocol.Publication{Stream: stream, Data: sp.Data, BroadcastType: sp.BroadcastType,
		ExcludeSocket: sp.ExcludeSocket, Epoch: epoch, Offset: md.Sequence.Stream})
}

// refollow starts the consumers that are missing or follow an old epoch.
func (b *NATS) refollow(ctx context.Context) {
	b.mu.Lock()
	epoch := b.epoch
	b.mu.Unlock()
	b.fmu.Lock()
	defer b.fmu.Unlock()
	for stream, f := range b.follows {
		if f.cc != nil && f.epoch == epoch {
			continue
		}
		if !b.conn.IsConnected() || ctx.Err() != nil {
			return
		}
		if f.cc != nil {
			f.cc.Stop()
			f.cc = nil
		}
		cctx, cancel := context.WithTimeout(ctx, natsOpTimeout)
		if err := b.start(cctx, stream, f); err != nil {
			b.log.Debug("JetStream consumer not started; retried", "stream", stream, "error", err)
		}
		cancel()
	}
}

func (b *NATS) stopFollows() {
	b.fmu.Lock()
	defer b.fmu.Unlock()
	for _, f := range b.follows {
		if f.cc != nil {
			f.cc.Stop()
			f.cc = nil
		}
	}
}
