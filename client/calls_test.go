package client

import (
	"context"
	"errors"
	"reflect"
	"regexp"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var randomKeyRe = regexp.MustCompile(`^[0-9a-f]{32}$`)

// With Retries, a publish failing with UNAVAILABLE is sent again with the
// same idempotency keys: the caller's where given, else random ones the
// client picked before the first attempt, one per publication.
func TestRetriedPublishKeepsItsKeys(t *testing.T) {
	f := startFake(t, &fakeServer{publish: func(_ context.Context, n int) error {
		if n < 2 {
			return status.Error(codes.Unavailable, "broker did not confirm")
		}
		return nil
	}})
	c := f.newClient(t, Options{Retries: 2})
	pubs := []Publication{{Stream: "a", Data: "1"}, {Stream: "a", Data: "2", PublishOptions: PublishOptions{IdempotencyKey: "mine"}}, {Stream: "b", Data: "3"}}
	if err := c.PublishBatch(context.Background(), pubs); err != nil {
		t.Fatalf("publish with 2 retries after 2 failures: %v", err)
	}
	_, publishes, _ := f.received()
	if len(publishes) != 3 {
		t.Fatalf("%d attempts, want 3", len(publishes))
	}
	var keys []string
	for _, p := range publishes[0].Publications {
		keys = append(keys, p.IdempotencyKey)
	}
	if !randomKeyRe.MatchString(keys[0]) || keys[1] != "mine" || !randomKeyRe.MatchString(keys[2]) || keys[0] == keys[2] {
		t.Fatalf("keys %q: want a random key, the caller's, another random key", keys)
	}
	for i, req := range publishes[1:] {
		for j, p := range req.Publications {
			if p.IdempotencyKey != keys[j] {
				t.Fatalf("attempt %d publication %d: key %q, want %q as in the first", i+2, j, p.IdempotencyKey, keys[j])
			}
		}
	}
	if pubs[0].IdempotencyKey != "" {
		t.Fatal("the caller's publications were modified")
	}
}

func TestRetriesStopAtTheLimitAndOnlyForUnavailable(t *testing.T) {
	code := codes.Unavailable
	f := startFake(t, &fakeServer{publish: func(context.Context, int) error { return status.Error(code, "no") }})
	ctx := context.Background()

	err := f.newClient(t, Options{Retries: 2}).Publish(ctx, "a", "1", PublishOptions{})
	if !errors.Is(err, ErrUnavailable) || f.count("Publish") != 3 {
		t.Fatalf("Retries 2: %v after %d attempts, want ErrUnavailable after 3", err, f.count("Publish"))
	}

	err = f.newClient(t, Options{}).Publish(ctx, "a", "1", PublishOptions{})
	if !errors.Is(err, ErrUnavailable) || f.count("Publish") != 4 {
		t.Fatalf("no retries: %v after %d more attempts, want ErrUnavailable after 1", err, f.count("Publish")-3)
	}
	if _, publishes, _ := f.received(); publishes[3].Publications[0].IdempotencyKey != "" {
		t.Fatal("without retries the client gave a key")
	}

	code = codes.InvalidArgument
	err = f.newClient(t, Options{Retries: 5}).Publish(ctx, "a", "1", PublishOptions{})
	if !errors.Is(err, ErrInvalidArgument) || f.count("Publish") != 5 {
		t.Fatalf("InvalidArgument: %v after %d more attempts, want 1", err, f.count("Publish")-4)
	}
}

func TestRetryBackoffEndsWithTheContext(t *testing.T) {
	f := startFake(t, &fakeServer{publish: func(context.Context, int) error { return status.Error(codes.Unavailable, "no") }})
	ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := f.newClient(t, Options{Retries: 100}).Publish(ctx, "a", "1", PublishOptions{})
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("returned after %v", d)
	}
}

func TestTokenAndTimeoutOnEveryCall(t *testing.T) {
	f := startFake(t, &fakeServer{publish: func(ctx context.Context, _ int) error {
		<-ctx.Done()
		return status.FromContextError(ctx.Err()).Err()
	}})
	ctx := context.Background()
	if _, err := f.newClient(t, Options{Secret: "s3cr3t"}).Info(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.newClient(t, Options{APISecret: "token"}).Info(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.newClient(t, Options{}).Info(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"Bearer " + Token(Options{Secret: "s3cr3t"}), "Bearer token", ""}
	if auth, _, _ := f.received(); !reflect.DeepEqual(auth, want) {
		t.Fatalf("authorization %q, want %q", auth, want)
	}

	start := time.Now()
	err := f.newClient(t, Options{Timeout: 100 * time.Millisecond}).Publish(ctx, "a", "1", PublishOptions{})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("publish that never answers: %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Timeout 100ms returned after %v", d)
	}
}

func TestInfoAnswer(t *testing.T) {
	f := startFake(t, &fakeServer{})
	info, err := f.newClient(t, Options{}).Info(context.Background())
	want := &Info{Nodes: []NodeInfo{{ID: "n1", Version: "v1", Uptime: 61 * time.Second, Connections: 3, Subscriptions: 4, Streams: 2,
		Published: 5_000_000_000, Deliveries: 1 << 40, RPCCalls: 7}}}
	if err != nil || !reflect.DeepEqual(info, want) {
		t.Fatalf("Info = %+v, %v; want %+v", info, err, want)
	}
}

func TestBadLimitsFailWithoutACall(t *testing.T) {
	f := startFake(t, &fakeServer{})
	c := f.newClient(t, Options{})
	ctx := context.Background()
	if _, err := c.History(ctx, "a", HistoryOptions{Limit: -1}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("History limit -1: %v", err)
	}
	if _, err := c.ListStreams(ctx, ListStreamsOptions{Limit: -1}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("ListStreams limit -1: %v", err)
	}
	if auth, _, _ := f.received(); len(auth) != 0 {
		t.Fatalf("%d calls made", len(auth))
	}
}

// After Close every call fails with ErrClosed at once, without a call.
func TestCallsAfterClose(t *testing.T) {
	f := startFake(t, &fakeServer{})
	c := f.newClient(t, Options{Retries: 3})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx := context.Background()
	calls := map[string]func() error{
		"Publish":      func() error { return c.Publish(ctx, "a", "1", PublishOptions{}) },
		"PublishBatch": func() error { return c.PublishBatch(ctx, []Publication{{Stream: "a", Data: "1"}}) },
		"Presence":     func() error { _, err := c.Presence(ctx, "a"); return err },
		"PresenceStats": func() error {
			_, err := c.PresenceStats(ctx, "a")
			return err
		},
		"History":     func() error { _, err := c.History(ctx, "a", HistoryOptions{}); return err },
		"ListStreams": func() error { _, err := c.ListStreams(ctx, ListStreamsOptions{}); return err },
		"Info":        func() error { _, err := c.Info(ctx); return err },
		"Disconnect":  func() error { return c.Disconnect(ctx, "x", false) },
		"Watch": func() error {
			for _, err := range c.Watch(ctx, "a", WatchOptions{}) {
				return err
			}
			return nil
		},
	}
	for name, call := range calls {
		err := call()
		var e *Error
		if !errors.Is(err, ErrClosed) || errors.Is(err, ErrUnavailable) || !errors.As(err, &e) || e.Message != "client is closed" {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	if auth, _, _ := f.received(); len(auth) != 0 {
		t.Fatalf("%d calls reached the server", len(auth))
	}
}
