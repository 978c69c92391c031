package ws

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// timeoutServer starts a server whose writes time out after writeTimeout,
// with no pending limit (only the write timeout cuts), counting OnSlow
// calls and written frames; onSlow, if set, runs in OnSlow too.
func timeoutServer(t *testing.T, p path, writeTimeout time.Duration, onSlow func()) (s *testServer, slow, written *atomic.Int64) {
	slow, written = new(atomic.Int64), new(atomic.Int64)
	s = newTestServer(t, p, serverConfig{
		opts: Options{
			WriteTimeout: writeTimeout,
			OnSent:       func(frames, _ int) { written.Add(int64(frames)) },
		},
		beforeServe: func(sc *serverConn) {
			sc.OnSlow(func() {
				slow.Add(1)
				if onSlow != nil {
					onSlow()
				}
			})
		},
	})
	return s, slow, written
}

// TestWriteTimeoutCountsAsSlow asserts a client that never reads, cut
// because a write did not complete within the write timeout, is cut as too
// slow: OnSlow runs once (the node counts and logs it), Send reports false
// from then on, and the connection ends with its socket closed.
func TestWriteTimeoutCountsAsSlow(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		s, slow, written := timeoutServer(t, p, 200*time.Millisecond, nil)
		rc, sc := s.dialRaw(t) // never reads, until the end
		fillSocket(t, sc, written)
		waitEnded(t, sc)
		if slow.Load() != 1 {
			t.Fatalf("OnSlow ran %d times", slow.Load())
		}
		if sc.Send([]byte("x"), slowFrame) {
			t.Fatal("Send reported true after the cut")
		}
		rc.nc.SetReadDeadline(time.Now().Add(testTimeout))
		_, err := io.Copy(io.Discard, rc.nc)
		if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("socket still open after the cut")
		}
		if slow.Load() != 1 {
			t.Fatalf("OnSlow ran %d times", slow.Load())
		}
	})
}

// TestWriteTimeoutTellsClient asserts a client cut by the write timeout
// that reads again right then (here: as soon as OnSlow runs) gets an
// unbroken run of the frames sent, the frame in progress completed, then
// the too_slow frame (Send's slowFrame) and a close with 1000; its answer
// ends the connection.
func TestWriteTimeoutTellsClient(t *testing.T) {
	bothPaths(t, func(t *testing.T, p path) {
		cut := make(chan struct{})
		s, slow, written := timeoutServer(t, p, time.Second, func() { close(cut) })
		rc, sc := s.dialRaw(t)
		sent := fillSocket(t, sc, written)
		select {
		case <-cut:
		case <-time.After(testTimeout):
			t.Fatal("the blocked write was not cut")
		}
		got := 0
		for {
			f := rc.read()
			if f.op != opText {
				t.Fatalf("after %d frames: got %v, want slowFrame", got, f)
			}
			if bytes.Equal(f.payload, slowFrame) {
				break
			}
			if !bytes.Equal(f.payload, slowFrameOf(got)) {
				t.Fatalf("frame %d: got %.8q", got, f.payload)
			}
			got++
		}
		if got > sent {
			t.Fatalf("got %d frames of %d sent", got, sent)
		}
		rc.expectClose(1000, "")
		rc.write(cframe(opClose, closeBody(1000, "")))
		rc.expectEOF(testTimeout)
		waitEnded(t, sc)
		if slow.Load() != 1 {
			t.Fatalf("OnSlow ran %d times", slow.Load())
		}
	})
}

// TestFrameEnd asserts the end of the frame in progress is found across
// the three header sizes, from a frame boundary, and inside a backlog.
func TestFrameEnd(t *testing.T) {
	var buf []byte
	buf = append(buf, "tail"...)                        // the end of an earlier write's frame
	buf = appendFrame(buf, opText, make([]byte, 10))    // 4..16
	buf = appendFrame(buf, opText, make([]byte, 300))   // 16..320
	buf = appendFrame(buf, opText, make([]byte, 70000)) // 320..70330
	for _, c := range []struct{ n, want int }{
		{0, 4}, {3, 4}, {4, 4}, {5, 16}, {16, 16}, {17, 320}, {319, 320}, {321, 70330}, {70329, 70330},
	} {
		if got := frameEnd(buf, 4, c.n); got != c.want {
			t.Errorf("frameEnd(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}
