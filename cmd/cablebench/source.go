package main

import (
	"context"
	"fmt"
	"net"
)

// sourceAddr is the local address the clients dial from (--local_addr),
// nil for the kernel's choice. Several cablebench processes on one machine
// each take their own loopback address (127.0.0.2, 127.0.0.3, …), so that
// together they open more connections to one server than one address has
// ephemeral ports.
var sourceAddr *net.TCPAddr

// setSourceAddr sets sourceAddr from --local_addr: an IP address on
// loopback ("" leaves the kernel's choice).
func setSourceAddr(s string) error {
	sourceAddr = nil
	if s == "" {
		return nil
	}
	ip := net.ParseIP(s)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--local_addr %q is not a loopback IP address", s)
	}
	sourceAddr = &net.TCPAddr{IP: ip}
	return nil
}

// dialTCP opens a TCP connection to host (host:port) from sourceAddr.
// No keep-alive probes: four setsockopt calls per connection that a short
// benchmark does not need.
func dialTCP(ctx context.Context, host string) (net.Conn, error) {
	d := net.Dialer{KeepAlive: -1}
	if sourceAddr != nil {
		d.LocalAddr = sourceAddr
		d.Control = bindNoPort
	}
	return d.DialContext(ctx, "tcp", host)
}
