package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cablehub/cablehub/server/protocol"
)

// recorder is a Publisher that records what it is handed, in order, and
// refuses publications whose data is fail.
type recorder struct {
	mu   sync.Mutex
	got  []protocol.Publication
	fail string
}

func (r *recorder) Publish(_ context.Context, pubs []protocol.Publication) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range pubs {
		if p.Data == r.fail {
			return errors.New("pub/sub down")
		}
		r.got = append(r.got, p)
	}
	return nil
}

// skipOneStep skips the JetStream broker, which publishes non-transient
// publications itself (TestNATSDeliversInSequenceAcrossNodes).
func skipOneStep(t *testing.T, b testedBroker) {
	if _, ok := b.(*NATS); ok {
		t.Skip("JetStream stamps by publishing: one step")
	}
}

// Of concurrent publications of one stream, the lower offset reaches the
// pub/sub first; transient publications pass unstamped and unkept.
func TestStampAndPublishKeepsStreamOrder(t *testing.T) {
	eachBroker(t, MemoryOptions{HistoryLimit: 1000, HistoryTTL: time.Minute}, func(t *testing.T, c suiteCase) {
		skipOneStep(t, c.b)
		ctx := context.Background()
		var rec recorder
		const workers, each = 8, 25
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range each {
					pubs := []protocol.Publication{{Stream: "s", Data: fmt.Sprint(w, "-", i)}, {Stream: "s", Data: "t", Transient: true}}
					if taken, err := c.b.StampAndPublish(ctx, pubs, &rec); err != nil || taken != 2 {
						t.Errorf("taken %d, %v", taken, err)
						return
					}
					if pubs[0].Offset == 0 || pubs[1].Offset != 0 {
						t.Errorf("stamped in place: %+v", pubs)
					}
				}
			})
		}
		wg.Wait()
		epoch := ""
		next := uint64(1)
		for _, p := range rec.got {
			if p.Transient {
				continue
			}
			if epoch == "" {
				epoch = p.Epoch
			}
			if p.Offset != next || p.Epoch != epoch || epoch == "" {
				t.Fatalf("published offset %d (epoch %s), want %d (%s)", p.Offset, p.Epoch, next, epoch)
			}
			next++
		}
		if next != workers*each+1 || len(rec.got) != 2*workers*each {
			t.Errorf("published %d, %d of them stamped", len(rec.got), next-1)
		}
		if h, _ := c.b.HistorySince(ctx, "s", 0); len(h) != workers*each {
			t.Errorf("history holds %d publications", len(h))
		}
	})
}

// A publication stamped but not published is voided: the error answer
// means it is kept nowhere; its offset stays used. taken counts those
// published before it.
func TestStampAndPublishVoidsUnpublished(t *testing.T) {
	eachBroker(t, MemoryOptions{HistoryTTL: time.Minute}, func(t *testing.T, c suiteCase) {
		skipOneStep(t, c.b)
		ctx := context.Background()
		rec := recorder{fail: "2"}
		pubs := []protocol.Publication{{Stream: "v", Data: "1"}, {Stream: "v", Data: "2"}, {Stream: "v", Data: "3"}}
		if taken, err := c.b.StampAndPublish(ctx, pubs, &rec); err == nil || taken != 1 {
			t.Fatalf("taken %d, %v", taken, err)
		}
		rec.fail = ""
		last := []protocol.Publication{{Stream: "v", Data: "4"}}
		if _, err := c.b.StampAndPublish(ctx, last, &rec); err != nil || last[0].Offset != 3 {
			t.Fatalf("next publication: %+v %v", last[0], err)
		}
		got, err := c.b.HistoryFrom(ctx, "v", pubs[0].Epoch, 1)
		if err != nil || len(got) != 1 || got[0].Data != "4" {
			t.Errorf("history after the voided offset 2: %+v %v", got, err)
		}
		canceled, cancel := context.WithCancel(ctx)
		cancel()
		if taken, err := c.b.StampAndPublish(canceled, []protocol.Publication{{Stream: "v", Data: "5"}}, &rec); !errors.Is(err, context.Canceled) || taken != 0 {
			t.Errorf("cancelled: taken %d, %v", taken, err)
		}
		if h, _ := c.b.HistorySince(ctx, "v", 0); len(h) != 2 {
			t.Errorf("history holds %+v", h)
		}
	})
}

// None publishes everything unstamped; taken is exact.
func TestNoneStampAndPublish(t *testing.T) {
	rec := recorder{fail: "2"}
	pubs := []protocol.Publication{{Stream: "s", Data: "1"}, {Stream: "s", Data: "2"}, {Stream: "s", Data: "3"}}
	if taken, err := (None{}).StampAndPublish(context.Background(), pubs, &rec); err == nil || taken != 1 {
		t.Fatalf("taken %d, %v", taken, err)
	}
	if len(rec.got) != 1 || rec.got[0].Offset != 0 || rec.got[0].Epoch != "" {
		t.Errorf("published %+v", rec.got)
	}
}

// blockingVoid is a two-step broker whose voids wait until released.
type blockingVoid struct {
	offset  uint64
	voiding chan struct{}
	release chan struct{}
}

func (b *blockingVoid) Stamp(_ context.Context, p *protocol.Publication) error {
	b.offset++
	p.Epoch, p.Offset = "e", b.offset
	return nil
}

func (b *blockingVoid) Void(ctx context.Context, _ *protocol.Publication) error {
	close(b.voiding)
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// A void that waits on the network holds up its own stream only: another
// stream's publication goes through meanwhile ("b72" shared a lock with
// "a" when streams hashed to 64 locks).
func TestSlowVoidHoldsItsStreamOnly(t *testing.T) {
	var seq sequencer
	b := &blockingVoid{voiding: make(chan struct{}), release: make(chan struct{})}
	rec := &recorder{fail: "fails"}
	done := make(chan error, 1)
	go func() {
		_, err := seq.stampAndPublish(context.Background(), b, []protocol.Publication{{Stream: "a", Data: "fails"}}, rec)
		done <- err
	}()
	<-b.voiding
	other := make(chan error, 1)
	go func() {
		_, err := seq.stampAndPublish(context.Background(), stampOnly{}, []protocol.Publication{{Stream: "b72", Data: "ok"}}, rec)
		other <- err
	}()
	select {
	case err := <-other:
		if err != nil {
			t.Errorf("other stream: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a publication of another stream waited for the void")
	}
	close(b.release)
	if err := <-done; err == nil {
		t.Error("the failed publication was answered without an error")
	}
}

// stampOnly stamps everything at offset 1.
type stampOnly struct{}

func (stampOnly) Stamp(_ context.Context, p *protocol.Publication) error {
	p.Epoch, p.Offset = "e", 1
	return nil
}
func (stampOnly) Void(context.Context, *protocol.Publication) error { return nil }
