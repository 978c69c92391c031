package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cablehub/cablehub/server/redisconn"
)

// Redis is the cluster broker: history, presence and the session cache live
// in Redis, so every node sees one view. Semantics match Memory.
//
// Keys (all under the prefix; redisKeys gives their layout, which on a
// Redis Cluster puts each stream's keys in a slot of the stream's own):
//
//	counter                    hash: the stream's epoch, the last offset stamped
//	                           and the run id of the Redis process that made
//	                           the epoch; see broker_redis_history.go
//	history                    Redis stream; entry IDs are "<offset>-1"
//	presence:streams           set of streams with presence
//	presence expiry            zset sid -> expiry (unix ms); live sessions are
//	                           refreshed by their node, dropped ones are not
//	presence sid               hash sid -> presence id
//	presence ids               hash id -> number of sessions
//	presence info              hash id -> info JSON
//	session:{sid}              cached session state, with a TTL
//
// Joins, leaves and expiry run as Lua scripts, so exactly one node sees a
// presence id appear or go, and only that node emits the event.
type Redis struct {
	client redis.UniversalClient
	keys   redisKeys
	opts   MemoryOptions
	now    func() time.Time
	// channels name a stream's channel on the Redis pub/sub when Redis is
	// also the pub/sub; nil when the pub/sub is another.
	channels *RedisChannels
	seq      sequencer

	// live holds the sessions of this node with presence, by stream, so
	// their entries are refreshed while their connections live.
	mu   sync.Mutex
	live map[string]map[string]struct{} // sid -> streams
}

// RedisChannels are the channels of the Redis pub/sub on the broker's own
// Redis: StampAndPublish publishes a stream's publication on its channel
// itself, in the step that stamps it.
type RedisChannels struct {
	// Name is the channel of a stream (pubsub.RedisNames.Channel).
	Name func(stream string) string
	// Sharded channels are published with SPUBLISH; each must hash to the
	// slot of its stream's keys (redisconn.SlotTag), on a Redis Cluster.
	Sharded bool
}

// NewRedis returns a broker on client with keys under prefix (e.g.
// "cablehub:"), laid out for a Redis Cluster (sharded) when client is a
// cluster client (see redisKeys). channels, when the node's pub/sub is
// the Redis pub/sub on the same Redis, are that pub/sub's; nil means the
// pub/sub is another.
func NewRedis(client redis.UniversalClient, prefix string, opts MemoryOptions, channels *RedisChannels) *Redis {
	if opts.HistoryLimit <= 0 {
		opts.HistoryLimit = DefaultHistoryLimit
	}
	keys := redisKeys{prefix: prefix, sharded: redisconn.IsCluster(client)}
	return &Redis{client: client, keys: keys, opts: opts, now: time.Now, channels: channels, live: map[string]map[string]struct{}{}}
}

// Describe names the broker and its settings for the startup log.
func (r *Redis) Describe() string {
	return fmt.Sprintf("Using Redis broker at %s (history limit: %d, history ttl: %s, sessions ttl: %s, presence ttl: %s)",
		redisconn.Describe(r.client), r.opts.HistoryLimit, seconds(r.opts.HistoryTTL), seconds(r.opts.SessionsTTL), seconds(r.opts.PresenceTTL))
}

// Run refreshes this node's live presence entries and expires dropped ones
// (cluster-wide, once each) until ctx is done.
func (r *Redis) Run(ctx context.Context, onLeft func([]PresenceLeft)) {
	tick := max(50*time.Millisecond, min(r.opts.PresenceTTL/5, time.Second))
	t := time.NewTicker(tick)
	defer t.Stop()
	lastRefresh := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if r.now().Sub(lastRefresh) >= r.opts.PresenceTTL/2 {
			if err := r.refresh(ctx); err == nil {
				lastRefresh = r.now()
			}
		}
		if left, err := r.expire(ctx); err == nil && len(left) > 0 && onLeft != nil {
			onLeft(left)
		}
	}
}

// --- presence ---

// SupportsPresence reports true.
func (r *Redis) SupportsPresence() bool { return true }

// presenceKeys are the keys of stream's presence scripts: its four
// presence keys, then the index of streams with presence unless the
// layout is sharded, where the index lives in another slot and is kept
// outside the scripts (indexPresence, unindexPresence).
func (r *Redis) presenceKeys(stream string) []string {
	keys := []string{
		r.keys.presence(stream, "expiry"),
		r.keys.presence(stream, "sid"),
		r.keys.presence(stream, "ids"),
		r.keys.presence(stream, "info"),
	}
	if !r.keys.sharded {
		keys = append(keys, r.keys.presenceIndex())
	}
	return keys
}

// joinScript: ARGV = sid, id, info ("" for none), expiry ms, stream, the
// most ids the stream may have (0: no limit). Returns -1 for a presence id
// mismatch, -2 when the id is new and the stream is full, 1 when the id is
// new, else 0. Counting and adding in one script is what holds the limit
// across nodes: two joins racing for the last place cannot both take it.
var joinScript = redis.NewScript(`
local prev = redis.call('HGET', KEYS[2], ARGV[1])
if prev and prev ~= ARGV[2] then return -1 end
local most = tonumber(ARGV[6])
if not prev and most > 0 and redis.call('HEXISTS', KEYS[3], ARGV[2]) == 0 and redis.call('HLEN', KEYS[3]) >= most then
  return -2
end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
if KEYS[5] then redis.call('SADD', KEYS[5], ARGV[5]) end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[4], ARGV[2], ARGV[3]) else redis.call('HDEL', KEYS[4], ARGV[2]) end
if prev then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local n = redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
if n == 1 then return 1 end
return 0
`)

// leaveLua removes one sid (ARGV[1]) and returns {id, left} or false;
// unindex drops the stream (ARGV[2]) from the index when it has no
// presence left and reports whether it has none.
const leaveLua = `
local function leave(sid)
  local id = redis.call('HGET', KEYS[2], sid)
  if not id then return false end
  redis.call('HDEL', KEYS[2], sid)
  redis.call('ZREM', KEYS[1], sid)
  local n = redis.call('HINCRBY', KEYS[3], id, -1)
  if n <= 0 then
    redis.call('HDEL', KEYS[3], id)
    redis.call('HDEL', KEYS[4], id)
    return {id, 1}
  end
  return {id, 0}
end
local function unindex()
  if redis.call('ZCARD', KEYS[1]) > 0 then return 0 end
  if KEYS[5] then redis.call('SREM', KEYS[5], ARGV[2]) end
  return 1
end
`

// leaveScript removes sid ARGV[1] from stream ARGV[2] and returns {id,
// left, empty}, id "" when the sid had no presence there.
var leaveScript = redis.NewScript(leaveLua + `
local r = leave(ARGV[1]) or {'', 0}
return {r[1], r[2], unindex()}
`)

// expireScript removes every sid whose expiry (ARGV[1]) has passed and
// returns {ids that left, empty}; see unindex.
var expireScript = redis.NewScript(leaveLua + `
local gone = {}
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])) do
  local r = leave(sid)
  if r and r[2] == 1 then table.insert(gone, r[1]) end
end
return {gone, unindex()}
`)

// PresenceJoin records sid's presence on stream as id; see Memory.
func (r *Redis) PresenceJoin(ctx context.Context, stream, sid, id string, info json.RawMessage) (bool, error) {
	expiry := r.now().Add(r.opts.PresenceTTL).UnixMilli()
	res, err := joinScript.Run(ctx, r.client, r.presenceKeys(stream), sid, id, string(info), expiry, stream, r.opts.PresenceMaxMembers).Int()
	if err != nil {
		return false, err
	}
	switch res {
	case -1:
		return false, ErrPresenceMismatch
	case -2:
		return false, ErrPresenceFull
	}
	if err := r.indexPresence(ctx, stream); err != nil {
		return false, err
	}
	r.mu.Lock()
	streams, ok := r.live[sid]
	if !ok {
		streams = map[string]struct{}{}
		r.live[sid] = streams
	}
	streams[stream] = struct{}{}
	r.mu.Unlock()
	return res == 1, nil
}

// PresenceLeave removes sid's presence from stream at once; see Memory.
func (r *Redis) PresenceLeave(ctx context.Context, stream, sid string) (string, bool, error) {
	r.mu.Lock()
	if streams, ok := r.live[sid]; ok {
		delete(streams, stream)
		if len(streams) == 0 {
			delete(r.live, sid)
		}
	}
	r.mu.Unlock()
	res, err := leaveScript.Run(ctx, r.client, r.presenceKeys(stream), sid, stream).Slice()
	if err != nil {
		return "", false, err
	}
	if len(res) != 3 {
		return "", false, fmt.Errorf("presence leave script returned %v", res)
	}
	id, _ := res[0].(string)
	left, _ := res[1].(int64)
	if empty, _ := res[2].(int64); empty == 1 {
		if err := r.unindexPresence(ctx, stream); err != nil {
			return id, left == 1, err
		}
	}
	return id, left == 1, nil
}

// PresenceDisconnect stops refreshing sid's presence: it expires
// PresenceTTL from now unless refreshed by a join.
func (r *Redis) PresenceDisconnect(ctx context.Context, sid string) error {
	r.mu.Lock()
	streams := r.live[sid]
	delete(r.live, sid)
	r.mu.Unlock()
	expiry := r.now().Add(r.opts.PresenceTTL).UnixMilli()
	pipe := r.client.Pipeline()
	for stream := range streams {
		pipe.ZAddXX(ctx, r.keys.presence(stream, "expiry"), redis.Z{Score: float64(expiry), Member: sid})
	}
	_, err := pipe.Exec(ctx)
	return err
}

// refresh pushes the expiry of this node's live sessions forward.
func (r *Redis) refresh(ctx context.Context) error {
	r.mu.Lock()
	type entry struct{ sid, stream string }
	var entries []entry
	for sid, streams := range r.live {
		for stream := range streams {
			entries = append(entries, entry{sid, stream})
		}
	}
	r.mu.Unlock()
	if len(entries) == 0 {
		return nil
	}
	expiry := float64(r.now().Add(r.opts.PresenceTTL).UnixMilli())
	pipe := r.client.Pipeline()
	for _, e := range entries {
		pipe.ZAddXX(ctx, r.keys.presence(e.stream, "expiry"), redis.Z{Score: expiry, Member: e.sid})
		if r.keys.sharded {
			// Heals an index entry a racing unindexPresence took away.
			pipe.SAdd(ctx, r.keys.presenceIndex(), e.stream)
		}
	}
	_, err := pipe.Exec(ctx)
	return err
}

// expire removes expired presence on every stream; each id that goes is
// reported by exactly one node.
func (r *Redis) expire(ctx context.Context) ([]PresenceLeft, error) {
	streams, err := r.client.SMembers(ctx, r.keys.presenceIndex()).Result()
	if err != nil {
		return nil, err
	}
	now := r.now().UnixMilli()
	var left []PresenceLeft
	for _, stream := range streams {
		res, err := expireScript.Run(ctx, r.client, r.presenceKeys(stream), now, stream).Slice()
		if err != nil {
			return left, err
		}
		if len(res) != 2 {
			return left, fmt.Errorf("presence expiry script returned %v", res)
		}
		ids, _ := res[0].([]any)
		for _, id := range ids {
			if s, ok := id.(string); ok {
				left = append(left, PresenceLeft{Stream: stream, ID: s})
			}
		}
		if empty, _ := res[1].(int64); empty == 1 {
			if err := r.unindexPresence(ctx, stream); err != nil {
				return left, err
			}
		}
	}
	return left, nil
}

// indexPresence adds stream to the index of streams with presence when
// the layout keeps the index outside the presence scripts (sharded); the
// join script does it otherwise.
func (r *Redis) indexPresence(ctx context.Context, stream string) error {
	if !r.keys.sharded {
		return nil
	}
	return r.client.SAdd(ctx, r.keys.presenceIndex(), stream).Err()
}

// unindexPresence drops stream, found without presence by a script, from
// the index when the layout keeps the index outside the scripts. A join
// may have come in between: it adds its entry before it indexes the
// stream, so reading the entries after removing the stream and adding it
// back when there are some never leaves a stream with presence unindexed
// (the next refresh would heal it anyway).
func (r *Redis) unindexPresence(ctx context.Context, stream string) error {
	if !r.keys.sharded {
		return nil
	}
	if err := r.client.SRem(ctx, r.keys.presenceIndex(), stream).Err(); err != nil {
		return err
	}
	n, err := r.client.ZCard(ctx, r.keys.presence(stream, "expiry")).Result()
	if err != nil || n == 0 {
		return err
	}
	return r.client.SAdd(ctx, r.keys.presenceIndex(), stream).Err()
}

// PresenceInfo returns the records of stream sorted by id.
func (r *Redis) PresenceInfo(ctx context.Context, stream string) (*PresenceInfo, error) {
	pipe := r.client.Pipeline()
	idsCmd := pipe.HGetAll(ctx, r.keys.presence(stream, "ids"))
	infoCmd := pipe.HGetAll(ctx, r.keys.presence(stream, "info"))
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	counts := idsCmd.Val()
	ids := make([]string, 0, len(counts))
	sessions := 0
	for id, n := range counts {
		ids = append(ids, id)
		if k, err := strconv.Atoi(n); err == nil && k > 0 {
			sessions += k
		}
	}
	infos := infoCmd.Val()
	sort.Strings(ids)
	info := &PresenceInfo{Total: len(ids), Sessions: sessions}
	for _, id := range ids {
		rec := PresenceRecord{ID: id}
		if v, ok := infos[id]; ok && v != "" {
			rec.Info = json.RawMessage(v)
		}
		info.Records = append(info.Records, rec)
	}
	return info, nil
}

// PresenceStreams lists the streams whose names start with prefix that
// have presence, in no particular order, at most limit of them (a SCAN of
// the set of streams with presence, so it does not block Redis).
func (r *Redis) PresenceStreams(ctx context.Context, prefix string, limit int) ([]string, error) {
	var out []string
	var cursor uint64
	match := globEscape(prefix) + "*"
	for {
		keys, next, err := r.client.SScan(ctx, r.keys.presenceIndex(), cursor, match, 1000).Result()
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			if len(out) >= limit {
				return out, nil
			}
			out = append(out, k)
		}
		if cursor = next; cursor == 0 {
			return out, nil
		}
	}
}

// globEscape escapes s for a Redis MATCH pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[]\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}
