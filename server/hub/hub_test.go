package hub

import (
	"fmt"
	"sync"
	"testing"

	"github.com/cablehub/cablehub/server/protocol"
)

// recorder is a subscriber that keeps what it is sent.
type recorder struct {
	sid string
	// enc is the subscriber's encoder; nil for Action Cable.
	enc    Encoder
	mu     sync.Mutex
	frames [][]byte
}

func (r *recorder) SID() string { return r.sid }
func (r *recorder) Encoder() Encoder {
	if r.enc == nil {
		return protocol.ActionCable{}
	}
	return r.enc
}
func (r *recorder) Deliver(_ string, _ *protocol.Publication, f []byte) {
	r.mu.Lock()
	r.frames = append(r.frames, f)
	r.mu.Unlock()
}
func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.frames))
	for i, f := range r.frames {
		out[i] = string(f)
	}
	return out
}

func TestBroadcastReachesSubscribersOfTheStreamOnly(t *testing.T) {
	h := New(4)
	a, b, c := &recorder{sid: "a"}, &recorder{sid: "b"}, &recorder{sid: "c"}
	h.Subscribe("chat", "id1", a)
	h.Subscribe("chat", "id2", b)
	h.Subscribe("other", "id1", c)
	h.Broadcast(&protocol.Publication{Stream: "chat", Data: "1"})
	if got := a.got(); len(got) != 1 || got[0] != `{"identifier":"id1","message":1}` {
		t.Errorf("a got %v", got)
	}
	if got := b.got(); len(got) != 1 || got[0] != `{"identifier":"id2","message":1}` {
		t.Errorf("b got %v", got)
	}
	if got := c.got(); len(got) != 0 {
		t.Errorf("c got %v", got)
	}
}

func TestBroadcastEncodesOncePerIdentifier(t *testing.T) {
	h := New(1)
	a, b := &recorder{sid: "a"}, &recorder{sid: "b"}
	h.Subscribe("chat", "id", a)
	h.Subscribe("chat", "id", b)
	h.Broadcast(&protocol.Publication{Stream: "chat", Data: "x"})
	if &a.frames[0][0] != &b.frames[0][0] {
		t.Error("subscribers under one identifier got separately encoded frames")
	}
}

func TestBroadcastSkipsExcludedSocket(t *testing.T) {
	h := New(1)
	a, b := &recorder{sid: "a"}, &recorder{sid: "b"}
	h.Subscribe("chat", "id", a)
	h.Subscribe("chat", "id", b)
	h.Broadcast(&protocol.Publication{Stream: "chat", Data: "x", ExcludeSocket: "a"})
	// The excluded subscriber is told of the publication with no frame, so
	// its position passes the offset.
	if len(a.got()) != 1 || a.frames[0] != nil || len(b.got()) != 1 || b.got()[0] == "" {
		t.Errorf("a got %q, b got %v", a.got(), b.got())
	}
}

// Delivered counts one per subscriber reached, on every shard, and not
// the excluded session nor publications with no subscriber.
func TestDeliveredCounts(t *testing.T) {
	h := New(4)
	a, b, c := &recorder{sid: "a"}, &recorder{sid: "b"}, &recorder{sid: "c"}
	h.Subscribe("chat", "id", a)
	h.Subscribe("chat", "id2", b)
	h.Subscribe("news", "id", c)
	h.Broadcast(&protocol.Publication{Stream: "chat", Data: "x"})
	h.Broadcast(&protocol.Publication{Stream: "chat", Data: "y", ExcludeSocket: "a"})
	h.Broadcast(&protocol.Publication{Stream: "news", Data: "z"})
	h.Broadcast(&protocol.Publication{Stream: "empty", Data: "z"})
	if got := h.Delivered(); got != 4 {
		t.Fatalf("Delivered = %d, want 4 (2 + 1 + 1 + 0)", got)
	}
}

// Totals agrees with Counts through subscribes, repeats and unsubscribes.
func TestTotalsAgreeWithCounts(t *testing.T) {
	h := New(4)
	a, b := &recorder{sid: "a"}, &recorder{sid: "b"}
	check := func(wantStreams, wantSubs int) {
		t.Helper()
		streams, subs := h.Totals()
		listed := 0
		for _, c := range h.Counts("", 0) {
			listed += c.Subscriptions
		}
		if streams != wantStreams || subs != wantSubs || listed != subs || len(h.Counts("", 0)) != streams {
			t.Fatalf("Totals = %d streams, %d subscriptions; Counts lists %d, %d; want %d, %d",
				streams, subs, len(h.Counts("", 0)), listed, wantStreams, wantSubs)
		}
	}
	h.Subscribe("chat", "id", a)
	h.Subscribe("chat", "id", a) // again: no new subscription
	h.Subscribe("chat", "id2", a)
	h.Subscribe("news", "id", b)
	check(2, 3)
	h.Unsubscribe("chat", "id", b) // not there
	h.Unsubscribe("chat", "id", a)
	check(2, 2)
	h.Unsubscribe("chat", "id2", a)
	h.Unsubscribe("news", "id", b)
	check(0, 0)
}

// A stream stays while it has a subscriber under any identifier; unknown
// unsubscribes change nothing.
func TestStreamsCountSubscribedStreams(t *testing.T) {
	h := New(1)
	a, b := &recorder{sid: "a"}, &recorder{sid: "b"}
	h.Subscribe("s", "id", a)
	h.Subscribe("s", "id2", b)
	h.Unsubscribe("s", "id", a)
	h.Unsubscribe("s", "id", a)
	h.Unsubscribe("s", "id2", a)
	h.Unsubscribe("other", "id", a)
	if h.Streams() != 1 {
		t.Errorf("%d streams with b subscribed, want 1", h.Streams())
	}
	h.Unsubscribe("s", "id2", b)
	if h.Streams() != 0 {
		t.Errorf("%d streams left", h.Streams())
	}
}

func TestConcurrentUse(t *testing.T) {
	h := New(4)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &recorder{sid: fmt.Sprint(i)}
			for j := range 200 {
				stream := fmt.Sprint("s", j%5)
				h.Subscribe(stream, "id", r)
				h.Broadcast(&protocol.Publication{Stream: stream, Data: "x"})
				h.Unsubscribe(stream, "id", r)
			}
		}()
	}
	wg.Wait()
	if h.Streams() != 0 {
		t.Errorf("%d streams left", h.Streams())
	}
}

type discard struct{ sid string }

func (d *discard) SID() string                                   { return d.sid }
func (d *discard) Encoder() Encoder                              { return protocol.ActionCable{} }
func (d *discard) Deliver(string, *protocol.Publication, []byte) {}

// BenchmarkFanout10k measures one publication delivered to 10,000
// subscribers of one stream under one identifier.
func BenchmarkFanout10k(b *testing.B) {
	h := New(DefaultShards)
	for i := range 10000 {
		h.Subscribe("chat", `{"channel":"$pubsub","stream_name":"chat"}`, &discard{sid: fmt.Sprint(i)})
	}
	p := &protocol.Publication{Stream: "chat", Data: `{"text":"hello"}`}
	b.ReportAllocs()
	for b.Loop() {
		h.Broadcast(p)
	}
}

// tagged is an encoder whose frames name it, counting its encodings.
type tagged struct {
	tag   string
	count *int
}

func (e tagged) AppendBroadcast(dst []byte, identifier string, p *protocol.Publication, _ []byte) []byte {
	*e.count++
	return append(dst, e.tag+":"+identifier+":"+p.Data...)
}

// Subscribers of one stream and identifier with different wire formats
// each get their own format's frame, encoded once per format.
func TestBroadcastEncodesOncePerEncoder(t *testing.T) {
	h := New(1)
	var sseCount int
	sse := tagged{"sse", &sseCount}
	a, b := &recorder{sid: "a", enc: sse}, &recorder{sid: "b", enc: sse}
	c := &recorder{sid: "c"}
	for _, r := range []*recorder{a, b, c} {
		h.Subscribe("chat", "id", r)
	}
	h.Broadcast(&protocol.Publication{Stream: "chat", Data: "x"})
	if got := a.got(); len(got) != 1 || got[0] != "sse:id:x" {
		t.Errorf("a got %v", got)
	}
	if &a.frames[0][0] != &b.frames[0][0] || sseCount != 1 {
		t.Errorf("one encoder's subscribers: encoded %d times", sseCount)
	}
	if got := c.got(); len(got) != 1 || got[0] != `{"identifier":"id","message":"x"}` {
		t.Errorf("c got %v", got)
	}
	h.Unsubscribe("chat", "id", a)
	h.Unsubscribe("chat", "id", b)
	h.Broadcast(&protocol.Publication{Stream: "chat", Data: "y"})
	if sseCount != 1 || len(c.got()) != 2 {
		t.Errorf("after the encoder's subscribers left: encoded %d times, c got %v", sseCount, c.got())
	}
}

// Counts sees only the streams with the prefix, with their numbers of
// subscriptions across identifiers, and stops at the limit.
func TestCounts(t *testing.T) {
	h := New(4)
	a, b := &discard{sid: "a"}, &discard{sid: "b"}
	h.Subscribe("presence-x", "i1", a)
	h.Subscribe("presence-x", "i2", b)
	h.Subscribe("news", "i1", a)
	got := h.Counts("presence-", 0)
	if len(got) != 1 || got[0] != (StreamCount{"presence-x", 2}) {
		t.Errorf("Counts(presence-) = %v", got)
	}
	if got := h.Counts("", 1); len(got) != 1 {
		t.Errorf("Counts with limit 1 = %v", got)
	}
	if got := h.Counts("", 0); len(got) != 2 {
		t.Errorf("Counts() = %v", got)
	}
}
