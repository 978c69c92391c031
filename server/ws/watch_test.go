package ws

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// watchedConns is how many connections the transport's watcher holds.
func watchedConns(tr *Transport) int {
	tr.watcher.mu.Lock()
	defer tr.watcher.mu.Unlock()
	return len(tr.watcher.conns)
}

// TestFirstFrameTimeout asserts a client that sends nothing after the
// upgrade gets a ping at half of FirstFrameTimeout and, when it does not
// answer, a close with 1008, then end of stream.
func TestFirstFrameTimeout(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{opts: Options{FirstFrameTimeout: 400 * time.Millisecond}})
		rc, sc := s.dialRaw(t)
		if f := rc.read(); f.op != opPing || len(f.payload) != 0 {
			t.Fatalf("got %v, want an empty ping", f)
		}
		rc.expectClose(1008, "first frame timeout")
		rc.expectFIN()
		waitEnded(t, sc)
	})
}

// TestFirstFramePingAnswered asserts a client with nothing to say that
// answers the ping (as every WebSocket client does by itself) is kept
// past FirstFrameTimeout: it leaves the watcher, and later still sends
// and receives.
func TestFirstFramePingAnswered(t *testing.T) {
	const timeout = 300 * time.Millisecond
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{opts: Options{FirstFrameTimeout: timeout}})
		rc, sc := s.dialRaw(t)
		start := time.Now()
		f := rc.read()
		if f.op != opPing {
			t.Fatalf("got %v, want a ping", f)
		}
		rc.write(cframe(opPong, string(f.payload)))
		eventually(t, testTimeout, "the connection to leave the watcher", func() bool { return watchedConns(s.tr) == 0 })
		// Past the limit, with a margin for the sweeper's period.
		time.Sleep(time.Until(start.Add(2 * timeout)))
		sc.Send([]byte("still here"), nil)
		rc.expectText("still here")
		rc.write(cframe(opText, "me too"))
		if got := nextMsg(t, sc); string(got) != "me too" {
			t.Fatalf("got %q", got)
		}
	})
}

// TestFirstFrameHeard asserts any first frame (a message, or a ping the
// client sends itself) takes a connection out of the watcher, and healthy
// connections stay out: many clients that each sent a message leave the
// watcher empty.
func TestFirstFrameHeard(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{})
		var clients []*rawClient
		for i := range 20 {
			rc, _ := s.dialRaw(t)
			clients = append(clients, rc)
			if i%2 == 0 {
				rc.write(cframe(opText, "hello"))
			} else {
				rc.write(cframe(opPing, "hi"))
			}
		}
		eventually(t, testTimeout, "the watcher to be empty", func() bool { return watchedConns(s.tr) == 0 })
		for i, rc := range clients {
			if i%2 == 1 {
				if f := rc.read(); f.op != opPong || string(f.payload) != "hi" {
					t.Fatalf("got %v, want the pong", f)
				}
			}
		}
	})
}

// TestFrameTimeout asserts a client that leaves a frame or a fragmented
// message unfinished for FrameTimeout gets a close with 1008 and end of
// stream, after the messages it completed were handled.
func TestFrameTimeout(t *testing.T) {
	text := cframe(opText, "a whole frame")
	tests := []struct {
		name  string
		input []byte
	}{
		{"first header byte", text[:1]},
		{"header without its mask", text[:2]},
		{"half the payload", text[:len(text)-5]},
		{"16-bit length, half the payload", encodeFrame(0x80|opText, textOf(1000, 1), true, testMask)[:500]},
		{"first fragment", cfrag(opText, "part one")},
		{"fragments, the last missing", cat(cfrag(opText, "one"), cfrag(opContinuation, "two"), cframe(opPing, ""))},
		{"fragment, then half a frame", cat(cfrag(opBinary, "one"), cframe(opContinuation, "two")[:4])},
	}
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{opts: Options{FrameTimeout: 300 * time.Millisecond, FirstFrameTimeout: -1}})
		clients := make([]*rawClient, len(tests))
		conns := make([]*serverConn, len(tests))
		for i, tt := range tests { // all at once: they time out together
			clients[i], conns[i] = s.dialRaw(t)
			clients[i].write(cframe(opText, "before"), tt.input)
		}
		for i, tt := range tests {
			rc, sc := clients[i], conns[i]
			f := rc.read()
			for f.op == opPong {
				f = rc.read()
			}
			if code, reason := f.closeCode(); f.op != opClose || code != 1008 || reason != "frame timeout" {
				t.Fatalf("%s: got %v, want close 1008 \"frame timeout\"", tt.name, f)
			}
			rc.expectFIN()
			waitEnded(t, sc)
			if got := nextMsg(t, sc); string(got) != "before" || len(sc.msgs) != 0 {
				t.Fatalf("%s: handle got %q and %d more", tt.name, got, len(sc.msgs))
			}
		}
	})
}

// TestFrameTimeoutTrickle asserts a fragmented message must finish within
// FrameTimeout even when its fragments keep coming: a client cannot hold
// a message open by sending it a byte at a time.
func TestFrameTimeoutTrickle(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{opts: Options{FrameTimeout: 300 * time.Millisecond, FirstFrameTimeout: -1}})
		rc, sc := s.dialRaw(t)
		rc.write(cfrag(opText, "start"))
		closed := make(chan serverFrame, 1)
		go func() {
			rc.nc.SetReadDeadline(time.Now().Add(testTimeout))
			f, _ := readServerFrame(rc.br)
			closed <- f
		}()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case f := <-closed:
				if code, reason := f.closeCode(); f.op != opClose || code != 1008 || reason != "frame timeout" {
					t.Fatalf("got %v, want close 1008 \"frame timeout\"", f)
				}
				waitEnded(t, sc)
				if len(sc.msgs) != 0 {
					t.Fatal("the unfinished message was handled")
				}
				return
			case <-tick.C:
				rc.nc.SetWriteDeadline(time.Now().Add(testTimeout))
				if _, err := rc.nc.Write(cfrag(opContinuation, ".")); err != nil {
					t.Fatalf("the connection closed without a close frame: %v", err)
				}
			}
		}
	})
}

// TestFrameTimeoutProgress asserts a client whose writes keep ending in
// the middle of a frame, each finishing the frame before, is not cut
// however long it goes on: the limit is on one frame, not on the time
// something is unfinished.
func TestFrameTimeoutProgress(t *testing.T) {
	const frameTimeout = 400 * time.Millisecond
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{opts: Options{FrameTimeout: frameTimeout, FirstFrameTimeout: -1}})
		rc, sc := s.dialRaw(t)
		var stream []byte
		const n = 100
		for i := range n {
			stream = append(stream, cframe(opText, fmt.Sprintf("message %d", i))...)
		}
		// Every write ends in the middle of a frame; they span two frame
		// timeouts.
		step := len(stream) / n
		for off := 0; off < len(stream); off += step {
			rc.write(stream[off:min(off+step, len(stream))])
			time.Sleep(2 * frameTimeout / n)
		}
		for i := range n {
			if got, want := nextMsg(t, sc), fmt.Sprintf("message %d", i); string(got) != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
		sc.Close(1000, "", nil)
		rc.expectClose(1000, "")
	})
}

// TestSlowHandlerNotStuck asserts a message whose handler runs longer than
// FrameTimeout does not make its client look stuck, though its frame
// arrived in parts.
func TestSlowHandlerNotStuck(t *testing.T) {
	const frameTimeout = 200 * time.Millisecond
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{
			opts: Options{FrameTimeout: frameTimeout, FirstFrameTimeout: -1},
			handle: func(sc *serverConn, m []byte) {
				if string(m) == "slow" {
					time.Sleep(3 * frameTimeout)
				}
				sc.msgs <- m
			},
		})
		rc, sc := s.dialRaw(t)
		slow := cframe(opText, "slow")
		rc.write(slow[:3])
		eventually(t, testTimeout, "the partial frame to be watched", func() bool { return watchedConns(s.tr) == 1 })
		rc.write(slow[3:], cframe(opText, "next"))
		for _, want := range []string{"slow", "next"} {
			if got := nextMsg(t, sc); string(got) != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
		sc.Send([]byte("reply"), nil)
		if f := rc.read(); f.op != opText || !bytes.Equal(f.payload, []byte("reply")) {
			t.Fatalf("got %v, want the reply", f)
		}
	})
}
