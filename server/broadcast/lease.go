package broadcast

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Lease elects the one node of a cluster that takes a fan-out broadcast
// input (Redis pub/sub, where every subscriber gets every message). AnyCable
// delivers such broadcasts on each node to that node's clients only;
// Cablehub stamps every broadcast through its broker and publishes it to
// the whole cluster, so if every node took it, each broadcast would be
// stamped and delivered once per node. The lease is a Redis key holding its
// owner's id with a TTL, taken with SET NX and renewed by its owner: at
// most one node holds it at any time, and when the holder dies another
// takes over within the TTL (broadcasts in that window are lost, as Redis
// pub/sub loses messages while nothing listens).
type Lease struct {
	client redis.Cmdable
	key    string
	owner  string
	ttl    time.Duration
	log    *slog.Logger
	// until is when, by the local clock, this node's hold surely ends
	// (unix nanos; 0: not held).
	until atomic.Int64
}

// renewScript extends the lease only for its owner.
var renewScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end return 0`)

// releaseScript deletes the lease only for its owner.
var releaseScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// NewLease returns a lease on key for owner (a node id, unique in the
// cluster), held for ttl at a time.
func NewLease(client redis.Cmdable, key, owner string, ttl time.Duration, log *slog.Logger) *Lease {
	return &Lease{client: client, key: key, owner: owner, ttl: ttl, log: log}
}

// Held reports whether this node holds the lease now. It errs on the safe
// side: the local hold ends a third of the TTL before Redis expires the key.
func (l *Lease) Held() bool {
	return time.Now().UnixNano() < l.until.Load()
}

// Run takes and renews the lease every third of its TTL until ctx ends,
// then releases it so another node takes over at once.
func (l *Lease) Run(ctx context.Context) {
	tick := time.NewTicker(l.ttl / 3)
	defer tick.Stop()
	for {
		l.try(ctx)
		select {
		case <-ctx.Done():
			l.until.Store(0)
			rctx, cancel := context.WithTimeout(context.Background(), time.Second)
			releaseScript.Run(rctx, l.client, []string{l.key}, l.owner)
			cancel()
			return
		case <-tick.C:
		}
	}
}

// try takes or renews the lease once.
func (l *Lease) try(ctx context.Context) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, l.ttl/3)
	defer cancel()
	held := l.Held()
	var ok bool
	if held {
		n, err := renewScript.Run(ctx, l.client, []string{l.key}, l.owner, l.ttl.Milliseconds()).Int()
		ok = err == nil && n == 1
	}
	if !ok {
		taken, err := l.client.SetNX(ctx, l.key, l.owner, l.ttl).Result()
		ok = err == nil && taken
	}
	switch {
	case ok:
		l.until.Store(start.Add(l.ttl * 2 / 3).UnixNano())
		if !held {
			l.log.Info("this node takes the broadcasts of fan-out adapters", "lease", l.key)
		}
	case held:
		l.until.Store(0)
		l.log.Info("another node takes the broadcasts of fan-out adapters now", "lease", l.key)
	}
}
