//go:build !linux

package main

import "syscall"

// bindNoPort does nothing off Linux.
func bindNoPort(_, _ string, _ syscall.RawConn) error { return nil }
