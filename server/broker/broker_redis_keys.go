package broker

import "github.com/cablehub/cablehub/server/redisconn"

// redisKeys names the Redis broker's keys, in one of two layouts.
//
// On a single Redis (or one behind Sentinel) every key sits under the
// prefix by kind, then stream:
//
//	counter:<stream>  history:<stream>  presence:<stream>:expiry|sid|ids|info
//	idempotency:<digest>  presence:streams  session:<sid>
//
// On a Redis Cluster (sharded) a stream's keys carry the stream's own hash
// tag (redisconn.SlotTag) so that they share one slot, which is what lets a
// script stamp, store and publish a stream's publication in one step, and
// different streams land on different masters:
//
//	{<tag>}:counter  {<tag>}:history  {<tag>}:presence:expiry|sid|ids|info
//	{<tag>}:idempotency:<digest>
//
// while the index of streams with presence and the session cache hash
// whole (no tag): the index is one key, sessions spread by their id. A
// script touches one stream's keys only, and the index is kept beside
// them (see Redis.indexPresence), never in the same script.
type redisKeys struct {
	prefix  string
	sharded bool
}

// streamKey is the key of stream's kind ("counter", "history").
func (k redisKeys) streamKey(stream, kind string) string {
	if k.sharded {
		return k.prefix + "{" + redisconn.SlotTag(stream) + "}:" + kind
	}
	return k.prefix + kind + ":" + stream
}

// presence is the key of stream's presence part (expiry, sid, ids, info).
func (k redisKeys) presence(stream, part string) string {
	if k.sharded {
		return k.prefix + "{" + redisconn.SlotTag(stream) + "}:presence:" + part
	}
	return k.prefix + "presence:" + stream + ":" + part
}

// idempotency is the key of a claim's digest on stream.
func (k redisKeys) idempotency(stream, digest string) string {
	if k.sharded {
		return k.prefix + "{" + redisconn.SlotTag(stream) + "}:idempotency:" + digest
	}
	return k.prefix + "idempotency:" + digest
}

// presenceIndex is the set of streams with presence.
func (k redisKeys) presenceIndex() string { return k.prefix + "presence:streams" }

// session is the key of a cached session.
func (k redisKeys) session(sid string) string { return k.prefix + "session:" + sid }
