// Package node is the heart of a Cablehub process: it takes publications
// from the API and delivers them to subscribers, and answers presence reads.
// Client sessions (the WebSocket transport) attach to it through the hub.
package node

import (
	"context"
	"log/slog"

	"cablehub/server/broker"
	"cablehub/server/hub"
	"cablehub/server/protocol"
)

// Broker is what the node needs from a broker. It may live in another
// process (Redis), so every call takes a context and may fail.
type Broker interface {
	SupportsPresence() bool
	PresenceInfo(ctx context.Context, stream string) (*broker.PresenceInfo, error)
}

// Node delivers publications and serves presence for one process.
type Node struct {
	hub    *hub.Hub
	broker Broker
	log    *slog.Logger
}

// New returns a node that fans out through h and keeps presence in b.
func New(h *hub.Hub, b Broker, log *slog.Logger) *Node {
	return &Node{hub: h, broker: b, log: log}
}

// Hub returns the subscription index sessions register with.
func (n *Node) Hub() *hub.Hub { return n.hub }

// Broadcast delivers each publication to the subscribers of its stream, in
// the given order. The publications must already be validated (non-empty
// streams). An error means the broadcast could not be taken; publications
// before the failing one may have been delivered.
func (n *Node) Broadcast(ctx context.Context, pubs []protocol.Publication) error {
	for i := range pubs {
		if err := ctx.Err(); err != nil {
			return err
		}
		n.hub.Broadcast(&pubs[i])
	}
	return nil
}

// Presence returns the presence records of stream, or
// broker.ErrPresenceUnsupported when the broker keeps none.
func (n *Node) Presence(ctx context.Context, stream string) (*broker.PresenceInfo, error) {
	if !n.broker.SupportsPresence() {
		return nil, broker.ErrPresenceUnsupported
	}
	return n.broker.PresenceInfo(ctx, stream)
}
