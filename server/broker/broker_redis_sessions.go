package broker

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
)

// Cached sessions are plain keys session:{sid} with the state and a TTL.
// A restore leaves an empty value behind (a tombstone, for SessionsTTL):
// the session being restored may still be live on some node, which has not
// noticed its client is gone, and its next cache write must not make the
// sid restorable again.

// cacheScript writes ARGV[1] for ARGV[2] ms unless the key is a
// tombstone; an empty ARGV[1] deletes the entry (again unless tombstoned).
var cacheScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == '' then return 0 end
if ARGV[1] == '' then return redis.call('DEL', KEYS[1]) end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// takeScript returns the state and leaves a tombstone for ARGV[1] ms.
var takeScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v or v == '' then return false end
redis.call('SET', KEYS[1], '', 'PX', ARGV[1])
return v
`)

// CacheSession stores a session's state for SessionsTTL; see Memory.
func (r *Redis) CacheSession(ctx context.Context, sid string, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	return cacheScript.Run(ctx, r.client, []string{r.keys.session(sid)}, data, r.opts.SessionsTTL.Milliseconds()).Err()
}

// RestoreSession takes a cached session's state; see Memory. The script
// makes the take atomic across nodes: of two restores of one sid, one
// wins.
func (r *Redis) RestoreSession(ctx context.Context, sid string) ([]byte, error) {
	data, err := takeScript.Run(ctx, r.client, []string{r.keys.session(sid)}, r.opts.SessionsTTL.Milliseconds()).Text()
	if errors.Is(err, redis.Nil) {
		return nil, ErrSessionNotFound
	}
	return []byte(data), err
}

// ReturnSession caches data under sid again, over the tombstone; see
// Memory.
func (r *Redis) ReturnSession(ctx context.Context, sid string, data []byte) error {
	if len(data) == 0 || r.opts.SessionsTTL <= 0 {
		return nil
	}
	return r.client.Set(ctx, r.keys.session(sid), data, r.opts.SessionsTTL).Err()
}

// ForgetSession drops a cached session, if any; see Memory.
func (r *Redis) ForgetSession(ctx context.Context, sid string) error {
	return cacheScript.Run(ctx, r.client, []string{r.keys.session(sid)}, "", 0).Err()
}
