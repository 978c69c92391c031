package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/redis/go-redis/v9"
)

// Idempotency keys in Redis, one string per claimed pair, shared by every
// node of the cluster:
//
//	idempotency:{hex digest of stream and key}   the claim's token, expiring
//	                                             after the window (PX)
//
// A claim is SET NX PX, so of two nodes claiming one pair within the window
// exactly one succeeds; a release deletes the key only if it still holds
// the releasing claim's token.

// releaseIdempotencyScript deletes KEYS[1] if it holds ARGV[1].
var releaseIdempotencyScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// Idempotency is r: the Redis broker keeps idempotency keys in Redis,
// for every node of the cluster.
func (r *Redis) Idempotency() IdempotencyStore { return r }

func (r *Redis) idempotencyKey(c IdempotencyClaim) string {
	id := idempotencyID(c.Stream, c.Key)
	return r.keys.idempotency(c.Stream, hex.EncodeToString(id[:]))
}

// ClaimIdempotencyKeys records each pair of claims for window, cluster-wide,
// in order and in one round trip, unless it was recorded less than window
// ago (on any node): claimed[i] is false for such a duplicate, including a
// repeat of an earlier pair of the same call. Redis expires the keys. On an
// error no pair stays claimed (as far as Redis can still be told).
func (r *Redis) ClaimIdempotencyKeys(ctx context.Context, claims []IdempotencyClaim, window time.Duration) ([]bool, error) {
	pipe := r.client.Pipeline()
	cmds := make([]*redis.BoolCmd, len(claims))
	for i := range claims {
		claims[i].token = newClaimToken()
		cmds[i] = pipe.SetNX(ctx, r.idempotencyKey(claims[i]), claims[i].token, window)
	}
	_, err := pipe.Exec(ctx)
	claimed := make([]bool, len(claims))
	for i, c := range cmds {
		claimed[i] = c.Err() == nil && c.Val()
		if !claimed[i] {
			claims[i].token = ""
		}
	}
	if err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		r.ReleaseIdempotencyKeys(rctx, claims)
		return nil, err
	}
	return claimed, nil
}

// ReleaseIdempotencyKeys deletes the pairs ClaimIdempotencyKeys recorded for
// claims, unless another claim holds them now (after the window passed).
// Unclaimed entries (duplicates) are ignored.
func (r *Redis) ReleaseIdempotencyKeys(ctx context.Context, claims []IdempotencyClaim) error {
	pipe := r.client.Pipeline()
	n := 0
	for _, c := range claims {
		if c.token == "" {
			continue
		}
		releaseIdempotencyScript.Eval(ctx, pipe, []string{r.idempotencyKey(c)}, c.token)
		n++
	}
	if n == 0 {
		return nil
	}
	_, err := pipe.Exec(ctx)
	return err
}

// newClaimToken returns 128 random bits in hex: no two claims share one.
func newClaimToken() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
