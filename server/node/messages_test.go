package node

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cablehub/cablehub/server/protocol"
)

func TestMessageCacheEncodesOnceWithinBound(t *testing.T) {
	c := newMessageCache(64 << 10)
	p := &protocol.Publication{Stream: "s", Epoch: "e", Offset: 1, Data: `{"b":1,"a":2}`}
	first := c.message(p)
	if string(first) != `{"a":2,"b":1}` {
		t.Fatalf("encoded %s", first)
	}
	if again := c.message(p); &again[0] != &first[0] {
		t.Errorf("stamped publication encoded again")
	}
	unstamped := &protocol.Publication{Stream: "s", Data: `"x"`}
	if string(c.message(unstamped)) != `"x"` || len(c.entries) != 1 {
		t.Errorf("unstamped publication cached")
	}
	data := `"` + strings.Repeat("d", 1000) + `"`
	for i := range 1000 {
		c.message(&protocol.Publication{Stream: "s", Epoch: "e", Offset: uint64(i + 2), Data: data})
	}
	if c.size > c.max || len(c.entries) > 64 {
		t.Errorf("cache over its bound: %d bytes, %d entries", c.size, len(c.entries))
	}
	if _, ok := c.entries[messageKey{"s", "e", 1001}]; !ok {
		t.Errorf("newest entry evicted")
	}
}

// BenchmarkHistoryMessage is the per-entry cost of a history replay of
// 60 KB publications, with the cache (hit) and without (encode).
func BenchmarkHistoryMessage(b *testing.B) {
	data := fmt.Sprintf(`{"t":%q}`, strings.Repeat("x", 60_000))
	p := &protocol.Publication{Stream: "s", Epoch: "e", Offset: 1, Data: data}
	b.Run("cached", func(b *testing.B) {
		c := newMessageCache(defaultMessageCacheSize)
		for b.Loop() {
			c.message(p)
		}
	})
	b.Run("encode", func(b *testing.B) {
		for b.Loop() {
			protocol.EncodeMessage(p.Data)
		}
	})
}
