//go:build linux

package ws

import (
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// poller waits for input on every served connection with one epoll
// instance, so idle connections need no goroutine. Registrations are
// one-shot: after an event the connection is not reported again until its
// reader re-arms it, so one reader at a time handles a connection, in
// order. Each registration carries a generation, so an event for a closed
// connection cannot reach a new one that reuses its descriptor number.
type poller struct {
	epfd, evfd int
	// file is epfd as seen by Go's own poller: the run loop parks in the
	// runtime until epfd has events, so no thread blocks in epoll_wait and
	// a ready connection's reader is scheduled like any woken goroutine.
	file  *os.File
	mu    sync.Mutex
	conns map[int32]*Conn
	gen   uint32
	done  chan struct{}
	// work hands a ready connection to an idle reader (see dispatch);
	// idle counts the readers waiting on it, quit ends them at close.
	work chan *Conn
	idle atomic.Int32
	quit chan struct{}
}

// maxIdleReaders bounds the readers kept waiting for work, per GOMAXPROCS.
const maxIdleReaders = 4

const pollEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, err
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, err
	}
	p := &poller{epfd: epfd, evfd: evfd, conns: map[int32]*Conn{}, done: make(chan struct{}),
		work: make(chan *Conn), quit: make(chan struct{})}
	p.file = os.NewFile(uintptr(epfd), "epoll")
	return p, nil
}

// rawConn returns the descriptor access of a plain TCP connection, nil for
// others (they are read on goroutines).
func rawConn(nc net.Conn) syscall.RawConn {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// add registers c, armed (reported at its next input) or not (its
// reader arms it with rearm).
func (p *poller) add(c *Conn, armed bool) error {
	events := uint32(pollEvents)
	if !armed {
		events = unix.EPOLLONESHOT
	}
	var err error
	cerr := c.raw.Control(func(fd uintptr) {
		p.mu.Lock()
		p.gen++
		c.pollFD, c.pollGen = int32(fd), p.gen
		p.conns[int32(fd)] = c
		ev := unix.EpollEvent{Events: events, Fd: int32(fd), Pad: int32(p.gen)}
		p.mu.Unlock()
		err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if cerr != nil {
		err = cerr
	}
	if err != nil {
		p.remove(c)
	}
	return err
}

func (p *poller) rearm(c *Conn) error {
	var err error
	cerr := c.raw.Control(func(fd uintptr) {
		p.mu.Lock()
		ev := unix.EpollEvent{Events: pollEvents, Fd: int32(fd), Pad: int32(c.pollGen)}
		p.mu.Unlock()
		err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, int(fd), &ev)
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// remove forgets c; closing its socket takes it out of the epoll set.
func (p *poller) remove(c *Conn) {
	p.mu.Lock()
	if p.conns[c.pollFD] == c {
		delete(p.conns, c.pollFD)
	}
	p.mu.Unlock()
}

func (p *poller) run() {
	defer close(p.done)
	rc, err := p.file.SyscallConn()
	if err != nil {
		return
	}
	events := make([]unix.EpollEvent, 256)
	var n int
	var werr error
	wait := func(fd uintptr) bool {
		n, werr = unix.EpollWait(int(fd), events, 0)
		if werr == unix.EINTR {
			return false
		}
		return n > 0 || werr != nil
	}
	for {
		if err := rc.Read(wait); err != nil || werr != nil {
			return
		}
		for _, ev := range events[:n] {
			if ev.Fd == int32(p.evfd) {
				return
			}
			p.mu.Lock()
			c := p.conns[ev.Fd]
			if c != nil && c.pollGen != uint32(ev.Pad) {
				c = nil
			}
			p.mu.Unlock()
			if c != nil {
				p.dispatch(c)
			}
		}
	}
}

// dispatch has c's input read on a reader goroutine: an idle one if any
// waits, else a new one. Readers outlive their connection and wait for
// the next (up to maxIdleReaders per GOMAXPROCS of them), so the stack
// a command's handling grows to is kept, where a goroutine per event
// started small and grew (copied) its stack every time: that copying was
// about 8% of a connection's CPU.
func (p *poller) dispatch(c *Conn) {
	select {
	case p.work <- c:
	default:
		go p.reader(c)
	}
}

func (p *poller) reader(c *Conn) {
	maxIdle := int32(maxIdleReaders * runtime.GOMAXPROCS(0))
	for {
		c.readable()
		if p.idle.Add(1) > maxIdle {
			p.idle.Add(-1)
			return
		}
		select {
		case c = <-p.work:
			p.idle.Add(-1)
		case <-p.quit:
			p.idle.Add(-1)
			return
		}
	}
}

func (p *poller) close() {
	var one [8]byte
	one[0] = 1
	unix.Write(p.evfd, one[:])
	<-p.done
	close(p.quit)
	p.file.Close()
	unix.Close(p.evfd)
}

func readFD(fd uintptr, buf []byte) (int, error)  { return nonBlocking(unix.Read, fd, buf) }
func writeFD(fd uintptr, buf []byte) (int, error) { return nonBlocking(unix.Write, fd, buf) }

// nonBlocking runs a read or write on a non-blocking descriptor, retrying
// interrupted calls; a call that would block returns errWouldBlock.
func nonBlocking(call func(int, []byte) (int, error), fd uintptr, buf []byte) (int, error) {
	for {
		n, err := call(int(fd), buf)
		switch err {
		case nil:
			return n, nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, errWouldBlock
		}
		return n, err
	}
}
