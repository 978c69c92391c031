package node

import "time"

// maxKickBytes bounds what kicks remembers: the identifiers of the remote
// disconnects of one sessions TTL, each charged its length plus
// kickOverhead.
const (
	maxKickBytes = 16 << 20
	kickOverhead = 64
)

// kicks remembers the remote disconnects (Disconnect) this node carried
// out within the sessions TTL, by identifiers, so that no session
// identified before a disconnect of its identifiers is restored after it.
// The sessions a disconnect closes are forgotten by the broker as they end
// (see Session.revoked), but a session that ended just before the command
// arrived is cached already, under a sid no node indexes by identifiers:
// its restore is refused here instead, on whichever node it is attempted,
// since every node receives every disconnect. Remembering a disconnect for
// the TTL is enough: a state cached before it expires within the TTL.
//
// Times are wall-clock unix nanoseconds, compared with the time a
// session's identity was established (cachedState.IdentifiedAt), which
// may have been taken on another node. kicks is guarded by Node.mu.
type kicks struct {
	ttl time.Duration
	// latest holds each identifiers' latest disconnect.
	latest map[string]int64
	// queue holds the disconnects in the order they were made (so, oldest
	// first, by time), for expiry and the bound.
	queue []kick
	bytes int
	// floor is the latest disconnect dropped to stay within maxKickBytes:
	// identities established at or before it are refused whatever their
	// identifiers, failing closed rather than forgetting a disconnect.
	floor int64
}

type kick struct {
	identifiers string
	at          int64
}

func newKicks(ttl time.Duration) kicks {
	return kicks{ttl: ttl, latest: map[string]int64{}}
}

// add records a disconnect of identifiers at now. Nothing is recorded
// when sessions are never restored (no TTL).
func (k *kicks) add(identifiers string, now time.Time) {
	if k.ttl <= 0 || identifiers == "" {
		return
	}
	k.expire(now)
	at := now.UnixNano()
	k.latest[identifiers] = at
	k.queue = append(k.queue, kick{identifiers: identifiers, at: at})
	k.bytes += len(identifiers) + kickOverhead
	for k.bytes > maxKickBytes {
		k.floor = max(k.floor, k.queue[0].at)
		k.drop()
	}
}

// revoked reports whether an identity with identifiers established at
// identifiedAt (unix nanoseconds) was disconnected since.
func (k *kicks) revoked(identifiers string, identifiedAt int64, now time.Time) bool {
	k.expire(now)
	if identifiedAt <= k.floor {
		return true
	}
	at, ok := k.latest[identifiers]
	return ok && identifiedAt <= at
}

// expire drops the disconnects older than the TTL.
func (k *kicks) expire(now time.Time) {
	oldest := now.Add(-k.ttl).UnixNano()
	for len(k.queue) > 0 && k.queue[0].at < oldest {
		k.drop()
	}
	if len(k.queue) == 0 {
		k.queue = nil // let the backing array go
	}
}

// drop removes the oldest disconnect.
func (k *kicks) drop() {
	first := k.queue[0]
	k.queue[0] = kick{}
	k.queue = k.queue[1:]
	k.bytes -= len(first.identifiers) + kickOverhead
	if k.latest[first.identifiers] == first.at {
		delete(k.latest, first.identifiers)
	}
}
