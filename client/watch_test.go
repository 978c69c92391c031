package client

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
)

type watchStream = grpc.ServerStreamingServer[cablehubv1.StreamPublication]

// goLive sends the header a Cablehub server sends once it listens.
func goLive(st watchStream) error {
	return st.SendHeader(metadata.Pairs("cablehub-watch", "live"))
}

func sendAll(st watchStream, pubs ...*cablehubv1.StreamPublication) error {
	for _, p := range pubs {
		if err := st.Send(p); err != nil {
			return err
		}
	}
	return nil
}

// collect iterates a watch until it has n publications or an error.
func collect(seq func(func(StreamPublication, error) bool), n int) ([]StreamPublication, error) {
	var got []StreamPublication
	for p, err := range seq {
		if err != nil {
			return got, err
		}
		got = append(got, p)
		if len(got) == n {
			break
		}
	}
	return got, nil
}

// A watch broken by UNAVAILABLE is re-opened from the last offset it
// yielded (a transient publication does not move it); breaking the loop
// cancels the call on the server.
func TestWatchResumesFromTheLastOffset(t *testing.T) {
	cancelled := make(chan struct{})
	f := startFake(t, &fakeServer{watch: func(n int, req *cablehubv1.WatchRequest, st watchStream) error {
		if err := goLive(st); err != nil {
			return err
		}
		if n == 0 {
			sendAll(st, &cablehubv1.StreamPublication{Stream: "s", Epoch: "e", Offset: 1, Data: "1"},
				&cablehubv1.StreamPublication{Stream: "s", Data: "t"},
				&cablehubv1.StreamPublication{Stream: "s", Epoch: "e", Offset: 2, Data: "2"},
				&cablehubv1.StreamPublication{Stream: "s", Data: "t2"})
			return status.Error(codes.Unavailable, "server shutting down")
		}
		sendAll(st, &cablehubv1.StreamPublication{Stream: "s", Epoch: "e", Offset: 3, Data: "3"})
		<-st.Context().Done()
		close(cancelled)
		return nil
	}})
	c := f.newClient(t, Options{APISecret: "tok"})
	lives := 0
	got, err := collect(c.Watch(context.Background(), "s", WatchOptions{OnLive: func() { lives++ }}), 5)
	if err != nil {
		t.Fatal(err)
	}
	want := []StreamPublication{{"s", "e", 1, "1"}, {"s", "", 0, "t"}, {"s", "e", 2, "2"}, {"s", "", 0, "t2"}, {"s", "e", 3, "3"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if lives != 2 {
		t.Fatalf("OnLive called %d times, want 2", lives)
	}
	auth, _, watches := f.received()
	if len(watches) != 2 || watches[0].Since != nil || watches[0].Epoch != "" ||
		watches[1].GetSince() != 2 || watches[1].Since == nil || watches[1].Epoch != "e" || watches[1].Stream != "s" {
		t.Fatalf("watch requests %v, want one live then one since e/2", watches)
	}
	if !reflect.DeepEqual(auth, []string{"Bearer tok", "Bearer tok"}) {
		t.Fatalf("authorization %q", auth)
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the server's watch call did not end after the loop broke")
	}
}

// Since is sent on the first call and on re-opens until a publication
// arrives; a position error ends the watch with the server's position.
func TestWatchSinceAndPositionError(t *testing.T) {
	f := startFake(t, &fakeServer{watch: func(n int, req *cablehubv1.WatchRequest, st watchStream) error {
		if n == 0 {
			return status.Error(codes.Unavailable, "connection lost")
		}
		s, _ := status.New(codes.FailedPrecondition, "epoch changed").WithDetails(&cablehubv1.StreamPosition{Epoch: "e2", Offset: 9})
		return s.Err()
	}})
	c := f.newClient(t, Options{})
	got, err := collect(c.Watch(context.Background(), "s", WatchOptions{Since: &Position{Epoch: "e", Offset: 5}}), 1)
	var e *Error
	if len(got) != 0 || !errors.Is(err, ErrPosition) || !errors.As(err, &e) || e.Position == nil || *e.Position != (Position{"e2", 9}) {
		t.Fatalf("got %v, %v; want ErrPosition at e2/9", got, err)
	}
	_, _, watches := f.received()
	if len(watches) != 2 {
		t.Fatalf("%d watch calls, want 2", len(watches))
	}
	for i, w := range watches {
		if w.Since == nil || w.GetSince() != 5 || w.Epoch != "e" {
			t.Fatalf("watch call %d: %v, want since e/5", i, w)
		}
	}
}

// Without Since and before any publication, a re-open is live again; the
// caller's context ending ends the watch with its error.
func TestWatchReopensLiveAndEndsWithTheContext(t *testing.T) {
	f := startFake(t, &fakeServer{watch: func(n int, req *cablehubv1.WatchRequest, st watchStream) error {
		if n < 2 {
			return status.Error(codes.Unavailable, "connection refused")
		}
		goLive(st)
		<-st.Context().Done()
		return nil
	}})
	c := f.newClient(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	got, err := collect(c.Watch(ctx, "s", WatchOptions{OnLive: cancel}), 1)
	if len(got) != 0 || !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("got %v, %v; want context.Canceled", got, err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Code != codes.Canceled {
		t.Fatalf("error %#v, want a *Error with codes.Canceled", err)
	}
	_, _, watches := f.received()
	if len(watches) != 3 {
		t.Fatalf("%d watch calls, want 3", len(watches))
	}
	for i, w := range watches {
		if w.Since != nil || w.Epoch != "" {
			t.Fatalf("watch call %d: %v, want live", i, w)
		}
	}
}

func TestWatchNoResumeAndOtherErrors(t *testing.T) {
	code := codes.Unavailable
	f := startFake(t, &fakeServer{watch: func(int, *cablehubv1.WatchRequest, watchStream) error {
		return status.Error(code, "no")
	}})
	c := f.newClient(t, Options{})
	ctx := context.Background()
	if _, err := collect(c.Watch(ctx, "s", WatchOptions{NoResume: true}), 1); !errors.Is(err, ErrUnavailable) || f.count("Watch") != 1 {
		t.Fatalf("NoResume: %v after %d calls, want ErrUnavailable after 1", err, f.count("Watch"))
	}
	for _, code = range []codes.Code{codes.Unauthenticated, codes.ResourceExhausted, codes.InvalidArgument} {
		before := f.count("Watch")
		_, err := collect(c.Watch(ctx, "s", WatchOptions{}), 1)
		var e *Error
		if !errors.As(err, &e) || e.Code != code || f.count("Watch") != before+1 {
			t.Fatalf("%v: %v after %d calls, want that code after 1", code, err, f.count("Watch")-before)
		}
	}
}

// Close ends a watch in progress with ErrClosed.
func TestCloseEndsAWatch(t *testing.T) {
	f := startFake(t, &fakeServer{watch: func(_ int, _ *cablehubv1.WatchRequest, st watchStream) error {
		goLive(st)
		<-st.Context().Done()
		return nil
	}})
	c := f.newClient(t, Options{})
	got, err := collect(c.Watch(context.Background(), "s", WatchOptions{OnLive: func() { c.Close() }}), 1)
	if len(got) != 0 || !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v, %v; want ErrClosed", got, err)
	}
}
