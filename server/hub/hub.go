// Package hub indexes a node's subscriptions by stream and fans
// publications out to them.
package hub

import (
	"hash/fnv"
	"sync"

	"github.com/cablehub/cablehub/server/protocol"
)

// Subscriber is a client session as the hub sees it.
type Subscriber interface {
	// SID is the session id, matched against a publication's exclude_socket.
	SID() string
	// Deliver queues frame, the encoding of p for the subscription
	// identifier, for the client. It must not block: the hub calls it while
	// fanning out to every other subscriber too. The frame is shared between
	// subscribers and must not be modified. A nil frame says p is not for
	// this subscriber (its exclude_socket): nothing is sent, but p's offset
	// is passed, so the subscriber does not take it for a gap.
	Deliver(identifier string, p *protocol.Publication, frame []byte)
}

// DefaultShards is the number of independent shards streams are spread over.
const DefaultShards = 16

// Hub maps streams to the subscriptions of this node. Streams hash to
// shards, so publishes and subscriptions on different streams rarely
// contend. All methods are safe for concurrent use.
type Hub struct {
	shards []*shard
}

type shard struct {
	mu sync.RWMutex
	// streams maps a stream to its subscriptions grouped by identifier, so
	// a publication is encoded once per identifier.
	streams map[string]map[string]map[Subscriber]struct{}
}

// New returns a hub with n shards (DefaultShards when n < 1).
func New(n int) *Hub {
	if n < 1 {
		n = DefaultShards
	}
	h := &Hub{shards: make([]*shard, n)}
	for i := range h.shards {
		h.shards[i] = &shard{streams: map[string]map[string]map[Subscriber]struct{}{}}
	}
	return h
}

func (h *Hub) shard(stream string) *shard {
	f := fnv.New64a()
	f.Write([]byte(stream))
	return h.shards[f.Sum64()%uint64(len(h.shards))]
}

// Subscribe adds s to stream under identifier. Whether the node listens to
// the stream on a cluster pub/sub is the pub/sub's own count (see
// node.PubSub), not the hub's.
func (h *Hub) Subscribe(stream, identifier string, s Subscriber) {
	sh := h.shard(stream)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	byID, ok := sh.streams[stream]
	if !ok {
		byID = map[string]map[Subscriber]struct{}{}
		sh.streams[stream] = byID
	}
	set, ok := byID[identifier]
	if !ok {
		set = map[Subscriber]struct{}{}
		byID[identifier] = set
	}
	set[s] = struct{}{}
}

// Unsubscribe removes s from stream under identifier, if it is there.
func (h *Hub) Unsubscribe(stream, identifier string, s Subscriber) {
	sh := h.shard(stream)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	byID := sh.streams[stream]
	set, ok := byID[identifier]
	if !ok {
		return
	}
	delete(set, s)
	if len(set) == 0 {
		delete(byID, identifier)
	}
	if len(byID) == 0 {
		delete(sh.streams, stream)
	}
}

// Broadcast delivers p to every subscription of its stream on this node,
// except the session named by p.ExcludeSocket. The frame is encoded once per
// identifier and shared by all subscribers under it.
func (h *Hub) Broadcast(p *protocol.Publication) {
	sh := h.shard(p.Stream)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	byID := sh.streams[p.Stream]
	if len(byID) == 0 {
		return
	}
	message := protocol.EncodeMessage(p.Data)
	for identifier, set := range byID {
		frame := protocol.AppendBroadcast(nil, identifier, p, message)
		for s := range set {
			if p.ExcludeSocket != "" && s.SID() == p.ExcludeSocket {
				s.Deliver(identifier, p, nil)
				continue
			}
			s.Deliver(identifier, p, frame)
		}
	}
}

// Streams returns the number of streams with at least one subscriber.
func (h *Hub) Streams() int {
	n := 0
	for _, sh := range h.shards {
		sh.mu.RLock()
		n += len(sh.streams)
		sh.mu.RUnlock()
	}
	return n
}
