package api

import (
	"bytes"
	"errors"
	"strconv"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cablehub/cablehub/server/protocol"
)

// maxWatchBacklog bounds the publications a watch holds that its caller
// has not taken yet: past it the watcher is too slow and the call ends
// with RESOURCE_EXHAUSTED, as a WebSocket client is cut as too_slow.
const maxWatchBacklog = 16 << 20

// watchCodec is the wire format of a watch's session (a node.Codec): a
// publication becomes a record of its offset, epoch and data as
// published, encoded once for every watcher of the stream on the node;
// server messages keep their Action Cable JSON, which watchConn reads
// for what they tell (confirmation, refusals).
type watchCodec struct{}

// watchMark starts a publication's record: no Action Cable message starts
// with it, and epochs never hold it.
const watchMark = 0

func (watchCodec) Decode(frame []byte) (*protocol.Command, error) {
	return protocol.ParseCommand(frame)
}

func (watchCodec) Encode(frame []byte) []byte { return frame }

func (watchCodec) AppendBroadcast(dst []byte, _ string, p *protocol.Publication, _ []byte) []byte {
	dst = append(dst, watchMark)
	dst = strconv.AppendUint(dst, p.Offset, 10)
	dst = append(dst, watchMark)
	dst = append(dst, p.Epoch...)
	dst = append(dst, watchMark)
	return append(dst, p.Data...)
}

// watchItem is a publication read back from its record.
type watchItem struct {
	offset uint64
	epoch  string
	data   string
}

var errNotRecord = errors.New("not a publication record")

func parseWatchRecord(frame []byte) (watchItem, error) {
	if len(frame) == 0 || frame[0] != watchMark {
		return watchItem{}, errNotRecord
	}
	parts := bytes.SplitN(frame[1:], []byte{watchMark}, 3)
	if len(parts) != 3 {
		return watchItem{}, errNotRecord
	}
	offset, err := strconv.ParseUint(string(parts[0]), 10, 64)
	if err != nil {
		return watchItem{}, errNotRecord
	}
	return watchItem{offset: offset, epoch: string(parts[1]), data: string(parts[2])}, nil
}

// watchConn is the node.Connection of a watch's session: what the session
// sends, in order and from the watcher's position, is queued for the
// call's goroutine (Service.Watch), which sends it to the caller. Send
// never blocks; a backlog past maxWatchBacklog ends the watch.
type watchConn struct {
	mu       sync.Mutex
	handle   func([]byte)
	end      func()
	accepted bool
	ended    bool
	onSlow   func()

	// live is set by the subscription's confirmation; err ends the watch
	// once the queue is drained (the first reason wins).
	live  bool
	err   error
	queue []watchItem
	size  int
	wake  chan struct{}
	// epoch and offset are the position of the last publication queued
	// ("" while the stream's epoch is not known yet).
	epoch  string
	offset uint64
}

func newWatchConn(epoch string, offset uint64) *watchConn {
	return &watchConn{wake: make(chan struct{}, 1), epoch: epoch, offset: offset}
}

func (c *watchConn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// failLocked ends the watch with err unless it ended already; c.mu is held.
func (c *watchConn) failLocked(err error) {
	if c.err == nil {
		c.err = err
	}
	c.signal()
}

// errLost ends a watch whose publications cannot all reach it: a gap
// history could not fill, or a new epoch (offsets restarted).
func errLost(msg string) error {
	return status.Error(codes.FailedPrecondition, msg+": resume with since set to the last offset received")
}

func (c *watchConn) Send(frame, _ []byte) bool {
	rec, err := parseWatchRecord(frame)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		switch messageType(frame) {
		case "confirm_subscription":
			c.live = true
			c.signal()
		case "reject_subscription":
			c.failLocked(status.Error(codes.Unavailable, "the node could not subscribe to the stream"))
		case "reject_history":
			c.failLocked(errLost("publications of the stream were lost to this watch"))
		}
		return c.err == nil
	}
	switch {
	case c.err != nil:
		return false
	case rec.epoch != "" && c.epoch != "" && rec.epoch != c.epoch:
		c.failLocked(errLost("the stream's epoch changed to " + strconv.Quote(rec.epoch)))
		return false
	case rec.epoch != "" && rec.epoch == c.epoch && rec.offset <= c.offset:
		return true // delivered already
	}
	if rec.epoch != "" {
		c.epoch, c.offset = rec.epoch, rec.offset
	}
	c.queue = append(c.queue, rec)
	c.size += len(rec.data) + 64
	if c.size > maxWatchBacklog {
		c.failLocked(status.Errorf(codes.ResourceExhausted, "the watcher is too slow: over %d MiB of publications waited", maxWatchBacklog>>20))
		if c.onSlow != nil {
			go c.onSlow()
		}
		return false
	}
	c.signal()
	return true
}

// take returns the queued publications, and the reason the watch ended
// once none are left.
func (c *watchConn) take() ([]watchItem, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	items := c.queue
	c.queue, c.size = nil, 0
	if len(items) > 0 {
		return items, nil
	}
	return nil, c.err
}

func (c *watchConn) Close(code int, reason string, _ []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if code == 1001 {
		c.failLocked(status.Error(codes.Unavailable, "the server is shutting down: resume on another node"))
		return
	}
	c.failLocked(status.Error(codes.Unavailable, "the watch was closed by the server: "+reason))
}

func (c *watchConn) Abort() { c.Close(1006, "aborted", nil) }

func (c *watchConn) OnSlow(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onSlow = f
}

func (c *watchConn) Serve(handle func([]byte), end func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.handle, c.end = handle, end
	c.accepted = handle != nil && c.err == nil
}

// finish runs the session's end once.
func (c *watchConn) finish() {
	c.mu.Lock()
	end := c.end
	run := !c.ended && end != nil
	c.ended = true
	c.failLocked(status.Error(codes.Canceled, "the watch ended"))
	c.mu.Unlock()
	if run {
		end()
	}
}

// messageType reads the type of an Action Cable message composed by the
// protocol package ({"type":"<name>",...); "" for any other.
func messageType(frame []byte) string {
	rest, ok := bytes.CutPrefix(frame, []byte(`{"type":"`))
	if !ok {
		return ""
	}
	if end := bytes.IndexByte(rest, '"'); end > 0 {
		return string(rest[:end])
	}
	return ""
}
