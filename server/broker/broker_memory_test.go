package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/cablehub/cablehub/server/protocol"
)

// clock is a manual time source for expiry tests.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestMemory(opts MemoryOptions) (*Memory, *clock) {
	m := NewMemory(opts)
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	m.now = c.now
	return m, c
}

func BenchmarkPresenceInfo10k(b *testing.B) {
	ctx := context.Background()
	m := NewMemory(MemoryOptions{})
	for i := range 10000 {
		m.PresenceJoin(ctx, "room", fmt.Sprint("s", i), fmt.Sprint("user-", i), json.RawMessage(`{"name":"x"}`))
	}
	b.ReportAllocs()
	for b.Loop() {
		m.PresenceInfo(ctx, "room")
	}
}

// BenchmarkHistoryMemory100x100 reports the live heap held by 100 streams
// with 100 history entries each (heap-bytes), measured after a GC.
func BenchmarkHistoryMemory100x100(b *testing.B) {
	ctx := context.Background()
	var total uint64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		m := NewMemory(MemoryOptions{HistoryLimit: 100, HistoryTTL: time.Minute})
		for s := range 100 {
			stream := fmt.Sprint("stream-", s)
			for i := range 100 {
				m.Stamp(ctx, &protocol.Publication{Stream: stream, Data: fmt.Sprintf(`{"text":"message %d"}`, i)})
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(m)
		total += after.HeapAlloc - before.HeapAlloc
	}
	b.ReportMetric(float64(total)/float64(b.N), "heap-bytes")
}
