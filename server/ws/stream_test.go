package ws

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// streamPair accepts one connection on a listener and streams its answer;
// it returns the client's side and the server's connection, not served.
func streamPair(t *testing.T, p path, head string) (net.Conn, *Conn) {
	t.Helper()
	tr := NewTransport(Options{IOURing: p.uring})
	tr.noPoller = !p.poll
	t.Cleanup(tr.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return client, tr.Stream(nc, []byte(head))
}

const streamHead = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"

// A streamed answer is an HTTP response a client reads as usual: the head,
// then each frame as it is sent, then the end of the body at Close; the
// connection then ends.
func TestStreamIsAChunkedResponse(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		client, c := streamPair(t, p, streamHead)
		ended := make(chan struct{})
		c.Send([]byte("data: one\n\n"), nil)
		c.Serve(nil, func() { close(ended) })
		client.SetReadDeadline(time.Now().Add(testTimeout))
		br := bufio.NewReader(client)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" || len(res.TransferEncoding) != 1 {
			t.Fatalf("head: %d %v %v", res.StatusCode, res.Header, res.TransferEncoding)
		}
		buf := make([]byte, 64)
		n, err := res.Body.Read(buf)
		if err != nil || string(buf[:n]) != "data: one\n\n" {
			t.Fatalf("first chunk: %q %v", buf[:n], err)
		}
		c.Send([]byte("data: two\n\n"), nil)
		c.Close(1000, "", []byte("event: disconnect\n\n"))
		if c.Send([]byte("late"), nil) {
			t.Error("a frame after Close was taken")
		}
		rest, err := io.ReadAll(res.Body)
		if err != nil || string(rest) != "data: two\n\nevent: disconnect\n\n" {
			t.Fatalf("rest of the body: %q %v", rest, err)
		}
		select {
		case <-ended:
		case <-time.After(testTimeout):
			t.Fatal("the connection did not end after its body")
		}
	})
}

// The client going away ends the connection; a client that sends more
// than a stream takes is cut.
func TestStreamEndsWithItsClient(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		for _, junk := range []int{0, maxStreamInput + 1} {
			client, c := streamPair(t, p, streamHead)
			ended := make(chan struct{})
			c.Serve(nil, func() { close(ended) })
			if junk > 0 {
				go client.Write([]byte(strings.Repeat("x", junk)))
			} else {
				client.Close()
			}
			select {
			case <-ended:
			case <-time.After(testTimeout):
				t.Fatalf("sent %d bytes: the connection did not end", junk)
			}
		}
	})
}

// A stream closed before it sent anything still answers with its head and
// an empty body, whether Close comes before Serve or after.
func TestStreamClosedEmpty(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		for _, closeFirst := range []bool{true, false} {
			client, c := streamPair(t, p, streamHead)
			if closeFirst {
				c.Close(1000, "", nil)
				c.Serve(nil, nil)
			} else {
				c.Serve(nil, nil)
				c.Close(1000, "", nil)
			}
			client.SetReadDeadline(time.Now().Add(testTimeout))
			res, err := http.ReadResponse(bufio.NewReader(client), nil)
			if err != nil {
				t.Fatalf("close first %v: %v", closeFirst, err)
			}
			body, err := io.ReadAll(res.Body)
			if res.StatusCode != 200 || err != nil || len(body) != 0 {
				t.Fatalf("close first %v: %d %q %v", closeFirst, res.StatusCode, body, err)
			}
		}
	})
}
