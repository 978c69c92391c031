//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// receive reads every connection until done reports true, calling onText
// with the connection's index for each text message. On Linux it waits on
// epoll from one goroutine per core, one read per ready socket: a client
// that costs little per message leaves the cores to the server.
// It fails when nothing arrives for idle, or ctx ends.
func receive(ctx context.Context, conns []*benchConn, onText func(i int, payload []byte), done func() bool, idle time.Duration) error {
	if len(conns) > 0 && conns[0].isTLS() {
		return receiveEach(ctx, conns, onText, done, idle)
	}
	readers := min(runtime.GOMAXPROCS(0), max(1, len(conns)))
	errs := make([]error, readers)
	var wg sync.WaitGroup
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[r] = receiveEpoll(ctx, conns, r, readers, onText, done, idle)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func receiveEpoll(ctx context.Context, conns []*benchConn, first, step int, onText func(int, []byte), done func() bool, idle time.Duration) error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(epfd)
	fds := make([]int, len(conns))
	for i := first; i < len(conns); i += step {
		c := conns[i]
		sc, err := c.tcp().SyscallConn()
		if err != nil {
			return err
		}
		sc.Control(func(fd uintptr) { fds[i] = int(fd) })
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(i)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fds[i], &ev); err != nil {
			return err
		}
		// Frames that came with the handshake or the confirmation.
		if err := c.feed(nil, func(p []byte) { onText(i, p) }); err != nil {
			return err
		}
	}
	events := make([]unix.EpollEvent, 512)
	buf := make([]byte, 64<<10)
	last := time.Now()
	for !done() {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := unix.EpollWait(epfd, events, 100)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return err
		}
		if n <= 0 {
			if time.Since(last) > idle {
				return fmt.Errorf("nothing received for %s", idle)
			}
			continue
		}
		last = time.Now()
		for _, ev := range events[:n] {
			i := int(ev.Fd)
			for {
				m, err := unix.Read(fds[i], buf)
				if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
					break
				}
				if err != nil || m == 0 {
					return fmt.Errorf("client %d: connection closed by the server", i)
				}
				if err := conns[i].feed(buf[:m], func(p []byte) { onText(i, p) }); err != nil {
					return fmt.Errorf("client %d: %v", i, err)
				}
				if m < len(buf) {
					break
				}
			}
		}
	}
	return nil
}
