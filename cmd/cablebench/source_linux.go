//go:build linux

package main

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// bindNoPort has a socket bound to --local_addr take its port at connect
// time (IP_BIND_ADDRESS_NO_PORT), when the kernel knows the destination:
// bound first, each socket would reserve a port of its own for any
// destination, and the kernel's search for a free one grows with the
// sockets already bound: 16,667 connections from one address cost the
// client 13.8 s of system CPU bound first, 3.1 s with this (and connected
// at 1.6k/s against 6.1k/s).
func bindNoPort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
