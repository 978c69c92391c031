package client

import (
	"context"
	"errors"
	"io"
	"iter"
	"slices"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
)

// StreamPublication is one publication of a watched stream.
type StreamPublication struct {
	Stream string
	// Epoch is the epoch Offset counts in; "" for a transient publication.
	Epoch string
	// Offset is the publication's offset; 0 for a transient publication.
	Offset uint64
	// Data is the data as it was published.
	Data string
}

// WatchOptions configures Watch.
type WatchOptions struct {
	// Since, when set, replays the publications after this position from
	// history before the live ones. A position the history cannot serve
	// ends the watch with ErrPosition.
	Since *Position
	// NoResume ends the watch with the error of a broken connection
	// instead of re-opening it.
	NoResume bool
	// OnLive, when set, is called each time the watch (re-)opens and the
	// server listens to the stream: a publication made after the call is
	// delivered. It runs on the iterating goroutine, before the next
	// publication is yielded.
	OnLive func()
}

// Watch returns an iterator over the publications of stream as they
// happen, in offset order and each once, like a subscribed client gets
// them; with opts.Since it first replays from history. The call is made
// when the iteration starts and ends when the loop breaks (the gRPC stream
// is cancelled before the loop statement completes), when ctx ends, or on
// an error; Watch has no timeout.
//
// When the connection breaks (ErrUnavailable: the server restarted, the
// network failed) or the server ends the call without an error, Watch
// re-opens it, after 100 ms doubling up to 5 s while that fails, from the
// position of the last publication it yielded (transient publications have
// none), or from opts.Since when it yielded none; without either it
// re-opens live. opts.NoResume turns that off: the iteration then ends
// with ErrUnavailable, or without an error when the server ended the call.
//
// Any other error is yielded once, with a zero StreamPublication, and ends
// the iteration: ErrPosition (the epoch changed or history lost
// publications the watcher missed; the *Error's Position is the stream's
// current one), ErrAuth, codes.ResourceExhausted (the watcher did not keep
// up), ErrClosed (the client was closed), or ctx's error when it ends.
func (c *Client) Watch(ctx context.Context, stream string, opts WatchOptions) iter.Seq2[StreamPublication, error] {
	return func(yield func(StreamPublication, error) bool) {
		w := &watcher{c: c, stream: stream, opts: opts}
		if opts.Since != nil {
			since := *opts.Since
			w.pos = &since
		}
		w.run(ctx, yield)
	}
}

// watcher is one iteration of a Watch: the position to resume from.
type watcher struct {
	c      *Client
	stream string
	opts   WatchOptions
	pos    *Position
}

// run opens the watch, and re-opens it while it breaks with
// codes.Unavailable, until yield asks to stop or an error ends it.
func (w *watcher) run(ctx context.Context, yield func(StreamPublication, error) bool) {
	if w.c.closed.Load() {
		yield(StreamPublication{}, closedError())
		return
	}
	delay := firstDelay
	for {
		live, stopped, err := w.once(ctx, yield)
		if stopped {
			return
		}
		if live {
			delay = firstDelay
		}
		switch {
		case w.c.closed.Load():
			err = closedError()
		case ctx.Err() != nil:
			err = wrap(ctx.Err())
		case errors.Is(err, io.EOF):
			err = nil
		default:
			err = wrap(err)
		}
		switch {
		case err == nil && w.opts.NoResume:
			return
		case err != nil && (w.opts.NoResume || !errors.Is(err, ErrUnavailable)):
			yield(StreamPublication{}, err)
			return
		}
		if err := w.c.sleep(ctx, delay); err != nil {
			yield(StreamPublication{}, err)
			return
		}
		delay = min(2*delay, maxDelay)
	}
}

// once makes one Watch call from w.pos and yields its publications. live
// says the call got as far as the server listening; stopped that yield
// asked to stop; err is why the call ended otherwise (io.EOF when the
// server ended it without an error).
func (w *watcher) once(ctx context.Context, yield func(StreamPublication, error) bool) (live, stopped bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req := &cablehubv1.WatchRequest{Stream: w.stream}
	if w.pos != nil {
		since := w.pos.Offset
		req.Epoch, req.Since = w.pos.Epoch, &since
	}
	st, err := w.c.stub.Watch(w.c.authorize(ctx), req)
	if err != nil {
		return false, false, err
	}
	// Header returns no error: a failed call's comes from Recv.
	if md, _ := st.Header(); slices.Contains(md.Get("cablehub-watch"), "live") {
		live = true
		if w.opts.OnLive != nil {
			w.opts.OnLive()
		}
	}
	for {
		p, err := st.Recv()
		if err != nil {
			return live, false, err
		}
		live = true
		pub := StreamPublication{Stream: p.GetStream(), Epoch: p.GetEpoch(), Offset: p.GetOffset(), Data: p.GetData()}
		if pub.Offset > 0 {
			w.pos = &Position{Epoch: pub.Epoch, Offset: pub.Offset}
		}
		if !yield(pub, nil) {
			return live, true, nil
		}
	}
}
