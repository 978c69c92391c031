//go:build !linux

package main

import (
	"context"
	"time"
)

// receive reads every connection until done reports true (receiveEach).
func receive(ctx context.Context, conns []*benchConn, onText func(i int, payload []byte), done func() bool, idle time.Duration) error {
	return receiveEach(ctx, conns, onText, done, idle)
}
