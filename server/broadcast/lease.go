package broadcast

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// The redis adapter's lease timing in a cluster.
const (
	// redisLeaseTTL is how long a lease lasts unrenewed: how long the
	// channel goes unheard when its listener dies without releasing it.
	redisLeaseTTL = 5 * time.Second
	// redisLeaseRetry is how often a standing-by node tries to take the
	// lease: how long the channel goes unheard after a listener stops
	// cleanly (it releases the lease).
	redisLeaseRetry = time.Second
)

// redisLease is a lease on a Redis key: the node whose id the key holds
// is the one listener of the redis adapter's channel in a cluster. A
// message PUBLISHed to the channel reaches every node subscribed, so if
// each handed it to the sink it would be stamped and delivered once per
// node; with the lease, exactly one does.
//
// The holder renews it every third of its TTL and counts it valid until
// the TTL, less a fifth for clock-rate differences, after the start of its
// last successful renewal: Redis's own expiry comes later than that, so
// two nodes never both count it valid. A holder that cannot renew in time
// stops listening (it delivers nothing once its lease is not valid), and
// another node takes over after Redis expires the key.
//
// Messages published while no node listens (between a listener's end and
// the next one's subscription: up to redisLeaseRetry after a clean stop,
// up to redisLeaseTTL after a crash) reach no one, as a Redis pub/sub
// message does when its subscriber reconnects.
type redisLease struct {
	client redis.UniversalClient
	key    string
	id     string
	ttl    time.Duration

	mu         sync.Mutex
	validUntil time.Time
}

func newRedisLease(client redis.UniversalClient, key, id string) *redisLease {
	return &redisLease{client: client, key: key, id: id, ttl: redisLeaseTTL}
}

// holdScript takes the lease when the key is free, or extends it when this
// node holds it; 1 means held.
var holdScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if v then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`)

// releaseScript deletes the key if this node holds it.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)

// hold takes or renews the lease and reports whether this node holds it.
func (l *redisLease) hold(ctx context.Context) (bool, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, l.ttl/3)
	defer cancel()
	n, err := holdScript.Run(ctx, l.client, []string{l.key}, l.id, l.ttl.Milliseconds()).Int()
	if err != nil {
		return false, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if n != 1 {
		l.validUntil = time.Time{}
		return false, nil
	}
	l.validUntil = start.Add(l.ttl - l.ttl/5)
	return true, nil
}

// valid reports whether this node may act as the holder now.
func (l *redisLease) valid() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Now().Before(l.validUntil)
}

// keep renews the lease until ctx is done, and stops the listener (cancel)
// when it is lost or can no longer be renewed in time.
func (l *redisLease) keep(ctx context.Context, cancel context.CancelCauseFunc) {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		held, err := l.hold(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !l.valid():
			cancel(fmt.Errorf("broadcast lease not renewed in Redis: %w", err))
			return
		case err == nil && !held:
			cancel(errLeaseLost)
			return
		}
	}
}

// release gives the lease up if this node holds it, so another node takes
// over without waiting for it to expire. This node stops counting it
// valid either way; an error means Redis did not confirm the release, so
// the key may stand until it expires (redisLeaseTTL), and with it the
// channel goes unheard.
func (l *redisLease) release(ctx context.Context) error {
	l.mu.Lock()
	l.validUntil = time.Time{}
	l.mu.Unlock()
	return releaseScript.Run(ctx, l.client, []string{l.key}, l.id).Err()
}

// randomID is a node id for Options.NodeID when none is given.
func randomID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}
