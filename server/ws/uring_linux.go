//go:build linux

package ws

import (
	"errors"
	"runtime"
	"syscall"
	"unsafe"

	"github.com/godzie44/go-uring/uring"
	"golang.org/x/sys/unix"
)

// ringEntries is how many sends one io_uring_enter submits at most.
const ringEntries = 256

// ringSender submits a flusher's non-blocking sends in batches through an
// io_uring instance: one io_uring_enter for up to ringEntries connections
// instead of one write each. Sends carry MSG_DONTWAIT, so a full socket
// completes at once with EAGAIN (or a short count) instead of waiting in
// the kernel, exactly like the non-blocking write it replaces. One
// goroutine (its flusher) uses it.
type ringSender struct {
	ring *uring.Ring
	cqes []*uring.CQEvent
	// Set up for the held Control calls of one submission.
	batch []ringSend
	hold  func(fd uintptr)
	next  int
	// broken: the ring failed; the flusher closes it and writes with
	// write(2) from then on.
	broken bool
}

// ringSend is one connection's send in a batch: buf goes to raw; n and err
// are its result (err as rawWriter.write reports it).
type ringSend struct {
	raw syscall.RawConn
	buf []byte
	n   int
	err error
}

// newRingSender returns a sender, or an error when io_uring cannot be set
// up here (an old kernel, a seccomp filter, io_uring_disabled), in which
// case the flusher keeps writing with write(2).
func newRingSender() (*ringSender, error) {
	r, err := uring.New(ringEntries)
	if err != nil {
		if r != nil {
			unix.Close(r.Fd()) // set up, but its rings could not be mapped
		}
		return nil, err
	}
	s := &ringSender{ring: r, cqes: make([]*uring.CQEvent, ringEntries)}
	s.hold = s.holdNext
	return s, nil
}

func (s *ringSender) close() { s.ring.Close() }

var errShortSQ = errors.New("io_uring: no free submission entry")

// send writes each entry's buf to its connection without blocking, in
// submissions of at most ringEntries, and sets each entry's n and err.
func (s *ringSender) send(batch []ringSend) {
	for len(batch) > 0 {
		k := min(len(batch), ringEntries)
		s.submit(batch[:k])
		batch = batch[k:]
	}
}

// submit sends up to ringEntries entries with one io_uring_enter. Each
// connection's descriptor is held open (RawConn.Control) from the moment
// its entry is queued until the kernel has taken the submission, so a
// connection closed meanwhile cannot have its descriptor number reused by
// another socket that would then get its bytes: the Control calls nest,
// and the submission is made from the innermost.
func (s *ringSender) submit(batch []ringSend) {
	s.batch, s.next = batch, 0
	s.holdFrom()
	s.batch = nil
}

// holdFrom queues entries from s.next on, holding each descriptor, and
// submits when all are queued.
func (s *ringSender) holdFrom() {
	for s.next < len(s.batch) {
		e := &s.batch[s.next]
		if err := e.raw.Control(s.hold); err != nil {
			// Closed: nothing was queued for it.
			e.err = err
			s.next++
			continue
		}
		return // holdNext went on from the next entry, and submitted
	}
	s.enter()
}

// holdNext runs inside entry s.next's Control: it queues that entry's send
// and continues with the next entries while the descriptor is held.
func (s *ringSender) holdNext(fd uintptr) {
	i := s.next
	e := &s.batch[i]
	sqe, err := s.ring.NextSQE()
	if err != nil {
		e.err = errShortSQ
	} else {
		*sqe = uring.SQEntry{
			OpCode:      uint8(uring.SendCode),
			Fd:          int32(fd),
			Addr:        uint64(uintptr(unsafe.Pointer(&e.buf[0]))),
			Len:         uint32(len(e.buf)),
			OpcodeFlags: unix.MSG_DONTWAIT | unix.MSG_NOSIGNAL,
			UserData:    uint64(i),
		}
		e.err = errInFlight
	}
	s.next++
	s.holdFrom()
}

var errInFlight = errors.New("in flight")

// enter submits the queued sends and waits for their completions (they
// complete during the submission: none waits for the socket), then
// records each result.
func (s *ringSender) enter() {
	queued := 0
	for i := range s.batch {
		if s.batch[i].err == errInFlight {
			queued++
		}
	}
	if queued == 0 {
		return
	}
	_, err := s.ring.SubmitAndWaitCQEvents(uint32(queued))
	for err == nil || errors.Is(err, syscall.EINTR) {
		n := s.ring.PeekCQEventBatch(s.cqes)
		for _, cqe := range s.cqes[:n] {
			e := &s.batch[cqe.UserData]
			switch res := cqe.Res; {
			case res >= 0:
				e.n, e.err = int(res), nil
				if e.n < len(e.buf) {
					e.err = errWouldBlock
				}
			case syscall.Errno(-res) == syscall.EAGAIN:
				e.n, e.err = 0, errWouldBlock
			default:
				e.n, e.err = 0, syscall.Errno(-res)
			}
		}
		s.ring.AdvanceCQ(uint32(n))
		queued -= n
		if queued == 0 {
			break
		}
		_, err = s.ring.WaitCQEvents(uint32(queued))
	}
	runtime.KeepAlive(s.batch)
	if queued > 0 {
		// The ring failed (it does not, short of a kernel bug): whether
		// the sends still in flight went out cannot be told, so their
		// connections end, and the flusher goes back to write(2).
		s.broken = true
		for i := range s.batch {
			if s.batch[i].err == errInFlight {
				s.batch[i].err = err
			}
		}
	}
}
