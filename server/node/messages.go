package node

import (
	"sync"

	"github.com/cablehub/cablehub/server/protocol"
)

// messageCache keeps the encoded "message" of stamped publications that
// history replays sent, so a publication is encoded once however many
// clients (or one client, many times) ask for it. Encoding is a JSON
// decode and encode of the whole payload: re-encoding a full history per
// request let one small request cost a large amount of CPU. A stamped
// publication never changes (stream, epoch and offset name it), so entries
// need no invalidation; the cache is bounded in bytes and forgets the
// oldest entries first.
type messageCache struct {
	mu      sync.Mutex
	max     int
	size    int
	entries map[messageKey][]byte
	order   []messageKey // insertion order; head is the next to evict
	head    int
}

type messageKey struct {
	stream, epoch string
	offset        uint64
}

// defaultMessageCacheSize bounds the history message cache.
const defaultMessageCacheSize = 32 << 20

func newMessageCache(max int) *messageCache {
	return &messageCache{max: max, entries: map[messageKey][]byte{}}
}

// message returns EncodeMessage(p.Data), from the cache when p is stamped.
func (c *messageCache) message(p *protocol.Publication) []byte {
	if p.Offset == 0 {
		return protocol.EncodeMessage(p.Data)
	}
	key := messageKey{p.Stream, p.Epoch, p.Offset}
	c.mu.Lock()
	msg, ok := c.entries[key]
	c.mu.Unlock()
	if ok {
		return msg
	}
	msg = protocol.EncodeMessage(p.Data)
	cost := len(msg) + len(p.Stream) + len(p.Epoch) + 64
	if cost > c.max/8 {
		return msg // one entry may not crowd out the rest
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; ok {
		return msg
	}
	for c.size+cost > c.max && c.head < len(c.order) {
		old := c.order[c.head]
		c.order[c.head] = messageKey{}
		c.head++
		c.size -= len(c.entries[old]) + len(old.stream) + len(old.epoch) + 64
		delete(c.entries, old)
	}
	if c.head > len(c.order)/2 {
		c.order = append(c.order[:0], c.order[c.head:]...)
		c.head = 0
	}
	c.entries[key] = msg
	c.order = append(c.order, key)
	c.size += cost
	return msg
}
