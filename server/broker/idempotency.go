package broker

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// IdempotencyStore remembers the idempotency keys of publications a node
// accepted, per stream, so that a retry within the window is not stored or
// delivered twice. A broker that keeps them returns itself from its
// Idempotency method: Memory keeps them in this process, Redis in Redis
// and NATS in a JetStream KV bucket, both for the whole cluster. None
// keeps none; the node then uses an IdempotencyMemory of its own.
//
// Keys are claimed before publishing, not recorded after: only a claim
// that succeeds atomically (Redis SET NX, a KV Create) stops two nodes
// taking the same retry at once. A claim whose publication then fails is
// released. All methods are safe for concurrent use.
type IdempotencyStore interface {
	// ClaimIdempotencyKeys records each (stream, key) pair of claims for
	// window, in order, unless it was recorded less than window ago:
	// claimed[i] is false for such a duplicate, including a repeat of an
	// earlier pair of the same call. On an error nothing stays claimed.
	ClaimIdempotencyKeys(ctx context.Context, claims []IdempotencyClaim, window time.Duration) (claimed []bool, err error)
	// ReleaseIdempotencyKeys forgets pairs that ClaimIdempotencyKeys
	// recorded for claims, so that they can be claimed at once again,
	// unless they have been claimed anew since (after their window).
	ReleaseIdempotencyKeys(ctx context.Context, claims []IdempotencyClaim) error
}

var (
	_ IdempotencyStore = (*Memory)(nil)
	_ IdempotencyStore = (*Redis)(nil)
	_ IdempotencyStore = (*NATS)(nil)
	_ IdempotencyStore = (*IdempotencyMemory)(nil)
)

// DefaultIdempotencyMaxKeys bounds the idempotency keys an in-process store
// remembers: about 10 MB at most, whatever the streams' and keys' lengths
// (keys are kept as fixed-size digests). When more keys are claimed within
// a window, the oldest are forgotten first, and a retry of those is
// delivered again.
const DefaultIdempotencyMaxKeys = 100_000

// IdempotencyClaim is one publication's (stream, idempotency key) pair,
// claimed by ClaimIdempotencyKeys and released, when its publication
// failed, by ReleaseIdempotencyKeys.
type IdempotencyClaim struct {
	Stream string
	Key    string
	// token identifies the claim that recorded the pair, set by a
	// successful claim: releasing it then cannot drop a later claim of the
	// same pair (after the window passed) made by someone else.
	token string
}

// idempotencyID is a fixed-size digest of a (stream, key) pair: memory per
// remembered key does not depend on the stream name's length, and the
// length prefix keeps ("a:b", "c") and ("a", "b:c") apart.
func idempotencyID(stream, key string) [16]byte {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(stream)))
	h.Write(n[:])
	h.Write([]byte(stream))
	h.Write([]byte(key))
	var id [16]byte
	copy(id[:], h.Sum(nil))
	return id
}
