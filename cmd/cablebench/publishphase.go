package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// publishPhase publishes messages carrying their index and send time,
// round-robin over streams, and collects, from every client, how long each
// took to arrive. It fills res's publish figures (also when it fails) and
// fails when a publish request fails, or when the clients stop receiving
// (nothing for 15 s, or ctx ends) before every delivery arrived.
func publishPhase(ctx context.Context, res *result, conns []*benchConn, pub publisher, streams []string, messages, batch int, rate float64, concurrency int, quiet bool, pad string) error {
	res.Messages = messages
	res.Expected = expectedDeliveries(0, len(conns), len(streams), messages)
	d := newDeliveries(len(conns), messages)
	var recvErr error
	received := make(chan struct{})
	go func() {
		defer close(received)
		recvErr = receive(ctx, conns, d.onText, func() bool { return d.delivered.Load() >= res.Expected }, 15*time.Second)
	}()

	var next atomic.Int64
	start := time.Now()
	stopProgress := func() {}
	if !quiet {
		stopProgress = showPublishProgress(&next, messages, &d.delivered, res.Expected)
	}
	pubErr := publishAll(ctx, pub, streams, messages, batch, rate, concurrency, start, &next, d.sentAt, pad)
	res.PublishSeconds = time.Since(start).Seconds()
	res.PublishesPerSec = float64(messages) / res.PublishSeconds
	<-received
	stopProgress()
	d.summarize(res, time.Since(start))
	if pubErr != nil {
		return pubErr
	}
	if recvErr != nil && res.Delivered < res.Expected {
		return recvErr
	}
	return nil
}

// expectedDeliveries is how many messages the clients should receive in
// all: client i listens to stream (offset+i)%streams and message n goes
// to stream n%streams.
func expectedDeliveries(offset, clients, streams, messages int) int64 {
	perStream := make([]int64, streams)
	for i := range clients {
		perStream[(offset+i)%streams]++
	}
	var expected int64
	for n := range messages {
		expected += perStream[n%streams]
	}
	return expected
}

// deliveries is what the clients received of the published messages.
// sentAt is written by the publishers, each message's entry before its
// publish request; onText is called by the receivers, each client's
// deliveries from one goroutine; summarize reads it all once both are done.
type deliveries struct {
	delivered atomic.Int64
	// sentAt is message n's send time, Unix ns.
	sentAt []int64
	// lastArrival is when the last client received message n, Unix ns
	// (0: none did).
	lastArrival []atomic.Int64
	// latencies is client i's publish→receive time of each delivery.
	latencies [][]time.Duration
	// payloadSent, when not nil, is message n's send time as it carries
	// it, for a process that did not send it (--expect); sentAt is then
	// unused.
	payloadSent []atomic.Int64
}

func newDeliveries(clients, messages int) *deliveries {
	return &deliveries{
		sentAt:      make([]int64, messages),
		lastArrival: make([]atomic.Int64, messages),
		latencies:   make([][]time.Duration, clients),
	}
}

// onText records client i's text frame data if it is one of the published
// messages (see parseMessage) and ignores it otherwise: pings, and
// anything else the server sends.
func (d *deliveries) onText(i int, data []byte) {
	now := time.Now().UnixNano()
	n, sent, ok := parseMessage(data)
	if !ok || n < 0 || n >= len(d.sentAt) {
		return
	}
	d.latencies[i] = append(d.latencies[i], time.Duration(now-sent))
	if d.payloadSent != nil {
		d.payloadSent[n].Store(sent)
	}
	for {
		prev := d.lastArrival[n].Load()
		if prev >= now || d.lastArrival[n].CompareAndSwap(prev, now) {
			break
		}
	}
	d.delivered.Add(1)
}

// summarize puts the deliveries in res: their count and rate over
// elapsed, the latency percentiles of all deliveries, and those of each
// delivered message's fan-out completion (publish to the last arrival).
func (d *deliveries) summarize(res *result, elapsed time.Duration) {
	res.Delivered = d.delivered.Load()
	res.DeliveriesPerS = float64(res.Delivered) / elapsed.Seconds()
	var all []time.Duration
	for _, l := range d.latencies {
		all = append(all, l...)
	}
	res.LatencyMs = percentiles(all)
	var fanout []time.Duration
	for n := range d.lastArrival {
		if last := d.lastArrival[n].Load(); last > 0 {
			fanout = append(fanout, time.Duration(last-d.sent(n)))
		}
	}
	res.FanoutMs = percentiles(fanout)
}

// sent is message n's send time, Unix ns.
func (d *deliveries) sent(n int) int64 {
	if d.payloadSent != nil {
		return d.payloadSent[n].Load()
	}
	return d.sentAt[n]
}

// publishAll publishes messages 0..messages-1 from concurrency goroutines,
// batch to a request: message n to streams[n%len(streams)], with data
// {"n":n,"t":<send time, Unix ns>} (then pad, a field, if not empty) and
// the same time in sentAt[n]. With
// rate > 0, the batch starting at message n waits until start + n/rate
// seconds. next counts the messages taken by the publishers, for
// progress. It stops at the end of ctx or the first failed request, whose
// error it returns.
func publishAll(ctx context.Context, pub publisher, streams []string, messages, batch int, rate float64, concurrency int, start time.Time, next *atomic.Int64, sentAt []int64, pad string) error {
	var pubErr error
	var errOnce sync.Once
	var pubs sync.WaitGroup
	for range concurrency {
		pubs.Go(func() {
			for {
				first := int(next.Add(int64(batch)) - int64(batch))
				if first >= messages || ctx.Err() != nil {
					return
				}
				if rate > 0 {
					due := start.Add(time.Duration(float64(first) / rate * float64(time.Second)))
					time.Sleep(time.Until(due))
				}
				items := make([]item, 0, batch)
				for n := first; n < min(first+batch, messages); n++ {
					t := time.Now().UnixNano()
					sentAt[n] = t
					items = append(items, item{stream: streams[n%len(streams)], data: fmt.Sprintf(`{"n":%d,"t":%d%s}`, n, t, pad)})
				}
				if err := pub.publish(ctx, items); err != nil {
					errOnce.Do(func() { pubErr = err })
					return
				}
			}
		})
	}
	pubs.Wait()
	return pubErr
}

// showPublishProgress prints published and delivered counts on stderr
// every second until the returned function is called, which ends the line.
func showPublishProgress(next *atomic.Int64, messages int, delivered *atomic.Int64, expected int64) (stop func()) {
	return everySecond(os.Stderr, func() string {
		return fmt.Sprintf("published %d/%d, delivered %d/%d", min(next.Load(), int64(messages)), messages, delivered.Load(), expected)
	})
}

// everySecond rewrites line() on w every second until the returned
// function is called, which ends the line.
func everySecond(w io.Writer, line func() string) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-quit:
				fmt.Fprintln(w)
				return
			case <-t.C:
				fmt.Fprint(w, "\r"+line())
			}
		}
	}()
	return func() { close(quit); <-done }
}
