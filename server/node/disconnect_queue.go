package node

import (
	"context"
	"log/slog"
	"sync"
	"time"

	anycablepb "github.com/cablehub/cablehub/gen/anycable"
)

// disconnectQueue makes the App's Disconnect calls at a bounded rate
// (--disconnect_rate), so that many clients leaving at once (a network
// blip, a deploy of the load balancer) do not hit the back end all
// together. At most backlog calls wait; when it is full, the ending
// session makes its call itself, bounded by the App's concurrency: no
// call is dropped and nothing waits unbounded (AnyCable blocks the closing
// goroutine until a place frees). Once the node shuts down, waiting calls
// are made at once, as AnyCable does, so the process can end.
type disconnectQueue struct {
	app      App
	log      *slog.Logger
	interval time.Duration
	calls    chan disconnectCall
	size     func(n int) // reports the number waiting (a metric)

	mu       sync.Mutex
	draining bool
	inflight sync.WaitGroup
}

type disconnectCall struct {
	sid string
	req *anycablepb.DisconnectRequest
}

func newDisconnectQueue(app App, o AppOptions, log *slog.Logger, size func(int)) *disconnectQueue {
	rate, backlog := o.DisconnectRate, o.DisconnectBacklog
	if rate <= 0 {
		rate = DefaultDisconnectRate
	}
	if backlog <= 0 {
		backlog = DefaultDisconnectBacklog
	}
	return &disconnectQueue{
		app:      app,
		log:      log,
		interval: time.Second / time.Duration(rate),
		calls:    make(chan disconnectCall, backlog),
		size:     size,
	}
}

// enqueue schedules a call; it does not block unless the backlog is full,
// and then only for the call itself.
func (q *disconnectQueue) enqueue(sid string, req *anycablepb.DisconnectRequest) {
	c := disconnectCall{sid: sid, req: req}
	q.mu.Lock()
	draining := q.draining
	if !draining {
		q.inflight.Add(1)
	}
	q.mu.Unlock()
	if draining {
		q.call(c)
		return
	}
	select {
	case q.calls <- c:
		q.size(len(q.calls))
	default:
		q.inflight.Done()
		q.call(c)
	}
}

// run makes the waiting calls, one per interval, each on a goroutine of
// its own (a slow back end must not slow the rate down), until ctx ends.
func (q *disconnectQueue) run(ctx context.Context) {
	tick := time.NewTicker(q.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-q.calls:
			q.size(len(q.calls))
			go func() {
				defer q.inflight.Done()
				q.call(c)
			}()
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
		}
	}
}

// drain makes every waiting call at once and waits for the calls in
// flight, or until ctx ends; later calls are made by their callers.
func (q *disconnectQueue) drain(ctx context.Context) {
	q.mu.Lock()
	q.draining = true
	q.mu.Unlock()
	done := make(chan struct{})
	go func() {
		q.inflight.Wait()
		close(done)
	}()
	for {
		select {
		case c := <-q.calls:
			q.size(len(q.calls))
			go func() {
				defer q.inflight.Done()
				q.call(c)
			}()
		case <-done:
			return
		case <-ctx.Done():
			q.log.Warn("RPC disconnect calls still in flight at shutdown")
			return
		}
	}
}

// call makes one Disconnect call; its answer matters only for the log.
func (q *disconnectQueue) call(c disconnectCall) {
	resp, err := q.app.Disconnect(context.Background(), c.sid, c.req)
	switch {
	case err != nil:
		q.log.Debug("RPC disconnect failed", "sid", c.sid, "error", err)
	case resp.GetStatus() != anycablepb.Status_SUCCESS:
		q.log.Warn("controller disconnect failed", "sid", c.sid, "error_msg", resp.GetErrorMsg())
	}
}
