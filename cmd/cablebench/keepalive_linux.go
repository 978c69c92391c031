//go:build linux

package main

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// keeper reads connections while no phase does: a Pusher client's from
// its subscription until the publish phase, and during --hold. A Pusher
// server pings every connection (every 30 s) and closes one that does not
// answer; and a presence channel's joins reach every member as they
// happen. So the clients answer and take in what comes, as live clients
// would, and the server's memory is not measured with its sends backed
// up. Frames other than pings and member events (see
// pusherStats.intercept) are dropped. On Linux it waits on epoll from one
// goroutine per core, client i read by loop i%loops, as receive does.
type keeper struct {
	conns []atomic.Pointer[keptConn] // by client index
	loops []*keepLoop
	stop  atomic.Bool
	wg    sync.WaitGroup
}

type keptConn struct {
	c  *benchConn
	fd int
}

type keepLoop struct {
	epfd int
	err  error // the first connection that failed, written by the loop
}

// newKeeper starts a keeper for clients 0..clients-1, reading none yet.
func newKeeper(clients int) (*keeper, error) {
	k := &keeper{conns: make([]atomic.Pointer[keptConn], clients)}
	for range min(runtime.GOMAXPROCS(0), max(1, clients)) {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			k.close()
			return nil, err
		}
		l := &keepLoop{epfd: epfd}
		k.loops = append(k.loops, l)
		k.wg.Go(func() { k.run(l) })
	}
	return k, nil
}

// add has the keeper read client i's connection c, which nothing else
// may read until close returns.
func (k *keeper) add(i int, c *benchConn) error {
	sc, err := c.tcp().SyscallConn()
	if err != nil {
		return err
	}
	kc := &keptConn{c: c}
	sc.Control(func(fd uintptr) { kc.fd = int(fd) })
	k.conns[i].Store(kc)
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(i)}
	return unix.EpollCtl(k.loops[i%len(k.loops)].epfd, unix.EPOLL_CTL_ADD, kc.fd, &ev)
}

// run reads the connections of loop l until the keeper stops. A
// connection that fails (closed by the server) is no longer read, and the
// first such failure kept for close.
func (k *keeper) run(l *keepLoop) {
	events := make([]unix.EpollEvent, 256)
	buf := make([]byte, 64<<10)
	drop := func([]byte) {}
	for !k.stop.Load() {
		n, err := unix.EpollWait(l.epfd, events, 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			l.err = err
			return
		}
		for _, ev := range events[:max(n, 0)] {
			i := int(ev.Fd)
			kc := k.conns[i].Load()
			if err := kc.readAll(buf, drop); err != nil {
				unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, kc.fd, nil)
				if l.err == nil {
					l.err = fmt.Errorf("client %d: %v", i, err)
				}
			}
		}
	}
}

// readAll reads what the socket holds, without blocking, into feed.
func (kc *keptConn) readAll(buf []byte, onText func([]byte)) error {
	for {
		m, err := unix.Read(kc.fd, buf)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			return nil
		}
		if err != nil || m == 0 {
			return errors.New("connection closed by the server")
		}
		if err := kc.c.feed(buf[:m], onText); err != nil {
			return err
		}
		if m < len(buf) {
			return nil
		}
	}
}

// close stops the keeper, leaving its connections open and what they
// received but did not parse yet pending, and returns the first failure
// of each loop.
func (k *keeper) close() error {
	k.stop.Store(true)
	k.wg.Wait()
	var errs []error
	for _, l := range k.loops {
		unix.Close(l.epfd)
		errs = append(errs, l.err)
	}
	return errors.Join(errs...)
}
