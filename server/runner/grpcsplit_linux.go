//go:build linux

package runner

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// peekPreface classifies a connection by the bytes waiting on it, without
// consuming them. Unless wait is set it does not block: too few bytes is
// prefaceUnknown. When waiting, a closed or silent (past its read
// deadline) connection is prefaceUnknown too.
func peekPreface(c net.Conn, wait bool) prefaceKind {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return prefaceOther
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return prefaceOther
	}
	var buf [len(h2Preface)]byte
	kind := prefaceUnknown
	err = raw.Read(func(fd uintptr) bool {
		n, _, err := unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		for err == unix.EINTR {
			n, _, err = unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		}
		switch {
		case err == unix.EAGAIN:
			return !wait
		case err != nil || n == 0:
			return true // closed: unknown
		}
		kind = classify(buf[:n])
		return kind != prefaceUnknown || !wait
	})
	if err != nil {
		return prefaceUnknown
	}
	return kind
}
