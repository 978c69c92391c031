package broker

import (
	"crypto/sha256"
	"encoding/binary"
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
