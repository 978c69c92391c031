package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
)

func TestMemoryPresenceDedupesByID(t *testing.T) {
	ctx := context.Background()
	m := NewMemory()
	if joined, _ := m.PresenceJoin(ctx, "room", "s1", "u1", json.RawMessage(`{"name":"Alice"}`)); !joined {
		t.Error("first join of u1 not reported")
	}
	if joined, _ := m.PresenceJoin(ctx, "room", "s2", "u1", json.RawMessage(`{"name":"Alice (tab 2)"}`)); joined {
		t.Error("second session of u1 reported as a new join")
	}
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
	info, _ = m.PresenceInfo(ctx, "room")
	if info.Total != 1 {
		t.Errorf("after leaves: %+v", info)
	}
	if info, _ := m.PresenceInfo(ctx, "unknown"); info.Total != 0 || info.Records != nil {
		t.Errorf("unknown stream: %+v", info)
	}
}

func BenchmarkPresenceInfo10k(b *testing.B) {
	ctx := context.Background()
	m := NewMemory()
	for i := range 10000 {
		m.PresenceJoin(ctx, "room", fmt.Sprint("s", i), fmt.Sprint("user-", i), json.RawMessage(`{"name":"x"}`))
	}
	b.ReportAllocs()
	for b.Loop() {
		m.PresenceInfo(ctx, "room")
	}
}
