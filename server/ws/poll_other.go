//go:build !linux

package ws

import (
	"errors"
	"net"
	"syscall"
)

// Without epoll every connection is read on a goroutine of its own and
// written by writer goroutines; the poller is never created.
type poller struct{}

var errNoPoller = errors.New("no poller on this platform")

func newPoller() (*poller, error)          { return nil, errNoPoller }
func rawConn(net.Conn) syscall.RawConn     { return nil }
func (*poller) run()                       {}
func (*poller) close()                     {}
func (*poller) add(*Conn, bool) error      { return errNoPoller }
func (*poller) rearm(*Conn) error          { return errNoPoller }
func (*poller) remove(*Conn)               {}
func readFD(uintptr, []byte) (int, error)  { return 0, errNoPoller }
func writeFD(uintptr, []byte) (int, error) { return 0, errNoPoller }
