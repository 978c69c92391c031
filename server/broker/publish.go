package broker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cablehub/cablehub/server/protocol"
)

// Publisher hands publications to every node of the cluster, this one
// included, in the order given: the node's pub/sub (pubsub.Local, Redis or
// NATS). StampAndPublish publishes through it whatever the broker does not
// deliver by itself. A nil error means the pub/sub took everything.
type Publisher interface {
	Publish(ctx context.Context, pubs []protocol.Publication) error
}

// twoStep is a broker whose stamping and publishing are two steps: Stamp
// writes history, a Publisher publishes, and Void takes back a stamped
// publication that could not be published.
type twoStep interface {
	Stamp(ctx context.Context, p *protocol.Publication) error
	Void(ctx context.Context, p *protocol.Publication) error
}

// voidTimeout bounds taking back a publication that was stamped but not
// published; it runs on a context of its own, as the caller's may be what
// ran out.
const voidTimeout = 5 * time.Second

// sequencer keeps stamping and publishing in one order per stream when
// they are two steps (Memory, and Redis with another pub/sub): each
// publication is stamped and published under its stream's lock, so of two
// concurrent publications of a stream the one with the lower offset
// reaches the pub/sub first. It must: a session drops offsets at or below
// the last it sent in an epoch, so a lower offset arriving second would be
// lost to it. The order holds between this process's publishers only; a
// broker shared by several nodes whose pub/sub is separate leaves the rest
// to the receiving sessions (node.Options.Reorder). Each stream has a lock
// of its own: a publication that waits on the network (a slow pub/sub, a
// void) holds up its stream only.
type sequencer struct {
	locks streamLocks
}

// stampAndPublish stamps (unless transient) and publishes each of pubs in
// turn through ps; see node.Broker.StampAndPublish. A publication stamped
// but not published is voided, so that the error answer means it was not
// kept; when voiding fails too the error says so.
func (s *sequencer) stampAndPublish(ctx context.Context, b twoStep, pubs []protocol.Publication, ps Publisher) (taken int, err error) {
	for i := range pubs {
		if err := s.one(ctx, b, &pubs[i], ps); err != nil {
			return i, err
		}
	}
	return len(pubs), nil
}

func (s *sequencer) one(ctx context.Context, b twoStep, p *protocol.Publication, ps Publisher) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	unlock := s.locks.lock(p.Stream)
	defer unlock()
	if !p.Transient {
		if err := b.Stamp(ctx, p); err != nil {
			return err
		}
	}
	err := ps.Publish(ctx, []protocol.Publication{*p})
	if err == nil || p.Offset == 0 {
		return err
	}
	// The void must happen before the stream's next publication, or a
	// session could fill its gap with this one from history; it runs on
	// a deadline of its own, as the caller's may be what ran out.
	vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), voidTimeout)
	defer cancel()
	if verr := b.Void(vctx, p); verr != nil {
		return fmt.Errorf("%w (and offset %d of %q, not voided, stays in history: %v)", err, p.Offset, p.Stream, verr)
	}
	return err
}

// streamLocks is a lock per stream, made on first use and dropped when
// nobody holds or waits for it. Safe for concurrent use.
type streamLocks struct {
	mu    sync.Mutex
	locks map[string]*streamLock
}

type streamLock struct {
	mu    sync.Mutex
	users int // holders and waiters; guarded by streamLocks.mu
}

// lock locks stream's lock and returns its unlock.
func (l *streamLocks) lock(stream string) (unlock func()) {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*streamLock{}
	}
	e, ok := l.locks[stream]
	if !ok {
		e = &streamLock{}
		l.locks[stream] = e
	}
	e.users++
	l.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		l.mu.Lock()
		e.users--
		if e.users == 0 {
			delete(l.locks, stream)
		}
		l.mu.Unlock()
	}
}
