package ds

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cablehub/cablehub/server/broker"
	"github.com/cablehub/cablehub/server/node"
	"github.com/cablehub/cablehub/server/protocol"
	"github.com/cablehub/cablehub/server/streams"
)

// fakeReader is a stream "s" at positions 1..3 of epoch "E", retaining
// all; other streams are unknown.
type fakeReader struct{}

func (fakeReader) Tail(_ context.Context, stream string) (string, uint64, error) {
	if stream != "s" {
		return "", 0, nil
	}
	return "E", 3, nil
}

func (r fakeReader) History(ctx context.Context, stream, epoch string, offset uint64) (*node.StreamHistory, error) {
	e, last, _ := r.Tail(ctx, stream)
	h := &node.StreamHistory{Epoch: e, Last: last}
	if epoch != "" && (epoch != e || offset > last) {
		return nil, broker.ErrHistoryUnavailable
	}
	for i := offset + 1; i <= last; i++ {
		h.Pubs = append(h.Pubs, protocol.Publication{Stream: stream, Epoch: e, Offset: i, Data: string(rune('0' + i))})
	}
	return h, nil
}

func (fakeReader) Message(p *protocol.Publication) []byte { return protocol.EncodeMessage(p.Data) }

// fakeGate accepts every reader unless refuse is set; subscribed gets the
// commands the handler sends a session, with its connection.
type fakeGate struct {
	refuse     bool
	subscribed chan subscribed
}

type subscribed struct {
	cmd  []byte
	conn node.Connection
}

func (g *fakeGate) Serve(c node.Connection, _ *http.Request, _ node.SessionOptions) {
	if g.refuse {
		c.Close(1000, "Auth Failed", nil)
		c.Serve(nil, func() {})
		return
	}
	c.Serve(func(cmd []byte) { g.subscribed <- subscribed{cmd, c} }, func() {})
}

func newTestHandler(g *fakeGate) *Handler {
	return NewHandler(fakeReader{}, g, nil, Options{Prefix: "/ds", PollInterval: time.Second, SSETTL: time.Second, Secret: "k", Public: true},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func serve(h http.Handler, method, target string, headers ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	for _, kv := range headers {
		k, v, _ := strings.Cut(kv, ": ")
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHandlerStatuses(t *testing.T) {
	h := newTestHandler(&fakeGate{})
	pos := func(n int) string { return formatOffset("E", uint64(n)) }
	cases := []struct {
		method, target string
		code           int
		body, next     string
	}{
		{"GET", "/ds/s?offset=-1", 200, "[1,2,3]", pos(3)},
		{"GET", "/ds/s?offset=" + pos(1), 200, "[2,3]", pos(3)},
		{"GET", "/ds/s?offset=now", 200, "[]", pos(3)},
		{"GET", "/ds/other", 200, "[]", "0"},
		{"HEAD", "/ds/s", 200, "", pos(3)},
		{"GET", "/ds/s?offset=1::X", 410, "", ""},
		{"GET", "/ds/s?offset=" + pos(9), 400, "", ""},
		{"GET", "/ds/s?offset=2", 400, "", ""},
		{"GET", "/ds/", 400, "", ""},
		{"POST", "/ds/s", 405, "", ""},
		{"OPTIONS", "/ds/s", 200, "", ""},
		{"GET", "/ds/s?signed=" + streams.Sign("other", "k"), 401, "", ""},
		{"GET", "/ds/s?signed=" + streams.Sign("s", "k"), 200, "[1,2,3]", pos(3)},
	}
	for _, c := range cases {
		w := serve(h, c.method, c.target)
		if w.Code != c.code || w.Body.String() != c.body || w.Header().Get("Stream-Next-Offset") != c.next {
			t.Errorf("%s %s: %d %q %q", c.method, c.target, w.Code, w.Body, w.Header().Get("Stream-Next-Offset"))
		}
	}
	if w := serve(newTestHandler(&fakeGate{refuse: true}), "GET", "/ds/s"); w.Code != 401 || w.Header().Get("WWW-Authenticate") == "" {
		t.Errorf("refused: %d %v", w.Code, w.Header())
	}
	w := serve(h, "GET", "/ds/s?offset=-1")
	if w2 := serve(h, "GET", "/ds/s?offset=-1", "If-None-Match: "+w.Header().Get("ETag")); w2.Code != 304 {
		t.Errorf("If-None-Match: %d", w2.Code)
	}
}

// A long-poll at the tail subscribes its session from there and answers
// what the session delivers, or 204 at the end of the wait.
func TestHandlerLongPoll(t *testing.T) {
	g := &fakeGate{subscribed: make(chan subscribed, 1)}
	h := newTestHandler(g)
	poll := func(during func(subscribed)) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		done := make(chan struct{})
		go func() {
			defer close(done)
			h.ServeHTTP(w, httptest.NewRequest("GET", "/ds/s?offset=now&live=long-poll", nil))
		}()
		during(<-g.subscribed)
		<-done
		return w
	}
	w := poll(func(sub subscribed) {
		var got protocol.Command
		if err := json.Unmarshal(sub.cmd, &got); err != nil || got.Command != "subscribe" ||
			got.Identifier != `{"channel":"$pubsub","stream_name":"s"}` || string(got.History) != `{"streams":{"s":{"epoch":"E","offset":3}}}` {
			t.Errorf("subscribe: %s", sub.cmd)
		}
		sub.conn.Send(rec("E", 4, `"x"`), nil)
	})
	if w.Code != 200 || w.Body.String() != `["x"]` || w.Header().Get("Stream-Next-Offset") != formatOffset("E", 4) {
		t.Errorf("woken: %d %q %v", w.Code, w.Body, w.Header())
	}
	w = poll(func(subscribed) {})
	if w.Code != 204 || w.Header().Get("Stream-Next-Offset") != formatOffset("E", 3) || w.Header().Get("Stream-Up-To-Date") != "true" {
		t.Errorf("timeout: %d %v", w.Code, w.Header())
	}
}
