package api

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
	"github.com/cablehub/cablehub/server/broker"
	"github.com/cablehub/cablehub/server/hub"
	"github.com/cablehub/cablehub/server/metrics"
	"github.com/cablehub/cablehub/server/node"
	"github.com/cablehub/cablehub/server/streams"
)

// A retried Publish with the same key answers OK, and history holds the
// publication once.
func TestPublishIdempotencyKey(t *testing.T) {
	ctx := context.Background()
	b := broker.NewMemory(broker.MemoryOptions{})
	n := node.New(hub.New(1), b, streams.NewController(streams.Config{}), metrics.New(),
		slog.New(slog.NewTextHandler(io.Discard, nil)), node.Options{IdempotencyWindow: time.Minute})
	svc := NewService(n)
	req := &cablehubv1.PublishRequest{Publications: []*cablehubv1.Publication{{Stream: "chat", Data: "1", IdempotencyKey: "order-42"}}}
	for i := range 3 {
		resp, err := svc.Publish(ctx, req)
		if err != nil || resp == nil {
			t.Fatalf("call %d: %v, %v", i, resp, err)
		}
	}
	if _, err := svc.Publish(ctx, &cablehubv1.PublishRequest{Publications: []*cablehubv1.Publication{{Stream: "chat", Data: "2"}}}); err != nil {
		t.Fatal(err)
	}
	hist, _ := b.HistorySince(ctx, "chat", 0)
	if len(hist) != 2 || hist[0].Data != "1" || hist[1].Data != "2" {
		t.Errorf("history %+v", hist)
	}
}

// A key over 128 bytes is INVALID_ARGUMENT naming the field, and in a batch
// its index; nothing of the batch is published.
func TestPublishIdempotencyKeyTooLong(t *testing.T) {
	ctx := context.Background()
	b := broker.NewMemory(broker.MemoryOptions{})
	svc := newService(b)
	long := strings.Repeat("k", 129)
	cases := []struct {
		pubs []*cablehubv1.Publication
		want string
	}{
		{[]*cablehubv1.Publication{{Stream: "a", Data: "1", IdempotencyKey: long}}, "idempotency_key is longer than 128 bytes"},
		{[]*cablehubv1.Publication{{Stream: "a", Data: "1"}, {Stream: "a", Data: "2", IdempotencyKey: long}}, "publications[1].idempotency_key is longer than 128 bytes"},
	}
	for _, c := range cases {
		_, err := svc.Publish(ctx, &cablehubv1.PublishRequest{Publications: c.pubs})
		if st := status.Convert(err); st.Code() != codes.InvalidArgument || st.Message() != c.want {
			t.Errorf("got %v, want INVALID_ARGUMENT %q", err, c.want)
		}
	}
	if hist, _ := b.HistorySince(ctx, "a", 0); len(hist) != 0 {
		t.Errorf("published %+v", hist)
	}
	if _, err := svc.Publish(ctx, &cablehubv1.PublishRequest{Publications: []*cablehubv1.Publication{{Stream: "a", Data: "1", IdempotencyKey: long[:128]}}}); err != nil {
		t.Errorf("128 bytes: %v", err)
	}
}
