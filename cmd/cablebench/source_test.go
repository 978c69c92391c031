package main

import (
	"context"
	"net"
	"testing"
	"time"
)

// TestLocalAddrReachesServer checks that --local_addr is the address the
// server sees the clients come from, for WebSocket and event stream
// clients alike, and that only loopback addresses are taken.
func TestLocalAddrReachesServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	seen := make(chan string, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			seen <- host
			c.Close() // no answer: the dial then fails reading the head
		}
	}()
	if err := setSourceAddr("127.0.0.3"); err != nil {
		t.Fatal(err)
	}
	defer setSourceAddr("")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dial(ctx, "ws://"+ln.Addr().String()+"/cable", "", "actioncable-v1-json")
	dialSSE(ctx, "http://"+ln.Addr().String()+"/events", "stream=x", "")
	for _, via := range []string{"WebSocket", "SSE"} {
		if got := <-seen; got != "127.0.0.3" {
			t.Errorf("%s: the server saw the client come from %s, want 127.0.0.3", via, got)
		}
	}

	for _, bad := range []string{"10.0.0.1", "0.0.0.0", "localhost", "127.0.0.1:9000"} {
		if setSourceAddr(bad) == nil {
			t.Errorf("--local_addr %q accepted", bad)
		}
	}
	if sourceAddr != nil {
		t.Errorf("a refused --local_addr left %v set", sourceAddr)
	}
}
