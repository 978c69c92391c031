package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cablehub/cablehub/server/protocol"
)

// History in Redis, and how offsets never go back within an epoch.
//
// A stream's counter, counter:{stream}, is a hash holding the stream's
// epoch, the last offset stamped in it and the run id of the Redis server
// process that made the epoch; its history, history:{stream}, belongs to
// that epoch. The epoch is per stream and lives and dies with the counter:
// a stamp that finds the counter missing, or made by another server
// process, deletes counter and history and starts a new epoch at offset 1.
// Each case is one in which the stream's offsets could go back:
//
//   - the counter expired (ten history TTLs after the stream's last
//     publication) or was evicted, or Redis lost everything (restart
//     without persistence, FLUSHALL): the counter is missing;
//   - Redis restarted from a snapshot (RDB or AOF), or a replica that may
//     lag was promoted (failover): the counter is there, but it may be
//     older than what clients have seen, and the server's run id (new for
//     every Redis process, read by the script itself with INFO) is not
//     the one it was made under.
//
// So every Redis restart and failover gives each stream a new epoch, also
// when nothing was lost: Redis cannot tell the two apart, and a client that
// resyncs once is better than one that silently drops the publications
// whose offsets it believes it has. Reads check the same ownership, so a
// client holding a position in an epoch that is no longer valid is refused
// (reject_history) even before the stream's next publication. No node
// keeps an epoch of its own, so none can stamp under an epoch Redis no
// longer has, and two nodes never make two epochs for one stream.

// runLua defines run_id(): the run id of the Redis server process running
// the script, which no snapshot or replica carries over.
const runLua = `
local function run_id()
  return string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
end
`

// stampPublishScript stamps a publication and, unless ARGV[6] is empty,
// publishes it on channel ARGV[6], in one atomic step. KEYS:
// counter:{stream}, history:{stream}. ARGV: history limit, stored payload,
// now (unix ms), history TTL (ms), "1" for a transient publication (only
// published, never stamped), channel, the stream message's head
// (protocol.AppendStreamMessageHead), candidate epoch. The script completes
// the head as protocol.AppendStreamMessageTail does, byte for byte as long
// as epochs hold nothing that cjson and encoding/json escape differently
// (randomEpoch's alphabet holds none). It returns {epoch, offset}, or 0 for a
// transient publication.
var stampPublishScript = redis.NewScript(runLua + `
local publish = 'PUBLISH'
if ARGV[9] == '1' then publish = 'SPUBLISH' end
if ARGV[5] == '1' then
  redis.call(publish, ARGV[6], ARGV[7] .. '}')
  return 0
end
local run = run_id()
local counter = redis.call('HMGET', KEYS[1], 'epoch', 'run')
local epoch = counter[1]
if not epoch or counter[2] ~= run then
  epoch = ARGV[8]
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'run', run)
end
local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[1], offset .. '-1', 'd', ARGV[2], 'at', ARGV[3])
if tonumber(ARGV[4]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[4] * 10)
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
if ARGV[6] ~= '' then
  redis.call(publish, ARGV[6], ARGV[7] .. ',"offset":' .. string.format('%d', offset) .. ',"epoch":' .. cjson.encode(epoch) .. '}')
end
return {epoch, offset}
`)

// readScript returns a stream's epoch, last offset and history entries
// from ARGV[1] on, or an empty reply when the stream has no epoch valid on
// this server process (see above). KEYS: counter:{stream},
// history:{stream}.
var readScript = redis.NewScript(runLua + `
local counter = redis.call('HMGET', KEYS[1], 'epoch', 'offset', 'run')
if not counter[1] or counter[3] ~= run_id() then return {} end
return {counter[1], counter[2], redis.call('XRANGE', KEYS[2], ARGV[1], '+')}
`)

// streamKeys are the keys of stream's counter and history.
func (r *Redis) streamKeys(stream string) []string {
	return []string{r.keys.streamKey(stream, "counter"), r.keys.streamKey(stream, "history")}
}

// stampArgs are stampPublishScript's arguments after the transient flag.
func (r *Redis) stampArgs(p *protocol.Publication, now int64, transient, channel string, head []byte) []any {
	payload, _ := json.Marshal(storedPublication{Data: p.Data, BroadcastType: p.BroadcastType})
	sharded := "0"
	if r.channels != nil && r.channels.Sharded {
		sharded = "1"
	}
	return []any{r.opts.HistoryLimit, payload, now, r.opts.HistoryTTL.Milliseconds(), transient, channel, head, newStreamEpoch(), sharded}
}

// stamped reads stampPublishScript's reply into p.
func stamped(res any, p *protocol.Publication) error {
	pair, ok := res.([]any)
	if !ok || len(pair) != 2 {
		return fmt.Errorf("stamp script returned %v", res)
	}
	epoch, _ := pair[0].(string)
	offset, _ := pair[1].(int64)
	if epoch == "" || offset <= 0 {
		return fmt.Errorf("stamp script returned %v", res)
	}
	p.Epoch, p.Offset = epoch, uint64(offset)
	return nil
}

// StampAndPublish stamps and publishes pubs in order; see
// node.Broker.StampAndPublish. When Redis is also the pub/sub (NewRedis
// got its channels), each publication is stamped and published on
// its stream's channel in one script run, all runs pipelined in order, and
// ps is not used: offsets reach every node in order even while several
// nodes publish to one stream, and nothing is ever stamped but unpublished.
// A failed pipeline does not say which runs took effect, so taken is then
// 0. Each publication carries the epoch its run stamped it under, which
// changes mid-batch if Redis restarted meanwhile. Otherwise stamping
// (here) and publishing (ps) are two steps, kept in order per stream on
// this node only.
func (r *Redis) StampAndPublish(ctx context.Context, pubs []protocol.Publication, ps Publisher) (taken int, err error) {
	if r.channels == nil {
		return r.seq.stampAndPublish(ctx, r, pubs, ps)
	}
	now := r.now().UnixMilli()
	pipe := r.client.Pipeline()
	cmds := make([]*redis.Cmd, len(pubs))
	for i := range pubs {
		p := &pubs[i]
		head := protocol.AppendStreamMessageHead(make([]byte, 0, protocol.StreamMessageSize(p)), p)
		transient := "0"
		if p.Transient {
			transient = "1"
		}
		cmds[i] = stampPublishScript.Eval(ctx, pipe, r.streamKeys(p.Stream), r.stampArgs(p, now, transient, r.channels.Name(p.Stream), head)...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, err
	}
	for i, c := range cmds {
		if pubs[i].Transient {
			continue
		}
		if err := stamped(c.Val(), &pubs[i]); err != nil {
			return 0, err
		}
	}
	return len(pubs), nil
}

// storedPublication is a history entry's payload.
type storedPublication struct {
	Data          string `json:"data"`
	BroadcastType string `json:"type,omitempty"`
}

// Stamp gives p the next offset of its stream in the stream's epoch (a new
// one when the stream had none valid), and appends it to the stream's
// history; StampAndPublish's first step when publishing is a second one.
func (r *Redis) Stamp(ctx context.Context, p *protocol.Publication) error {
	res, err := stampPublishScript.Run(ctx, r.client, r.streamKeys(p.Stream), r.stampArgs(p, r.now().UnixMilli(), "0", "", nil)...).Result()
	if err != nil {
		return err
	}
	return stamped(res, p)
}

// streamState is what one atomic read of Redis says about a stream: its
// epoch ("" when it has none valid on the Redis process), the last offset
// stamped in it and history entries.
type streamState struct {
	epoch   string
	last    uint64
	entries []redis.XMessage
}

// readStream reads the stream's epoch, last offset and history entries
// from start on, in one script run, so that no stamp falls between them.
func (r *Redis) readStream(ctx context.Context, stream, start string) (streamState, error) {
	res, err := readScript.Run(ctx, r.client, r.streamKeys(stream), start).Slice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return streamState{}, err
	}
	if len(res) != 3 {
		return streamState{}, nil
	}
	st := streamState{}
	st.epoch, _ = res[0].(string)
	raw, _ := res[1].(string)
	st.last, _ = strconv.ParseUint(raw, 10, 64)
	entries, _ := res[2].([]any)
	for _, e := range entries {
		if m, ok := xmessage(e); ok {
			st.entries = append(st.entries, m)
		}
	}
	return st, nil
}

// xmessage reads one entry of an XRANGE reply returned by a script:
// {id, {field, value, ...}}.
func xmessage(v any) (redis.XMessage, bool) {
	pair, ok := v.([]any)
	if !ok || len(pair) != 2 {
		return redis.XMessage{}, false
	}
	id, _ := pair[0].(string)
	fields, _ := pair[1].([]any)
	m := redis.XMessage{ID: id, Values: make(map[string]any, len(fields)/2)}
	for i := 0; i+1 < len(fields); i += 2 {
		k, _ := fields[i].(string)
		m.Values[k] = fields[i+1]
	}
	return m, id != ""
}

// retained turns history entries of stream into publications within the
// TTL, oldest first.
func (r *Redis) retained(msgs []redis.XMessage, stream, epoch string) []historyEntry {
	cutoff := int64(0)
	if r.opts.HistoryTTL > 0 {
		cutoff = r.now().Add(-r.opts.HistoryTTL).UnixMilli()
	}
	out := make([]historyEntry, 0, len(msgs))
	for _, m := range msgs {
		raw, _ := m.Values["at"].(string)
		at, _ := strconv.ParseInt(raw, 10, 64)
		if at <= cutoff {
			continue
		}
		var sp storedPublication
		payload, _ := m.Values["d"].(string)
		if err := json.Unmarshal([]byte(payload), &sp); err != nil {
			continue
		}
		idPart, _, _ := strings.Cut(m.ID, "-")
		offset, _ := strconv.ParseUint(idPart, 10, 64)
		out = append(out, historyEntry{
			at:  time.UnixMilli(at),
			pub: protocol.Publication{Stream: stream, Data: sp.Data, BroadcastType: sp.BroadcastType, Epoch: epoch, Offset: offset},
		})
	}
	return out
}

// HistoryFrom returns the publications of stream after offset, failing
// with ErrHistoryUnavailable in the same cases as Memory.HistoryFrom. The
// epoch compared is the stream's valid one in Redis now, so a client that
// saw an epoch Redis lost, or one made before Redis restarted or failed
// over, is refused (reject_history) and resyncs.
func (r *Redis) HistoryFrom(ctx context.Context, stream, epoch string, offset uint64) ([]protocol.Publication, error) {
	// The entry at offset itself is read too: after needs it to tell that
	// nothing after offset was trimmed.
	st, err := r.readStream(ctx, stream, fmt.Sprintf("%d-1", offset))
	if err != nil {
		return nil, err
	}
	if st.epoch == "" {
		return nil, fmt.Errorf("%w: stream %q has no history", ErrHistoryUnavailable, stream)
	}
	if epoch != st.epoch {
		return nil, fmt.Errorf("%w: unknown epoch %s, current %q", ErrHistoryUnavailable, epoch, st.epoch)
	}
	if offset > st.last {
		return nil, fmt.Errorf("%w: offset %d is beyond the latest %d", ErrHistoryUnavailable, offset, st.last)
	}
	if offset == st.last {
		return nil, nil
	}
	return after(r.retained(st.entries, stream, st.epoch), offset)
}

// Tail returns the stream's valid epoch in Redis and its counter, read
// without its entries (XRANGE from "+" holds none); "" and 0 when Redis
// knows no valid epoch for it.
func (r *Redis) Tail(ctx context.Context, stream string) (string, uint64, error) {
	st, err := r.readStream(ctx, stream, "+")
	if err != nil || st.epoch == "" {
		return "", 0, err
	}
	return st.epoch, st.last, nil
}

// HistorySince returns the publications of stream made at or after since
// (unix seconds) in its current epoch; an unknown stream, or one whose
// epoch is no longer valid, has none.
func (r *Redis) HistorySince(ctx context.Context, stream string, since int64) ([]protocol.Publication, error) {
	st, err := r.readStream(ctx, stream, "-")
	if err != nil {
		return nil, err
	}
	var out []protocol.Publication
	for _, e := range r.retained(st.entries, stream, st.epoch) {
		if e.at.Unix() >= since {
			out = append(out, e.pub)
		}
	}
	return out, nil
}

// voidScript deletes the history entry of offset ARGV[2] if the stream's
// counter still counts in epoch ARGV[1]. KEYS: counter:{stream},
// history:{stream}.
var voidScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return 0 end
return redis.call('XDEL', KEYS[2], ARGV[2] .. '-1')
`)

// Void takes back a stamped publication whose publish failed; see Memory.
// Entries leave a Redis stream's middle only this way, so a hole between
// retained offsets is always a voided publication, never a lost one.
func (r *Redis) Void(ctx context.Context, p *protocol.Publication) error {
	return voidScript.Run(ctx, r.client, r.streamKeys(p.Stream), p.Epoch, p.Offset).Err()
}
