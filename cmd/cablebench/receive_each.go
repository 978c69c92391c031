package main

import (
	"context"
	"errors"
	"sync"
	"time"
)

// receiveEach reads every connection on a goroutine of its own until done
// reports true, calling onText with the connection's index for each text
// message. It fails when nothing arrives on a connection for idle. It is
// receive where there is no epoll, and for wss:// connections.
func receiveEach(ctx context.Context, conns []*benchConn, onText func(i int, payload []byte), done func() bool, idle time.Duration) error {
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4096)
			for data := []byte(nil); !done() && ctx.Err() == nil; {
				if err := c.feed(data, func(p []byte) { onText(i, p) }); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				if done() {
					return
				}
				c.nc.SetReadDeadline(time.Now().Add(idle))
				n, err := c.nc.Read(buf)
				if err != nil && n == 0 {
					if !done() {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
					return
				}
				data = buf[:n]
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
