package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// sseBody is a chunked event stream as the servers write it: a welcome,
// the confirmation, a publication with its id, a ping, a two-line message
// with CRLF line breaks and a comment, an event without data, then the
// last chunk.
var sseBody = chunk("event: welcome\ndata: {\"type\":\"welcome\"}\n\n") +
	chunk("event: confirm_subscription\ndata: {\"type\":\"confirm_subscription\"}\n\n") +
	chunk("data: {\"n\":0,\"t\":5}\nid: 1/ep/bench\n\nevent: ping\ndata: {\"type\":\"ping\"}\n\n") +
	chunk(": comment\r\ndata: two\r\ndata:lines\r\n\r\nevent: empty\n\n") +
	"0\r\n\r\n"

func chunk(s string) string { return fmt.Sprintf("%x;ext=1\r\n%s\r\n", len(s), s) }

// TestSSEStreamParsesEvents feeds the body in every split in two, and
// byte by byte, and checks the events parsed, then the end of the body.
func TestSSEStreamParsesEvents(t *testing.T) {
	want := []string{
		`welcome {"type":"welcome"}`,
		`confirm_subscription {"type":"confirm_subscription"}`,
		`message {"n":0,"t":5}`,
		`ping {"type":"ping"}`,
		"message two\nlines",
	}
	parse := func(parts ...string) ([]string, error) {
		s := &sseStream{chunked: true}
		var got []string
		onMessage := func(d []byte) { got = append(got, "message "+string(d)) }
		onNamed := func(n, d []byte) bool {
			got = append(got, string(n)+" "+string(d))
			return false
		}
		for _, p := range parts {
			if err := s.feed([]byte(p), onMessage, onNamed); err != nil {
				return got, err
			}
		}
		return got, nil
	}
	check := func(split string, got []string, err error) {
		t.Helper()
		if !errors.Is(err, errBodyEnded) {
			t.Errorf("%s: error %v, want the body's end", split, err)
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s: events %q, want %q", split, got, want)
		}
	}
	for i := range len(sseBody) + 1 {
		got, err := parse(sseBody[:i], sseBody[i:])
		check(fmt.Sprintf("split at %d", i), got, err)
	}
	bytes := strings.Split(sseBody, "")
	got, err := parse(bytes...)
	check("byte by byte", got, err)
}

// TestSSEStreamRefusesBadChunks checks the chunk framing errors.
func TestSSEStreamRefusesBadChunks(t *testing.T) {
	for _, body := range []string{"zz\r\ndata\r\n", "4\r\ndataXY", strings.Repeat("1", 2000)} {
		s := &sseStream{chunked: true}
		if err := s.feed([]byte(body), nil, nil); err == nil {
			t.Errorf("%.20q: no error", body)
		}
	}
}

// TestConnectSSE checks the request a client makes (the query carrying
// its subscription, on the endpoint's own), its subscription at the
// confirmation, the publications then passed on by feed, and a refusal.
func TestConnectSSE(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("stream") == "closed" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		fmt.Fprintf(w, "event: confirm_subscription\ndata: %s\n\n", r.URL.RawQuery)
		w.(http.Flusher).Flush()
		fmt.Fprint(w, "data: {\"n\":3,\"t\":9}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub := newSubscription("room", "secret")
	c, err := connectSSE(ctx, srv.URL+"/events?x=1", "", sub)
	if err != nil {
		t.Fatal(err)
	}
	defer c.nc.Close()
	if !strings.HasPrefix(sub.query, "signed_stream=") {
		t.Errorf("query %q, want a signed_stream", sub.query)
	}
	var got []byte
	c.readFor(time.Now().Add(5*time.Second), func(data []byte) (bool, error) {
		err := c.feed(data, func(p []byte) { got = append(got, p...) })
		return len(got) > 0, err
	})
	if n, sent, ok := parseMessage(got); !ok || n != 3 || sent != 9 {
		t.Errorf("publication %q parsed as %d, %d, %v", got, n, sent, ok)
	}
	_, err = connectSSE(ctx, srv.URL+"/events", "", newSubscription("closed", ""))
	if se := (*statusError)(nil); !errors.As(err, &se) || !strings.Contains(se.status, "401") {
		t.Errorf("refused stream: %v, want the 401", err)
	}
}
