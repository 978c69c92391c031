package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/cablehub/cablehub/client"
)

// The Go SDK's v2 calls (issue 26) against the binary: what its callers see.

// goWatch is a Watch iterated on its own goroutine: what it yields, each
// time it goes live, and the error that ended it.
type goWatch struct {
	pubs chan client.StreamPublication
	live chan struct{}
	done chan struct{}
	err  error // read after done
}

// startGoWatch iterates c.Watch(stream) until it ends or the test does.
func startGoWatch(t *testing.T, c *client.Client, stream string, opts client.WatchOptions) *goWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &goWatch{pubs: make(chan client.StreamPublication, 1000), live: make(chan struct{}, 100), done: make(chan struct{})}
	opts.OnLive = func() { w.live <- struct{}{} }
	go func() {
		defer close(w.done)
		for p, err := range c.Watch(ctx, stream, opts) {
			if err != nil {
				w.err = err
				return
			}
			w.pubs <- p
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-w.done
	})
	return w
}

// waitLive waits until the watch (re-)opened and the server listens.
func (w *goWatch) waitLive(t *testing.T) {
	t.Helper()
	select {
	case <-w.live:
	case <-w.done:
		t.Fatalf("watch ended before it was live: %v", w.err)
	case <-time.After(20 * time.Second):
		t.Fatal("watch not live within 20s")
	}
}

// expect checks the watch's next publications, in order.
func (w *goWatch) expect(t *testing.T, want ...client.StreamPublication) {
	t.Helper()
	for i, pw := range want {
		select {
		case p := <-w.pubs:
			if p != pw {
				t.Fatalf("publication %d: %+v, want %+v", i, p, pw)
			}
		case <-w.done:
			t.Fatalf("watch ended before publication %d (%+v): %v", i, pw, w.err)
		case <-time.After(20 * time.Second):
			t.Fatalf("publication %d (%+v) not within 20s", i, pw)
		}
	}
}

// ended waits for the watch to end and returns its error.
func (w *goWatch) ended(t *testing.T) error {
	t.Helper()
	select {
	case p := <-w.pubs:
		t.Fatalf("publication %+v, want the watch to end", p)
	case <-w.done:
	case <-time.After(20 * time.Second):
		t.Fatal("watch did not end within 20s")
	}
	return w.err
}

// watchError is the error a watch that must fail at once ends with.
func watchError(t *testing.T, c *client.Client, stream string, opts client.WatchOptions) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for p, err := range c.Watch(ctx, stream, opts) {
		if err == nil {
			t.Fatalf("watch of %q yielded %+v, want an error", stream, p)
		}
		return err
	}
	t.Fatalf("watch of %q ended without an error", stream)
	return nil
}

func publishAll(t *testing.T, c *client.Client, stream string, data ...string) {
	t.Helper()
	for _, d := range data {
		if err := c.Publish(context.Background(), stream, d, client.PublishOptions{}); err != nil {
			t.Fatalf("publish %s: %v", d, err)
		}
	}
}

func wantSDKError(t *testing.T, what string, err, sentinel error) *client.Error {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) || !errors.Is(err, sentinel) {
		t.Fatalf("%s: error %v, want a *client.Error matching %v", what, err, sentinel)
	}
	return e
}

// waitSubscribed polls ListStreams until stream has n subscribers (a
// watch counts as one).
func waitSubscribed(t *testing.T, c *client.Client, stream string, n int) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%s to have %d subscribers", stream, n), func() bool {
		st, err := c.ListStreams(context.Background(), client.ListStreamsOptions{Prefix: stream})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range st.Streams {
			if s.Name == stream {
				return s.Subscribers == n
			}
		}
		return n == 0
	})
}

// Presence stats, history, streams and info on one node.
func TestGoClientV2Reads(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--secret", "s3cr3t", "--public")
	c := newGoClient(t, s.GRPC, client.Options{Secret: "s3cr3t"})
	ctx := context.Background()

	for i, stream := range []string{"rooms/a", "rooms/a", "rooms/b", "other"} {
		ws := dialWS(t, s, dialOpts{})
		ws.welcome()
		id := ws.subscribe(stream)
		if i < 2 {
			ws.send(joinCmd(id, `{"id":"u1","info":{"n":`+fmt.Sprint(i)+`}}`))
			if i == 0 {
				ws.next(5 * time.Second) // the join's event; a second session of u1 gets none
			}
			ws.barrier()
		}
	}

	stats, err := c.PresenceStats(ctx, "rooms/a")
	if err != nil || *stats != (client.PresenceStats{Users: 1, Sessions: 2}) {
		t.Fatalf("PresenceStats = %+v, %v; want 1 user in 2 sessions", stats, err)
	}
	if stats, err := c.PresenceStats(ctx, "nobody"); err != nil || *stats != (client.PresenceStats{}) {
		t.Fatalf("PresenceStats of an empty stream = %+v, %v", stats, err)
	}

	publishAll(t, c, "rooms/a", "1", "2", `{"n":3}`)
	h, err := c.History(ctx, "rooms/a", client.HistoryOptions{Limit: 2})
	want := &client.History{Epoch: s.Epoch, Offset: 3, Publications: []client.HistoryPublication{{Offset: 2, Data: "2"}, {Offset: 3, Data: `{"n":3}`}}}
	if err != nil || !reflect.DeepEqual(h, want) {
		t.Fatalf("History limit 2 = %+v, %v; want %+v", h, err, want)
	}
	h, err = c.History(ctx, "rooms/a", client.HistoryOptions{Since: &client.Position{Epoch: s.Epoch, Offset: 1}, Limit: 1})
	want.Publications = want.Publications[:1]
	if err != nil || !reflect.DeepEqual(h, want) {
		t.Fatalf("History since 1 limit 1 = %+v, %v; want %+v", h, err, want)
	}
	h, err = c.History(ctx, "rooms/a", client.HistoryOptions{})
	if err != nil || len(h.Publications) != 3 || h.Publications[0] != (client.HistoryPublication{Offset: 1, Data: "1"}) {
		t.Fatalf("History = %+v, %v; want all 3", h, err)
	}
	if h, err := c.History(ctx, "never", client.HistoryOptions{}); err != nil || h.Offset != 0 || len(h.Publications) != 0 {
		t.Fatalf("History of a stream never published to = %+v, %v", h, err)
	}

	st, err := c.ListStreams(ctx, client.ListStreamsOptions{Prefix: "rooms/"})
	wantStreams := &client.Streams{Streams: []client.StreamInfo{{Name: "rooms/a", Subscribers: 2}, {Name: "rooms/b", Subscribers: 1}}}
	if err != nil || !reflect.DeepEqual(st, wantStreams) {
		t.Fatalf("ListStreams rooms/ = %+v, %v; want %+v", st, err, wantStreams)
	}
	st, err = c.ListStreams(ctx, client.ListStreamsOptions{Limit: 2})
	wantStreams = &client.Streams{Streams: []client.StreamInfo{{Name: "other", Subscribers: 1}, {Name: "rooms/a", Subscribers: 2}}, Truncated: true}
	if err != nil || !reflect.DeepEqual(st, wantStreams) {
		t.Fatalf("ListStreams limit 2 = %+v, %v; want %+v", st, err, wantStreams)
	}

	info, err := c.Info(ctx)
	if err != nil || len(info.Nodes) != 1 || len(info.UnavailableNodes) != 0 {
		t.Fatalf("Info = %+v, %v; want one node", info, err)
	}
	n := info.Nodes[0]
	if n.ID == "" || n.Version == "" || n.Connections != 4 || n.Subscriptions != 4 || n.Streams != 3 || n.Uptime < 0 || n.Uptime > time.Hour {
		t.Fatalf("node %+v: want an id, a version, 4 connections, 4 subscriptions, 3 streams", n)
	}
}

// Watch delivers live publications (transient ones without a position),
// ends when the loop breaks, and replays from Since before going live.
func TestGoClientWatch(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--secret", "s3cr3t", "--public")
	c := newGoClient(t, s.GRPC, client.Options{Secret: "s3cr3t"})
	ctx := context.Background()
	publishAll(t, c, "feed", "1")

	w := startGoWatch(t, c, "feed", client.WatchOptions{})
	w.waitLive(t)
	publishAll(t, c, "feed", "2", `{"n":3}`)
	if err := c.Publish(ctx, "feed", "t", client.PublishOptions{Transient: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, "elsewhere", "x", client.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	publishAll(t, c, "feed", "4")
	w.expect(t, client.StreamPublication{Stream: "feed", Epoch: s.Epoch, Offset: 2, Data: "2"},
		client.StreamPublication{Stream: "feed", Epoch: s.Epoch, Offset: 3, Data: `{"n":3}`},
		client.StreamPublication{Stream: "feed", Data: "t"},
		client.StreamPublication{Stream: "feed", Epoch: s.Epoch, Offset: 4, Data: "4"})

	// Replay from offset 2, then live; the loop breaks after the first
	// live publication and the iteration ends at once, without an error,
	// its call cancelled: the server drops the watcher.
	waitSubscribed(t, c, "feed", 1)
	loopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	live := make(chan struct{}, 1)
	go func() {
		select {
		case <-live:
			if err := c.Publish(ctx, "feed", "5", client.PublishOptions{}); err != nil {
				t.Errorf("publish 5: %v", err)
				cancel()
			}
		case <-loopCtx.Done():
		}
	}()
	var got []client.StreamPublication
	for p, err := range c.Watch(loopCtx, "feed", client.WatchOptions{Since: &client.Position{Epoch: s.Epoch, Offset: 2}, OnLive: func() { live <- struct{}{} }}) {
		if err != nil {
			t.Fatalf("watch since 2 after %v: %v", got, err)
		}
		got = append(got, p)
		if len(got) == 1 {
			waitSubscribed(t, c, "feed", 2)
		}
		if p.Data == "5" {
			break
		}
	}
	wantGot := []client.StreamPublication{{Stream: "feed", Epoch: s.Epoch, Offset: 3, Data: `{"n":3}`},
		{Stream: "feed", Epoch: s.Epoch, Offset: 4, Data: "4"}, {Stream: "feed", Epoch: s.Epoch, Offset: 5, Data: "5"}}
	if !reflect.DeepEqual(got, wantGot) {
		t.Fatalf("watch since 2: %+v, want %+v", got, wantGot)
	}
	waitSubscribed(t, c, "feed", 1)
	// The first watch still gets what follows: the broken loop took nothing
	// from it.
	w.expect(t, client.StreamPublication{Stream: "feed", Epoch: s.Epoch, Offset: 5, Data: "5"})
}

// A watch resumes after its server restarts: with the Redis broker the
// stream keeps its epoch and history, and what was published meanwhile (on
// another node) is replayed from the last offset the watch got, then the
// live ones follow, each once.
func TestGoClientWatchResumesAfterRestart(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	args := []string{"--public", "--broker", "redis", "--pubsub", "redis", "--redis_url", redisURL(t, 12)}
	a := startServer(t, nil, append(args, "--port", fmt.Sprint(port))...)
	b := startServer(t, nil, args...)
	stream := uniqueStream(t, "watch")
	ca := newGoClient(t, a.GRPC, client.Options{})
	cb := newGoClient(t, b.GRPC, client.Options{})

	w := startGoWatch(t, ca, stream, client.WatchOptions{})
	w.waitLive(t)
	publishAll(t, cb, stream, "1")
	h, err := cb.History(context.Background(), stream, client.HistoryOptions{})
	if err != nil || h.Epoch == "" {
		t.Fatalf("History = %+v, %v", h, err)
	}
	epoch := h.Epoch
	w.expect(t, client.StreamPublication{Stream: stream, Epoch: epoch, Offset: 1, Data: "1"})

	a.stop()
	publishAll(t, cb, stream, "2", "3")
	startServer(t, nil, append(args, "--port", fmt.Sprint(port))...)
	w.waitLive(t)
	publishAll(t, cb, stream, "4")
	w.expect(t, client.StreamPublication{Stream: stream, Epoch: epoch, Offset: 2, Data: "2"},
		client.StreamPublication{Stream: stream, Epoch: epoch, Offset: 3, Data: "3"},
		client.StreamPublication{Stream: stream, Epoch: epoch, Offset: 4, Data: "4"})
}

// The memory broker's history dies with its server: a watch resuming on
// the restarted one is told its position is gone, with the stream's new
// one: epoch "" for a stream the new server has not seen, from which the
// reader starts over live.
func TestGoClientWatchPositionLostOnRestart(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	args := []string{"--public", "--port", fmt.Sprint(port)}
	s := startServer(t, nil, args...)
	c := newGoClient(t, s.GRPC, client.Options{})
	w := startGoWatch(t, c, "feed", client.WatchOptions{})
	w.waitLive(t)
	publishAll(t, c, "feed", "1")
	w.expect(t, client.StreamPublication{Stream: "feed", Epoch: s.Epoch, Offset: 1, Data: "1"})

	s.stop()
	restarted := startServer(t, nil, args...)
	e := wantSDKError(t, "watch resumed on a restarted memory server", w.ended(t), client.ErrPosition)
	if e.Code != codes.FailedPrecondition || e.Position == nil || *e.Position != (client.Position{}) {
		t.Fatalf("error %#v (position %v): want FailedPrecondition with position epoch \"\" offset 0", e, e.Position)
	}
	again := startGoWatch(t, c, "feed", client.WatchOptions{})
	again.waitLive(t)
	publishAll(t, c, "feed", "2")
	again.expect(t, client.StreamPublication{Stream: "feed", Epoch: restarted.Epoch, Offset: 1, Data: "2"})
}

// Each kind of failure is its typed error.
func TestGoClientTypedErrors(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--secret", "s3cr3t", "--public", "--history_limit", "2")
	c := newGoClient(t, s.GRPC, client.Options{Secret: "s3cr3t"})
	ctx := context.Background()

	bad := newGoClient(t, s.GRPC, client.Options{Secret: "wrong"})
	_, err := bad.History(ctx, "a", client.HistoryOptions{})
	wantSDKError(t, "History with a wrong secret", err, client.ErrAuth)
	_, err = bad.Info(ctx)
	wantSDKError(t, "Info with a wrong secret", err, client.ErrAuth)
	wantSDKError(t, "Watch with a wrong secret", watchError(t, bad, "a", client.WatchOptions{}), client.ErrAuth)

	wantSDKError(t, "Publish to an empty stream", c.Publish(ctx, "", "1", client.PublishOptions{}), client.ErrInvalidArgument)
	_, err = c.History(ctx, "", client.HistoryOptions{})
	wantSDKError(t, "History of an empty stream", err, client.ErrInvalidArgument)
	_, err = c.PresenceStats(ctx, "")
	wantSDKError(t, "PresenceStats of an empty stream", err, client.ErrInvalidArgument)
	_, err = c.ListStreams(ctx, client.ListStreamsOptions{Limit: 1001})
	wantSDKError(t, "ListStreams limit 1001", err, client.ErrInvalidArgument)
	wantSDKError(t, "Watch of an empty stream", watchError(t, c, "", client.WatchOptions{}), client.ErrInvalidArgument)

	// A stale epoch, and an offset history no longer holds (limit 2 of 4).
	publishAll(t, c, "feed", "1", "2", "3", "4")
	current := client.Position{Epoch: s.Epoch, Offset: 4}
	for _, since := range []client.Position{{Epoch: "stale", Offset: 1}, {Epoch: s.Epoch, Offset: 1}} {
		_, err = c.History(ctx, "feed", client.HistoryOptions{Since: &since})
		e := wantSDKError(t, fmt.Sprintf("History since %v", since), err, client.ErrPosition)
		if e.Position == nil || *e.Position != current {
			t.Fatalf("History since %v: position %v, want %v", since, e.Position, current)
		}
		err = watchError(t, c, "feed", client.WatchOptions{Since: &since})
		e = wantSDKError(t, fmt.Sprintf("Watch since %v", since), err, client.ErrPosition)
		if e.Position == nil || *e.Position != current {
			t.Fatalf("Watch since %v: position %v, want %v", since, e.Position, current)
		}
	}

	expired, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	_, err = c.Info(expired)
	wantSDKError(t, "Info past its deadline", err, client.ErrTimeout)

	nobody := newGoClient(t, fmt.Sprintf("127.0.0.1:%d", freePort(t)), client.Options{Timeout: 10 * time.Second})
	_, err = nobody.Info(ctx)
	wantSDKError(t, "Info of a server that is not there", err, client.ErrUnavailable)
}

// After Close every call fails with ErrClosed, and a watch in progress
// ends with it; Close twice is fine.
func TestGoClientAfterClose(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public")
	c, err := client.New(s.GRPC, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := startGoWatch(t, c, "feed", client.WatchOptions{})
	w.waitLive(t)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	wantSDKError(t, "watch in progress at Close", w.ended(t), client.ErrClosed)

	ctx := context.Background()
	wantSDKError(t, "Publish", c.Publish(ctx, "a", "1", client.PublishOptions{}), client.ErrClosed)
	wantSDKError(t, "PublishBatch", c.PublishBatch(ctx, []client.Publication{{Stream: "a", Data: "1"}}), client.ErrClosed)
	wantSDKError(t, "Disconnect", c.Disconnect(ctx, "x", false), client.ErrClosed)
	_, err = c.Presence(ctx, "a")
	wantSDKError(t, "Presence", err, client.ErrClosed)
	_, err = c.PresenceStats(ctx, "a")
	wantSDKError(t, "PresenceStats", err, client.ErrClosed)
	_, err = c.History(ctx, "a", client.HistoryOptions{})
	wantSDKError(t, "History", err, client.ErrClosed)
	_, err = c.ListStreams(ctx, client.ListStreamsOptions{})
	wantSDKError(t, "ListStreams", err, client.ErrClosed)
	_, err = c.Info(ctx)
	wantSDKError(t, "Info", err, client.ErrClosed)
	wantSDKError(t, "Watch", watchError(t, c, "a", client.WatchOptions{}), client.ErrClosed)
}

// Secret and APISecret on the new calls; both is refused by New.
func TestGoClientSecrets(t *testing.T) {
	t.Parallel()
	_, err := client.New("127.0.0.1:8080", client.Options{Secret: "s3cr3t", APISecret: "explicit-token"})
	wantSDKError(t, "both secrets", err, client.ErrInvalidArgument)

	ctx := context.Background()
	derived := startServer(t, nil, "--secret", "s3cr3t")
	if _, err := newGoClient(t, derived.GRPC, client.Options{Secret: "s3cr3t"}).Info(ctx); err != nil {
		t.Fatalf("Secret: %v", err)
	}

	explicit := startServer(t, nil, "--secret", "s3cr3t", "--api_secret", "explicit-token")
	c := newGoClient(t, explicit.GRPC, client.Options{APISecret: "explicit-token"})
	if _, err := c.Info(ctx); err != nil {
		t.Fatalf("APISecret: %v", err)
	}
	w := startGoWatch(t, c, "feed", client.WatchOptions{})
	w.waitLive(t)
	if err := c.Publish(ctx, "feed", "1", client.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	w.expect(t, client.StreamPublication{Stream: "feed", Epoch: explicit.Epoch, Offset: 1, Data: "1"})
	_, err = newGoClient(t, explicit.GRPC, client.Options{Secret: "s3cr3t"}).Info(ctx)
	wantSDKError(t, "Secret where --api_secret is set", err, client.ErrAuth)
}

// http:// is plaintext; https:// is TLS, verified against the system's
// roots unless Options.TLS says otherwise.
func TestGoClientAddresses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	plain := startServer(t, nil, "--public")
	if _, err := newGoClient(t, "http://"+plain.GRPC, client.Options{}).Info(ctx); err != nil {
		t.Fatalf("http:// address: %v", err)
	}
	_, err := client.New("grpc://"+plain.GRPC, client.Options{})
	wantSDKError(t, "grpc:// address", err, client.ErrInvalidArgument)

	ca := newTestCA(t, "goclient-ca")
	secure, _, _ := startTLSServer(t, ca, "--public")
	c := newGoClient(t, "https://"+secure.GRPC, client.Options{TLS: &tls.Config{RootCAs: ca.pool}})
	w := startGoWatch(t, c, "feed", client.WatchOptions{})
	w.waitLive(t)
	if err := c.Publish(ctx, "feed", "1", client.PublishOptions{}); err != nil {
		t.Fatalf("https:// publish: %v", err)
	}
	w.expect(t, client.StreamPublication{Stream: "feed", Epoch: secure.Epoch, Offset: 1, Data: "1"})

	_, err = newGoClient(t, "https://"+secure.GRPC, client.Options{}).Info(ctx)
	wantSDKError(t, "https:// with a certificate the system does not trust", err, client.ErrUnavailable)
	_, err = newGoClient(t, "http://"+secure.GRPC, client.Options{}).Info(ctx)
	if err == nil {
		t.Fatal("http:// to a TLS server succeeded")
	}
}

// An idempotency key makes a repeated publish a no-op; with Retries the
// client's own keys change nothing for a publish that succeeds at once.
func TestGoClientIdempotencyKey(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, "--public")
	c := newGoClient(t, s.GRPC, client.Options{})
	ctx := context.Background()
	ws := dialWS(t, s, dialOpts{})
	ws.welcome()
	q := quoted(ws.subscribe("orders"))

	key := client.PublishOptions{IdempotencyKey: "order-1"}
	for range 2 {
		if err := c.Publish(ctx, "orders", `{"id":1}`, key); err != nil {
			t.Fatal(err)
		}
	}
	err := c.PublishBatch(ctx, []client.Publication{
		{Stream: "orders", Data: `{"id":1}`, PublishOptions: key},
		{Stream: "orders", Data: `{"id":2}`, PublishOptions: client.PublishOptions{IdempotencyKey: "order-2"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	retrying := newGoClient(t, s.GRPC, client.Options{Retries: 2})
	publishAll(t, retrying, "orders", `{"id":3}`, `{"id":3}`)

	ws.expect(`{"identifier":` + q + `,"message":{"id":1}` + s.stamp("orders", 1) + `}`)
	ws.expect(`{"identifier":` + q + `,"message":{"id":2}` + s.stamp("orders", 2) + `}`)
	ws.expect(`{"identifier":` + q + `,"message":{"id":3}` + s.stamp("orders", 3) + `}`)
	ws.expect(`{"identifier":` + q + `,"message":{"id":3}` + s.stamp("orders", 4) + `}`)
	ws.barrier()
	h, err := c.History(ctx, "orders", client.HistoryOptions{})
	if err != nil || h.Offset != 4 || len(h.Publications) != 4 {
		t.Fatalf("History = %+v, %v; want 4 publications", h, err)
	}
}
