package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// sseClient reads one Server-Sent Events answer event by event.
type sseClient struct {
	t      *testing.T
	res    *http.Response
	events chan sseEvent
	nc     net.Conn
}

// sseEvent is one event: its name ("" for a message), data (lines joined
// by "\n") and id.
type sseEvent struct {
	Name, Data, ID string
	Retry          string
}

func (e sseEvent) String() string {
	return fmt.Sprintf("{event:%q data:%q id:%q retry:%q}", e.Name, e.Data, e.ID, e.Retry)
}

// openSSE sends the request and reads its answer's head; headers are
// "Name: value" strings. The events are read in the background.
func openSSE(t *testing.T, s *server, method, target, body string, headers ...string) *sseClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.Main, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	req, _ := http.NewRequestWithContext(context.Background(), method, "http://"+s.Main+target, strings.NewReader(body))
	if body == "" {
		req.Body = nil
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ": ")
		req.Header.Set(name, value)
	}
	if err := req.Write(nc); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(nc)
	res, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	nc.SetReadDeadline(time.Time{})
	c := &sseClient{t: t, res: res, events: make(chan sseEvent, 256), nc: nc}
	if res.StatusCode == 200 {
		go c.read(bufio.NewReader(res.Body))
	} else {
		close(c.events)
	}
	return c
}

func (c *sseClient) read(br *bufio.Reader) {
	defer close(c.events)
	var ev sseEvent
	var data []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		field, value, _ := strings.Cut(line, ": ")
		switch field {
		case "":
			ev.Data = strings.Join(data, "\n")
			c.events <- ev
			ev, data = sseEvent{}, nil
		case "event":
			ev.Name = value
		case "data":
			data = append(data, value)
		case "id":
			ev.ID = value
		case "retry":
			ev.Retry = value
		}
	}
}

// next returns the next event that is not a ping.
func (c *sseClient) next() sseEvent {
	c.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				c.t.Fatal("the stream ended")
			}
			if ev.Name == "ping" {
				continue
			}
			return ev
		case <-deadline:
			c.t.Fatal("no event within 10s")
		}
	}
}

// expect takes the next events (pings skipped) and compares them with
// want, written as "name|data|id".
func (c *sseClient) expect(want ...string) {
	c.t.Helper()
	for _, w := range want {
		ev := c.next()
		if got := ev.Name + "|" + ev.Data + "|" + ev.ID; got != w {
			c.t.Fatalf("event:\n got %s\nwant %s", got, w)
		}
	}
}

// ended waits for the end of the body.
func (c *sseClient) ended() {
	c.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				return
			}
			if ev.Name != "ping" {
				c.t.Fatalf("event before the end: %s", ev)
			}
		case <-deadline:
			c.t.Fatal("the stream did not end within 10s")
		}
	}
}

// welcome takes the welcome and the confirmation of identifier.
func (c *sseClient) welcome(identifier string) {
	c.t.Helper()
	if ev := c.next(); ev.Name != "welcome" || !strings.HasPrefix(ev.Data, `{"type":"welcome","sid":"`) {
		c.t.Fatalf("welcome: %s", ev)
	}
	if identifier != "" {
		c.expect("confirm_subscription|" + fmt.Sprintf(`{"type":"confirm_subscription","identifier":%q}`, identifier) + "|")
	}
}

// pubsubID is the identifier of a $pubsub subscription to stream.
func pubsubID(stream string) string {
	return fmt.Sprintf(`{"channel":"$pubsub","stream_name":%q}`, stream)
}
