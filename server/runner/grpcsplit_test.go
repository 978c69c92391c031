package runner

import (
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	for in, want := range map[string]prefaceKind{
		"":                     prefaceUnknown,
		"PRI * HT":             prefaceUnknown,
		h2Preface:              prefaceHTTP2,
		h2Preface + "\x00\x00": prefaceHTTP2,
		"GET /cable HTTP/1.1":  prefaceGET,
		"GE":                   prefaceUnknown,
		"POST /api/publish":    prefaceOther,
		"GEX":                  prefaceOther,
		"PRX":                  prefaceOther,
	} {
		if got := classify([]byte(in)); got != want {
			t.Errorf("classify(%q) = %v, want %v", in, got, want)
		}
	}
}

// The split listener hands each connection, unread, to the server its
// first bytes call for, however slowly they arrive, and drops connections
// that say nothing in time.
func TestSplitListenerRoutesByPreface(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("connections are told apart only on Linux")
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpLn, grpcLn := newSplitListener(inner, 300*time.Millisecond, true, nil)
	defer httpLn.Close()
	defer grpcLn.Close()

	accept := func(ln net.Listener, want string) {
		t.Helper()
		type res struct {
			c   net.Conn
			err error
		}
		ch := make(chan res, 1)
		go func() { c, err := ln.Accept(); ch <- res{c, err} }()
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatal(r.err)
			}
			defer r.c.Close()
			got := make([]byte, len(want))
			r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(r.c, got); err != nil || string(got) != want {
				t.Fatalf("server read %q (%v), want the client's bytes %q untouched", got, err, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no connection for %q", want)
		}
	}
	dial := func(chunks ...string) net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for _, chunk := range chunks {
				time.Sleep(20 * time.Millisecond)
				c.Write([]byte(chunk))
			}
		}()
		return c
	}

	c1 := dial("PRI * HTTP/2", ".0\r\n\r\nSM\r\n\r\n", "\x00\x00\x00")
	defer c1.Close()
	accept(grpcLn, h2Preface+"\x00\x00\x00")

	c2 := dial("GET / HTTP/1.1\r\n\r\n")
	defer c2.Close()
	accept(httpLn, "GET / HTTP/1.1\r\n\r\n")

	c3 := dial("PR", "I")
	defer c3.Close()
	c3.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c3.Read(make([]byte, 1)); err == nil {
		t.Fatal("a connection that never finished its preface was not closed")
	}
}
