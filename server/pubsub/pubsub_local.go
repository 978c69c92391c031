package pubsub

import (
	"context"

	"github.com/cablehub/cablehub/server/protocol"
)

// Local is the single-node pub/sub: everything published is handed straight
// to this node's handler.
type Local struct {
	h Handler
	// ready is every subscription's Ready: done at once.
	ready *Ready
}

// NewLocal returns a loop-back pub/sub delivering to h.
func NewLocal(h Handler) *Local { return &Local{h: h, ready: ReadyNow(nil)} }

// Describe names the pub/sub for the startup log.
func (*Local) Describe() string { return "Using local pub/sub (single node)" }

// Run returns when ctx is done.
func (*Local) Run(ctx context.Context) { <-ctx.Done() }

// Publish delivers pubs in order.
func (l *Local) Publish(_ context.Context, pubs []protocol.Publication) error {
	for i := range pubs {
		l.h.HandlePublication(&pubs[i])
	}
	return nil
}

// PublishCommand runs c on this node.
func (l *Local) PublishCommand(_ context.Context, c *Command) error {
	l.h.HandleCommand(c)
	return nil
}

// PublishCluster does nothing: a single node has no one to tell.
func (*Local) PublishCluster(context.Context, []byte) error { return nil }

// Subscribe does nothing: every publication is local.
func (l *Local) Subscribe(string) *Ready { return l.ready }

// Unsubscribe does nothing.
func (*Local) Unsubscribe(string) {}

// Healthy always reports nil.
func (*Local) Healthy(context.Context) error { return nil }
