package redisconn

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// SlotTag is the Redis Cluster hash tag of stream: every key of the stream
// and its sharded channel carry it between braces, so they hash to one
// slot of their own, and different streams spread over the cluster's
// masters.
//
// The tag is the stream's name itself when Redis can take it as one (not
// empty, no brace, since a tag ends at the first "}" and an empty one is
// ignored), so `CLUSTER KEYSLOT <stream>` tells an operator where a stream
// lives. Other names, and names starting with "#", get "#" and a digest of
// the name instead: a tag starting with "#" is always a digest, so no two
// streams share a tag.
func SlotTag(stream string) string {
	if stream != "" && !strings.ContainsAny(stream, "{}") && stream[0] != '#' {
		return stream
	}
	sum := sha256.Sum256([]byte(stream))
	return "#" + hex.EncodeToString(sum[:12])
}
