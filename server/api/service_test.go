package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
	"github.com/cablehub/cablehub/server/broker"
	"github.com/cablehub/cablehub/server/hub"
	"github.com/cablehub/cablehub/server/metrics"
	"github.com/cablehub/cablehub/server/node"
	"github.com/cablehub/cablehub/server/streams"
)

func newService(b *broker.Memory) *Service {
	n := node.New(hub.New(1), b, streams.NewController(streams.Config{}), metrics.New(), slog.New(slog.NewTextHandler(io.Discard, nil)), node.Options{})
	return NewService(n)
}

func TestGetPresenceRecords(t *testing.T) {
	ctx := context.Background()
	b := broker.NewMemory(broker.MemoryOptions{})
	b.PresenceJoin(ctx, "room", "s2", "b", nil)
	b.PresenceJoin(ctx, "room", "s1", "a", json.RawMessage(`{"n":1}`))
	resp, err := newService(b).GetPresence(ctx, &cablehubv1.GetPresenceRequest{Stream: "room"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetTotal() != 2 || resp.Records[0].Id != "a" || resp.Records[0].Info.GetStructValue().Fields["n"].GetNumberValue() != 1 || resp.Records[1].Info != nil {
		t.Errorf("%v", resp)
	}
}

// BenchmarkGetPresence10k is the service call for a stream with 10,000
// members: broker read, sort, and conversion to protobuf values.
func BenchmarkGetPresence10k(b *testing.B) {
	ctx := context.Background()
	m := broker.NewMemory(broker.MemoryOptions{})
	for i := range 10000 {
		m.PresenceJoin(ctx, "room", fmt.Sprint("s", i), fmt.Sprintf("user-%05d", i), json.RawMessage(`{"name":"User","status":"online"}`))
	}
	svc := newService(m)
	req := &cablehubv1.GetPresenceRequest{Stream: "room"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.GetPresence(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
