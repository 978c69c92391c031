// Package hub indexes a node's subscriptions by stream and fans
// publications out to them.
package hub

import (
	"hash/fnv"
	"strings"
	"sync"
	"sync/atomic"

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
	// Encoder is the subscriber's wire format. It must stay the same for
	// as long as the subscriber is in the hub, and be comparable: the hub
	// groups subscribers by it.
	Encoder() Encoder
}

// Encoder turns a publication into the frame a transport sends for one
// subscription: protocol.ActionCable for WebSocket clients, other formats
// for other transports. The frame must not depend on the subscriber (only
// on the identifier and the publication), since it is shared by every
// subscriber with the same encoder and identifier.
type Encoder interface {
	// AppendBroadcast appends p's frame for a subscription under
	// identifier to dst; message is protocol.EncodeMessage(p.Data),
	// computed once per publication.
	AppendBroadcast(dst []byte, identifier string, p *protocol.Publication, message []byte) []byte
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
	// delivered counts the frames handed to subscribers (Delivered); one
	// add per publication, kept per shard so publications on different
	// shards do not contend for it.
	delivered atomic.Uint64
	// streams maps a stream to its subscriptions grouped by encoder and
	// identifier, so a publication is encoded once per group however many
	// subscribers it has.
	streams map[string]map[group]map[Subscriber]struct{}
	// subscriptions counts the entries of streams' sets, for Totals.
	subscriptions int
}

// group is the subscribers of a stream that share one frame.
type group struct {
	enc        Encoder
	identifier string
}

// New returns a hub with n shards (DefaultShards when n < 1).
func New(n int) *Hub {
	if n < 1 {
		n = DefaultShards
	}
	h := &Hub{shards: make([]*shard, n)}
	for i := range h.shards {
		h.shards[i] = &shard{streams: map[string]map[group]map[Subscriber]struct{}{}}
	}
	return h
}

func (h *Hub) shard(stream string) *shard {
	f := fnv.New64a()
	f.Write([]byte(stream))
	return h.shards[f.Sum64()%uint64(len(h.shards))]
}

// Subscribe adds s to stream under identifier, reporting whether the
// stream had no subscriber on this node before. Whether the node listens
// to the stream on a cluster pub/sub is the pub/sub's own count (see
// node.PubSub), not the hub's.
func (h *Hub) Subscribe(stream, identifier string, s Subscriber) (first bool) {
	sh := h.shard(stream)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	groups, ok := sh.streams[stream]
	first = !ok
	if !ok {
		groups = map[group]map[Subscriber]struct{}{}
		sh.streams[stream] = groups
	}
	g := group{s.Encoder(), identifier}
	set, ok := groups[g]
	if !ok {
		set = map[Subscriber]struct{}{}
		groups[g] = set
	}
	before := len(set)
	set[s] = struct{}{}
	sh.subscriptions += len(set) - before
	return first
}

// Unsubscribe removes s from stream under identifier, if it is there,
// reporting whether that left the stream without subscribers on this
// node.
func (h *Hub) Unsubscribe(stream, identifier string, s Subscriber) (last bool) {
	sh := h.shard(stream)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	groups := sh.streams[stream]
	g := group{s.Encoder(), identifier}
	set, ok := groups[g]
	if !ok {
		return false
	}
	before := len(set)
	delete(set, s)
	sh.subscriptions -= before - len(set)
	if len(set) == 0 {
		delete(groups, g)
	}
	if len(groups) == 0 {
		delete(sh.streams, stream)
		return true
	}
	return false
}

// Broadcast delivers p to every subscription of its stream on this node,
// except the session named by p.ExcludeSocket. The frame is encoded once per
// encoder and identifier and shared by all subscribers under them.
func (h *Hub) Broadcast(p *protocol.Publication) {
	sh := h.shard(p.Stream)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	groups := sh.streams[p.Stream]
	if len(groups) == 0 {
		return
	}
	message := protocol.EncodeMessage(p.Data)
	delivered := 0
	for g, set := range groups {
		frame := g.enc.AppendBroadcast(nil, g.identifier, p, message)
		for s := range set {
			if p.ExcludeSocket != "" && s.SID() == p.ExcludeSocket {
				s.Deliver(g.identifier, p, nil)
				continue
			}
			s.Deliver(g.identifier, p, frame)
			delivered++
		}
	}
	sh.delivered.Add(uint64(delivered))
}

// Delivered counts the frames Broadcast handed to subscribers since the
// hub was made: one per subscription a publication reached (the excluded
// session is not counted).
func (h *Hub) Delivered() uint64 {
	var n uint64
	for _, sh := range h.shards {
		n += sh.delivered.Load()
	}
	return n
}

// Subscription is one subscriber of a stream under an identifier.
type Subscription struct {
	Identifier string
	Subscriber Subscriber
}

// Subscriptions lists the subscriptions of stream at the time of the
// call.
func (h *Hub) Subscriptions(stream string) []Subscription {
	sh := h.shard(stream)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	var out []Subscription
	for g, set := range sh.streams[stream] {
		for s := range set {
			out = append(out, Subscription{Identifier: g.identifier, Subscriber: s})
		}
	}
	return out
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

// Totals counts the streams with at least one subscriber and their
// subscriptions, without listing them: a read per shard, however many
// streams there are (GetInfo asks every second while an admin console
// shows the Overview).
func (h *Hub) Totals() (streams, subscriptions int) {
	for _, sh := range h.shards {
		sh.mu.RLock()
		streams += len(sh.streams)
		subscriptions += sh.subscriptions
		sh.mu.RUnlock()
	}
	return streams, subscriptions
}

// StreamCount is a stream with its number of subscriptions on this node.
type StreamCount struct {
	Stream        string
	Subscriptions int
}

// Counts lists the streams whose names start with prefix that have
// subscribers on this node, with how many, in no particular order; at
// most limit of them when limit is positive.
func (h *Hub) Counts(prefix string, limit int) []StreamCount {
	var out []StreamCount
	for _, sh := range h.shards {
		sh.mu.RLock()
		for stream, groups := range sh.streams {
			if !strings.HasPrefix(stream, prefix) {
				continue
			}
			n := 0
			for _, set := range groups {
				n += len(set)
			}
			out = append(out, StreamCount{stream, n})
			if limit > 0 && len(out) >= limit {
				sh.mu.RUnlock()
				return out
			}
		}
		sh.mu.RUnlock()
	}
	return out
}

// Count is the number of subscriptions of stream on this node.
func (h *Hub) Count(stream string) int {
	sh := h.shard(stream)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	n := 0
	for _, set := range sh.streams[stream] {
		n += len(set)
	}
	return n
}
