//go:build !linux

package runner

import "net"

// peekPreface sends every connection to net/http where peeking is not
// implemented; it serves gRPC through grpc.Server.ServeHTTP.
func peekPreface(net.Conn, bool) prefaceKind { return prefaceOther }
