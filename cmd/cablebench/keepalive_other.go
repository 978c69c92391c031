//go:build !linux

package main

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// keeper reads connections while no phase does (see keepalive_linux.go),
// here on a goroutine per connection, each looking every 100 ms whether
// the keeper stopped.
type keeper struct {
	stop atomic.Bool
	wg   sync.WaitGroup
	mu   sync.Mutex
	err  error
}

func newKeeper(clients int) (*keeper, error) { return &keeper{}, nil }

func (k *keeper) add(i int, c *benchConn) error {
	k.wg.Go(func() {
		defer c.nc.SetReadDeadline(time.Time{})
		buf := make([]byte, 4096)
		for !k.stop.Load() {
			c.nc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			n, err := c.nc.Read(buf)
			if n > 0 {
				if ferr := c.feed(buf[:n], func([]byte) {}); ferr != nil {
					err = ferr
				}
			}
			var ne net.Error
			if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
				k.mu.Lock()
				if k.err == nil {
					k.err = fmt.Errorf("client %d: %v", i, err)
				}
				k.mu.Unlock()
				return
			}
		}
	})
	return nil
}

func (k *keeper) close() error {
	k.stop.Store(true)
	k.wg.Wait()
	return k.err
}
