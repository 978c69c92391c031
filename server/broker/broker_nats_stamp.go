package broker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cablehub/cablehub/server/protocol"
	"github.com/cablehub/cablehub/server/pubsub"
)

// Stamping on JetStream: group commit.
//
// A stream's next offset can only be claimed on top of its last message
// (see NATS), one JetStream round trip at a time, so one publication per
// round trip would be all a stream could take. Publications of one stream
// that wait together are stored together instead: one JetStream message
// holding them in order with consecutive offsets (a JSON array of stream
// messages; one alone is a plain stream message), which JetStream
// republishes as one and the nodes deliver in order. A stream takes as
// many publications per round trip as arrive meanwhile.

const (
	// maxStampBatch bounds the publications of one JetStream message.
	maxStampBatch = 256
	// maxStampBatchBytes bounds its body (within NATS's default 1 MB
	// max_payload, whatever the server allows).
	maxStampBatchBytes = 512 << 10
)

// stampRequest is one publication waiting for its stream's next publish.
type stampRequest struct {
	ctx  context.Context
	p    *protocol.Publication
	size int
	done chan error // gets the outcome once
}

// stampQueue is a stream's waiting publications; a stream has one while
// a drain goroutine serves it.
type stampQueue struct {
	pending []*stampRequest
}

// Stamp stores p in JetStream with its stream's next offset and epoch (set
// in p), which also delivers it: a node must not publish it again over the
// pub/sub. Publications of one stream stamped at once go in one JetStream
// message, in the order Stamp was called. When ctx ends first the call
// fails, and p may still be stored (an error means "not confirmed").
func (b *NATS) Stamp(ctx context.Context, p *protocol.Publication) error {
	if !b.conn.IsConnected() {
		return errNATSDown
	}
	r := &stampRequest{ctx: ctx, p: p, size: protocol.StreamMessageSize(p), done: make(chan error, 1)}
	b.qmu.Lock()
	q, draining := b.queues[p.Stream]
	if !draining {
		q = &stampQueue{}
		b.queues[p.Stream] = q
	}
	q.pending = append(q.pending, r)
	b.qmu.Unlock()
	if !draining {
		// The caller stores its own publication (with whatever queued
		// behind it meanwhile) and leaves the rest to a goroutine.
		if b.drainOnce(p.Stream, q) {
			go b.drain(p.Stream, q)
		}
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drain publishes q's waiting publications until none is left.
func (b *NATS) drain(stream string, q *stampQueue) {
	for b.drainOnce(stream, q) {
	}
}

// drainOnce publishes the first of q's waiting publications, as many in
// one JetStream message as the batch bounds allow, and reports whether
// more wait; when none does, the stream's queue is gone.
func (b *NATS) drainOnce(stream string, q *stampQueue) bool {
	b.qmu.Lock()
	n, size := 0, 0
	for n < len(q.pending) && n < maxStampBatch && (n == 0 || size+q.pending[n].size <= maxStampBatchBytes) {
		size += q.pending[n].size
		n++
	}
	batch := q.pending[:n:n]
	q.pending = q.pending[n:]
	b.qmu.Unlock()
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- err // its caller gave up: not stored
			continue
		}
		live = append(live, r)
	}
	if len(live) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), natsOpTimeout)
		err := b.stampBatch(ctx, stream, live)
		cancel()
		for _, r := range live {
			r.done <- err
		}
	}
	b.qmu.Lock()
	defer b.qmu.Unlock()
	if len(q.pending) == 0 {
		delete(b.queues, stream)
		return false
	}
	return true
}

// stampBatch stores batch, publications of stream, in one JetStream
// message with the stream's next offsets, retrying when another node
// claimed them first.
func (b *NATS) stampBatch(ctx context.Context, stream string, batch []*stampRequest) error {
	pos, known := b.positions.get(stream)
	for attempt := range natsStampRetries {
		if attempt > 0 {
			// Another node published in between. Waiting a random while
			// before reading where the stream is lets nodes that publish to
			// one stream at once take turns rather than one of them losing
			// every race to a node that knows the stream's last position.
			if err := backoff(ctx, attempt); err != nil {
				return err
			}
		}
		if !known {
			var err error
			if pos, err = b.last(ctx, stream); err != nil {
				return err
			}
		}
		err := b.publish(ctx, stream, batch, pos)
		if err == nil {
			return nil
		}
		if !isWrongLastSequence(err) {
			b.positions.forget(stream)
			b.forgetStream(err)
			return err
		}
		// Another node published in between: read where the stream is.
		known = false
	}
	return fmt.Errorf("stamping %q lost %d races for the next offset", stream, natsStampRetries)
}

// publish stores batch on top of pos, the stream's last message as this
// node knows it: in pos's epoch from the next offset on, or from offset 1
// of a new epoch when pos cannot be continued. JetStream refuses it (a
// wrong last sequence error) when the subject's last message is not pos's
// any more.
func (b *NATS) publish(ctx context.Context, stream string, batch []*stampRequest, pos position) error {
	server := b.conn.ConnectedServerId()
	epoch, first := pos.next(server, b.standalone())
	msg := nats.NewMsg(historySubject(stream))
	msg.Header.Set(natsServerHeader, server)
	msg.Header.Set(natsTimeHeader, strconv.FormatInt(b.now().UnixMilli(), 10))
	for i, r := range batch {
		r.p.Epoch, r.p.Offset = epoch, first+uint64(i)
	}
	msg.Data = encodeBatch(batch)
	// The message id names the first offset: a replicated stream checks
	// the expected last sequence only against what it has applied, so two
	// nodes claiming one offset at once can both pass that check, but the
	// id is checked in commit order and the second is refused as a
	// duplicate.
	ack, err := b.js.PublishMsg(ctx, msg, jetstream.WithRetryAttempts(0), jetstream.WithExpectLastSequencePerSubject(pos.seq),
		jetstream.WithMsgID(pubsub.NATSStreamToken(stream)+":"+epoch+":"+strconv.FormatUint(first, 10)))
	if errors.Is(err, jetstream.ErrNoStreamResponse) {
		// No stream takes the subject (first use, or JetStream lost its
		// store): create it. Its subjects are empty, so what pos held is
		// gone; the caller reads again.
		b.forgetStream(err)
		if _, cerr := b.historyStream(ctx); cerr != nil {
			return cerr
		}
		return wrongLastSequence
	}
	if err != nil {
		return err
	}
	if ack.Duplicate {
		// Another node claimed the offset first: read where the stream is.
		b.positions.forget(stream)
		return wrongLastSequence
	}
	b.positions.put(stream, position{seq: ack.Sequence, epoch: epoch, offset: first + uint64(len(batch)) - 1, server: server})
	return nil
}

// encodeBatch is the body of a JetStream message holding batch: a stream
// message, or a JSON array of them.
func encodeBatch(batch []*stampRequest) []byte {
	if len(batch) == 1 {
		return protocol.EncodeStreamMessage(batch[0].p)
	}
	size := 1
	for _, r := range batch {
		size += r.size + 1
	}
	out := make([]byte, 0, size)
	out = append(out, '[')
	for i, r := range batch {
		if i > 0 {
			out = append(out, ',')
		}
		out = protocol.AppendStreamMessage(out, r.p)
	}
	return append(out, ']')
}

// backoff waits a random time up to 50 µs × 2^attempt, at most 10 ms,
// unless ctx ends first.
func backoff(ctx context.Context, attempt int) error {
	limit := min(50*time.Microsecond<<min(attempt, 8), 10*time.Millisecond)
	t := time.NewTimer(rand.N(limit))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// wrongLastSequence stands for JetStream's refusal of a publish whose
// expected last subject sequence is not the subject's.
var wrongLastSequence = &jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeStreamWrongLastSequence, Description: "wrong last sequence"}

func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
