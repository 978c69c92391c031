package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"cablehub/server/protocol"
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

func TestMemoryPresenceDedupesByID(t *testing.T) {
	ctx := context.Background()
	m, _ := newTestMemory(MemoryOptions{PresenceTTL: time.Second})
	if joined, _ := m.PresenceJoin(ctx, "room", "s1", "u1", json.RawMessage(`{"name":"Alice"}`)); !joined {
		t.Error("first join of u1 not reported")
	}
	if joined, _ := m.PresenceJoin(ctx, "room", "s2", "u1", json.RawMessage(`{"name":"Alice (tab 2)"}`)); joined {
		t.Error("second session of u1 reported as a new join")
	}
	if joined, _ := m.PresenceJoin(ctx, "room", "s2", "u1", nil); joined {
		t.Error("repeated join reported")
	}
	m.PresenceJoin(ctx, "room", "s2", "u1", json.RawMessage(`{"name":"Alice (tab 2)"}`))
	if _, err := m.PresenceJoin(ctx, "room", "s1", "u2", nil); !errors.Is(err, ErrPresenceMismatch) {
		t.Errorf("re-join with another id: %v", err)
	}
	m.PresenceJoin(ctx, "room", "s3", "b0", nil)

	info, _ := m.PresenceInfo(ctx, "room")
	if info.Total != 2 || info.Records[0].ID != "b0" || info.Records[1].ID != "u1" ||
		string(info.Records[1].Info) != `{"name":"Alice (tab 2)"}` {
		t.Errorf("info: %+v", info)
	}
	if id, left, _ := m.PresenceLeave(ctx, "room", "s1"); id != "u1" || left {
		t.Errorf("leave of one of two sessions: %q %v", id, left)
	}
	if id, left, _ := m.PresenceLeave(ctx, "room", "s2"); id != "u1" || !left {
		t.Errorf("leave of the last session: %q %v", id, left)
	}
	if _, left, _ := m.PresenceLeave(ctx, "room", "s2"); left {
		t.Error("repeated leave reported")
	}
	if info, _ := m.PresenceInfo(ctx, "unknown"); info.Total != 0 || info.Records != nil {
		t.Errorf("unknown stream: %+v", info)
	}
}

func TestMemoryPresenceExpiresOnlyAfterDisconnect(t *testing.T) {
	ctx := context.Background()
	m, c := newTestMemory(MemoryOptions{PresenceTTL: 5 * time.Second})
	m.PresenceJoin(ctx, "room", "s1", "u1", nil)
	m.PresenceJoin(ctx, "room", "s2", "u1", nil)
	m.PresenceJoin(ctx, "other", "s1", "u1", nil)
	c.t = c.t.Add(time.Hour) // connected sessions never expire
	if left := m.expirePresence(c.t); len(left) != 0 {
		t.Fatalf("expired while connected: %v", left)
	}
	m.PresenceDisconnect(ctx, "s1")
	c.t = c.t.Add(4 * time.Second)
	if left := m.expirePresence(c.t); len(left) != 0 {
		t.Fatalf("expired before the TTL: %v", left)
	}
	c.t = c.t.Add(2 * time.Second)
	left := m.expirePresence(c.t)
	// u1 still has s2 on "room"; on "other" s1 was its only session.
	if len(left) != 1 || left[0] != (PresenceLeft{Stream: "other", ID: "u1"}) {
		t.Fatalf("left: %v", left)
	}
	if info, _ := m.PresenceInfo(ctx, "room"); info.Total != 1 {
		t.Errorf("room: %+v", info)
	}
}

func pub(stream, data string) *protocol.Publication {
	return &protocol.Publication{Stream: stream, Data: data}
}

func TestMemoryHistory(t *testing.T) {
	ctx := context.Background()
	m, c := newTestMemory(MemoryOptions{HistoryLimit: 3, HistoryTTL: time.Minute})
	for i := 1; i <= 5; i++ {
		p := pub("s", fmt.Sprint(i))
		m.Stamp(ctx, p)
		if p.Offset != uint64(i) || p.Epoch != m.Epoch() {
			t.Fatalf("stamp %d: %+v", i, p)
		}
		c.t = c.t.Add(time.Second)
	}
	data := func(ps []protocol.Publication) string {
		s := ""
		for _, p := range ps {
			s += p.Data
		}
		return s
	}
	// Retained: 3, 4, 5.
	cases := []struct {
		epoch  string
		offset uint64
		want   string
		err    bool
	}{
		{m.Epoch(), 3, "45", false},
		{m.Epoch(), 4, "5", false},
		{m.Epoch(), 5, "", false},
		{m.Epoch(), 2, "", true}, // below the oldest kept offset: rejected, as AnyCable does
		{m.Epoch(), 6, "", true},
		{"nope", 4, "", true},
	}
	for _, cse := range cases {
		got, err := m.HistoryFrom(ctx, "s", cse.epoch, cse.offset)
		if (err != nil) != cse.err || data(got) != cse.want {
			t.Errorf("from %s/%d: %q %v", cse.epoch, cse.offset, data(got), err)
		}
	}
	if _, err := m.HistoryFrom(ctx, "unknown", m.Epoch(), 0); !errors.Is(err, ErrHistoryUnavailable) {
		t.Errorf("unknown stream: %v", err)
	}
	since := c.t.Add(-2 * time.Second).Unix()
	if got, _ := m.HistorySince(ctx, "s", since); data(got) != "45" {
		t.Errorf("since: %q", data(got))
	}
	if got, err := m.HistorySince(ctx, "unknown", since); err != nil || got != nil {
		t.Errorf("since on unknown: %v %v", got, err)
	}
	// TTL: everything expires, offsets carry on.
	c.t = c.t.Add(2 * time.Minute)
	m.expireHistory(c.t)
	if _, err := m.HistoryFrom(ctx, "s", m.Epoch(), 4); err == nil {
		t.Error("expired history served")
	}
	p := pub("s", "6")
	m.Stamp(ctx, p)
	if p.Offset != 6 {
		t.Errorf("offset after expiry: %d", p.Offset)
	}
}

func TestMemorySessions(t *testing.T) {
	ctx := context.Background()
	m, c := newTestMemory(MemoryOptions{SessionsTTL: time.Minute})
	m.CacheSession(ctx, "sid", []byte("state"))
	for range 2 { // not consumed by a restore
		if got, err := m.RestoreSession(ctx, "sid"); err != nil || string(got) != "state" {
			t.Fatalf("restore: %q %v", got, err)
		}
	}
	c.t = c.t.Add(2 * time.Minute)
	if _, err := m.RestoreSession(ctx, "sid"); !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("expired session restored: %v", err)
	}
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
