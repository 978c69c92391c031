package broker

import (
	"context"
	"encoding/hex"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Idempotency keys in the KV bucket cablehub_idempotency, one key per
// claimed pair (the hex digest of stream and key), holding the claim's
// token, shared by every node of the cluster. A claim is a KV Create, which
// JetStream checks in commit order also in a cluster, so of two nodes
// claiming one pair exactly one succeeds; a key older than the window (the
// bucket made with another window) is taken over by a revision-checked
// update. Keys age out with the bucket's MaxAge, the window it was made
// with; a release deletes the key only if it still holds the releasing
// claim's token.

const natsIdempotencyBucket = "cablehub_idempotency"

// Idempotency is b: the JetStream broker keeps idempotency keys in its KV
// bucket, for every node of the cluster.
func (b *NATS) Idempotency() IdempotencyStore { return b }

// idempotencyKV returns the bucket, made with window as its TTL when
// missing; see NATS.bucket.
func (b *NATS) idempotencyKV(ctx context.Context, window time.Duration) (jetstream.KeyValue, error) {
	return b.bucket(ctx, &b.idempotency, jetstream.KeyValueConfig{Bucket: natsIdempotencyBucket, TTL: window,
		Storage: jetstream.FileStorage, Replicas: b.replicas()})
}

// ClaimIdempotencyKeys records each pair of claims for window,
// cluster-wide, in order, unless it was recorded less than window ago (on
// any node): claimed[i] is false for such a duplicate, including a repeat
// of an earlier pair of the same call. On an error the pairs claimed so
// far are released.
func (b *NATS) ClaimIdempotencyKeys(ctx context.Context, claims []IdempotencyClaim, window time.Duration) ([]bool, error) {
	kv, err := b.idempotencyKV(ctx, window)
	if err != nil {
		return nil, err
	}
	claimed := make([]bool, len(claims))
	for i := range claims {
		claims[i].token = newClaimToken()
		claimed[i], err = b.claimOne(ctx, kv, natsIdempotencyKey(claims[i]), claims[i].token, window)
		if !claimed[i] {
			claims[i].token = ""
		}
		if err != nil {
			b.forgetBucket(&b.idempotency, err)
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), natsOpTimeout)
			defer cancel()
			b.ReleaseIdempotencyKeys(rctx, claims[:i])
			return nil, err
		}
	}
	return claimed, nil
}

// claimOne claims key for token, or reports false when another claim of
// the window holds it.
func (b *NATS) claimOne(ctx context.Context, kv jetstream.KeyValue, key, token string, window time.Duration) (bool, error) {
	for range natsSessionRetries {
		_, err := kv.Create(ctx, key, []byte(token))
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return false, err
		}
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // released or aged out meanwhile
		}
		if err != nil {
			return false, err
		}
		if b.now().Sub(e.Created()) < window {
			return false, nil
		}
		if _, err := kv.Update(ctx, key, []byte(token), e.Revision()); err == nil {
			return true, nil
		} else if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return false, err
		}
	}
	return false, nil
}

// ReleaseIdempotencyKeys deletes the pairs ClaimIdempotencyKeys recorded
// for claims, unless another claim holds them now. Unclaimed entries
// (duplicates) are ignored.
func (b *NATS) ReleaseIdempotencyKeys(ctx context.Context, claims []IdempotencyClaim) error {
	var kv jetstream.KeyValue
	for _, c := range claims {
		if c.token == "" {
			continue
		}
		if kv == nil {
			var err error
			if kv, err = b.idempotencyKV(ctx, time.Minute); err != nil {
				return err
			}
		}
		key := natsIdempotencyKey(c)
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if string(e.Value()) != c.token {
			continue
		}
		if err := kv.Delete(ctx, key, jetstream.LastRevision(e.Revision())); err != nil &&
			!errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return err
		}
	}
	return nil
}

func natsIdempotencyKey(c IdempotencyClaim) string {
	id := idempotencyID(c.Stream, c.Key)
	return hex.EncodeToString(id[:])
}
