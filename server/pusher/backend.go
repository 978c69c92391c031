package pusher

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/cablehub/cablehub/server/broker"
	"github.com/cablehub/cablehub/server/hub"
	"github.com/cablehub/cablehub/server/protocol"
)

// Node is what NodeBackend serves the HTTP API from; *node.Node is one.
type Node interface {
	Broadcast(ctx context.Context, pubs []protocol.Publication) error
	Presence(ctx context.Context, stream string) (*broker.PresenceInfo, error)
	StreamCounts(prefix string, limit int) []hub.StreamCount
	// OccupiedStreams lists the cluster's occupied streams (those the
	// node's Observer watches); ok is false when it cannot tell.
	OccupiedStreams(ctx context.Context, prefix string, limit int) (streams []string, ok bool, err error)
	// Subscriptions is a stream's number of subscribers in the cluster
	// where the broker keeps the nodes' counts, else on this node.
	Subscriptions(ctx context.Context, stream string) (int, error)
}

// MaxChannelsListed bounds the channels one GET /channels lists.
const MaxChannelsListed = 10000

// NodeBackend is the HTTP API's Backend on a node: publications go
// through the node's broker to every node; presence comes from the
// broker, so user counts and members are the cluster's; so are the
// occupied channels where the broker keeps the nodes' occupancy records
// (Redis; memory on one node), else they are this node's; so are
// subscription counts.
type NodeBackend struct {
	Node Node
}

// Broadcast publishes through the node.
func (b NodeBackend) Broadcast(ctx context.Context, pubs []protocol.Publication) error {
	return b.Node.Broadcast(ctx, pubs)
}

// Presence reads a presence channel's members from the broker.
func (b NodeBackend) Presence(ctx context.Context, stream string) (*broker.PresenceInfo, error) {
	return b.Node.Presence(ctx, stream)
}

// Channels lists this node's occupied channels (see NodeBackend),
// leaving out users' own streams and names no Pusher client could
// subscribe to.
func (b NodeBackend) Channels(ctx context.Context, prefix string) ([]ChannelInfo, error) {
	names, cluster, err := b.Node.OccupiedStreams(ctx, prefix, MaxChannelsListed)
	if err != nil {
		return nil, err
	}
	var local map[string]int
	if !cluster {
		// The node's own subscriptions are all it can tell, counts included.
		counts := b.Node.StreamCounts(prefix, MaxChannelsListed)
		local = make(map[string]int, len(counts))
		names = make([]string, 0, len(counts))
		for _, c := range counts {
			local[c.Stream] = c.Subscriptions
			names = append(names, c.Stream)
		}
	}
	out := make([]ChannelInfo, 0, len(names))
	seen := make(map[string]bool, len(names))
	for _, name := range names {
		if seen[name] || strings.HasPrefix(name, userPrefix) || !ValidChannel(name) {
			continue
		}
		seen[name] = true
		out = append(out, ChannelInfo{Name: name, Subscriptions: local[name]})
	}
	return out, nil
}

// Subscriptions counts a channel's subscribers (see NodeBackend).
func (b NodeBackend) Subscriptions(ctx context.Context, channel string) (int, error) {
	return b.Node.Subscriptions(ctx, channel)
}

// TerminateUser closes the connections signed in as userID on every node
// (TerminatePublication).
func (b NodeBackend) TerminateUser(ctx context.Context, userID string) error {
	return b.Node.Broadcast(ctx, []protocol.Publication{TerminatePublication(userID)})
}

// ChannelWatch is the node's Observer in Pusher mode without webhooks:
// it watches Pusher channels, so the node records their occupancy in the
// broker (which the HTTP API's channel queries read), and does nothing
// with the events.
type ChannelWatch struct{}

// Watches reports whether stream is a channel (see Webhooks.Watches).
func (ChannelWatch) Watches(stream string) bool { return ValidChannel(stream) }

func (ChannelWatch) Occupied(string)                          {}
func (ChannelWatch) Vacated(string)                           {}
func (ChannelWatch) Joined(string, string, json.RawMessage)   {}
func (ChannelWatch) Left(string, string)                      {}
func (ChannelWatch) Whispered(string, string, string, []byte) {}
