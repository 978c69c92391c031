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

// History in Redis, and how it survives Redis losing its data.
//
// The epoch names one unbroken run of offsets. It lives in the key epoch
// and is read, or created when missing, by the same script run that stamps
// a publication: a Redis that lost its data (restarted without persistence,
// failed over to a replica that lagged, FLUSHALL) gets a new epoch at its
// next stamp, whichever node makes it, and every node uses the epoch that
// run returns. No node keeps an epoch of its own, so none can stamp under
// an epoch Redis no longer has, and two nodes never make two epochs.
//
// A stream's counter, counter:{stream}, is a hash holding the last offset
// and the epoch it counts in; its history, history:{stream}, belongs to
// the same epoch. Counter and history live and die with their epoch: a
// stamp that finds the counter missing or owned by another epoch deletes
// both and starts again at offset 1 under the current epoch, so offsets of
// a lost epoch are never continued or served under a new one (that covers
// the epoch key vanishing alone, e.g. evicted, as well as everything
// vanishing). Reads check the same ownership: history of a dead epoch is
// no history.
//
// What is not covered: a counter that vanishes on its own while its epoch
// stays (it expires after ten history TTLs without a publication, or is
// evicted) restarts at 1 in the same epoch, as the memory broker's
// forgotten streams do.

// epochLua defines current_epoch(candidate): the epoch in KEYS[1], set to
// candidate first when missing.
const epochLua = `
local function current_epoch(candidate)
  local e = redis.call('GET', KEYS[1])
  if e then return e end
  redis.call('SET', KEYS[1], candidate, 'NX')
  return candidate
end
`

// epochScript returns the current epoch, creating it from ARGV[1].
var epochScript = redis.NewScript(epochLua + `
return current_epoch(ARGV[1])
`)

// stampPublishScript stamps a publication and, unless ARGV[6] is empty,
// publishes it on channel ARGV[6], in one atomic step. KEYS: epoch,
// counter:{stream}, history:{stream}. ARGV: history limit, stored payload,
// now (unix ms), history TTL (ms), "1" for a transient publication (only
// published, never stamped), channel, the stream message's head
// (protocol.AppendStreamMessageHead), candidate epoch. The script completes
// the head as protocol.AppendStreamMessageTail does, byte for byte as long
// as epochs hold nothing that cjson and encoding/json escape differently
// (newEpoch's alphabet holds none). It returns {epoch, offset}, or 0 for a
// transient publication.
var stampPublishScript = redis.NewScript(epochLua + `
if ARGV[5] == '1' then
  redis.call('PUBLISH', ARGV[6], ARGV[7] .. '}')
  return 0
end
local epoch = current_epoch(ARGV[8])
local owner = redis.call('HGET', KEYS[2], 'epoch')
if owner ~= epoch then
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('HSET', KEYS[2], 'epoch', epoch)
end
local offset = redis.call('HINCRBY', KEYS[2], 'offset', 1)
redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[1], offset .. '-1', 'd', ARGV[2], 'at', ARGV[3])
if tonumber(ARGV[4]) > 0 then
  redis.call('PEXPIRE', KEYS[2], ARGV[4] * 10)
  redis.call('PEXPIRE', KEYS[3], ARGV[4])
end
if ARGV[6] ~= '' then
  redis.call('PUBLISH', ARGV[6], ARGV[7] .. ',"offset":' .. string.format('%d', offset) .. ',"epoch":' .. cjson.encode(epoch) .. '}')
end
return {epoch, offset}
`)

// Epoch returns the current epoch, creating it when Redis has none. It is
// a snapshot: the epoch changes when Redis loses its data.
func (r *Redis) Epoch(ctx context.Context) (string, error) {
	return epochScript.Run(ctx, r.client, []string{r.key("epoch")}, newEpoch()).Text()
}

// stampKeys are the keys stampPublishScript takes for stream.
func (r *Redis) stampKeys(stream string) []string {
	return []string{r.key("epoch"), r.key("counter", stream), r.key("history", stream)}
}

// stampArgs are stampPublishScript's arguments after the transient flag.
func (r *Redis) stampArgs(p *protocol.Publication, now int64, transient, channel string, head []byte) []any {
	payload, _ := json.Marshal(storedPublication{Data: p.Data, BroadcastType: p.BroadcastType})
	return []any{r.opts.HistoryLimit, payload, now, r.opts.HistoryTTL.Milliseconds(), transient, channel, head, newEpoch()}
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
// got its channel naming), each publication is stamped and published on
// its stream's channel in one script run, all runs pipelined in order, and
// ps is not used: offsets reach every node in order even while several
// nodes publish to one stream, and nothing is ever stamped but unpublished.
// A failed pipeline does not say which runs took effect, so taken is then
// 0. Each publication carries the epoch its run stamped it under, which
// changes mid-batch if Redis lost its data meanwhile. Otherwise stamping
// (here) and publishing (ps) are two steps, kept in order per stream on
// this node only.
func (r *Redis) StampAndPublish(ctx context.Context, pubs []protocol.Publication, ps Publisher) (taken int, err error) {
	if r.channel == nil {
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
		cmds[i] = stampPublishScript.Eval(ctx, pipe, r.stampKeys(p.Stream), r.stampArgs(p, now, transient, r.channel(p.Stream), head)...)
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

// Stamp gives p the next offset of its stream under the current epoch
// (created if Redis lost it), and appends it to the stream's history;
// StampAndPublish's first step when publishing is a second one.
func (r *Redis) Stamp(ctx context.Context, p *protocol.Publication) error {
	res, err := stampPublishScript.Run(ctx, r.client, r.stampKeys(p.Stream), r.stampArgs(p, r.now().UnixMilli(), "0", "", nil)...).Result()
	if err != nil {
		return err
	}
	return stamped(res, p)
}

// streamState is what one atomic read of Redis says about a stream: the
// current epoch ("" when Redis has none), the last offset of the stream
// under that epoch (0 when it has none) and history entries.
type streamState struct {
	epoch   string
	last    uint64
	entries []redis.XMessage
}

// readStream reads the epoch, the stream's counter and its history entries
// from start on, in one MULTI, so that no stamp that changes the epoch
// falls between them. A counter of another epoch reads as none, and its
// entries are dropped.
func (r *Redis) readStream(ctx context.Context, stream, start string) (streamState, error) {
	var epochCmd *redis.StringCmd
	var counterCmd *redis.SliceCmd
	var rangeCmd *redis.XMessageSliceCmd
	_, err := r.client.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		epochCmd = pipe.Get(ctx, r.key("epoch"))
		counterCmd = pipe.HMGet(ctx, r.key("counter", stream), "epoch", "offset")
		rangeCmd = pipe.XRange(ctx, r.key("history", stream), start, "+")
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return streamState{}, err
	}
	st := streamState{epoch: epochCmd.Val()}
	counter := counterCmd.Val()
	if owner, _ := counter[0].(string); st.epoch == "" || owner != st.epoch {
		return st, nil
	}
	raw, _ := counter[1].(string)
	st.last, _ = strconv.ParseUint(raw, 10, 64)
	st.entries = rangeCmd.Val()
	return st, nil
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
// epoch compared is the one in Redis now, so a client that saw an epoch
// Redis lost is refused (reject_history) and resyncs.
func (r *Redis) HistoryFrom(ctx context.Context, stream, epoch string, offset uint64) ([]protocol.Publication, error) {
	// The entry at offset itself is read too: after needs it to tell that
	// nothing after offset was trimmed.
	st, err := r.readStream(ctx, stream, fmt.Sprintf("%d-1", offset))
	if err != nil {
		return nil, err
	}
	if epoch != st.epoch {
		return nil, fmt.Errorf("%w: unknown epoch %s, current %q", ErrHistoryUnavailable, epoch, st.epoch)
	}
	if st.last == 0 {
		return nil, fmt.Errorf("%w: stream %q has no history", ErrHistoryUnavailable, stream)
	}
	if offset > st.last {
		return nil, fmt.Errorf("%w: offset %d is beyond the latest %d", ErrHistoryUnavailable, offset, st.last)
	}
	if offset == st.last {
		return nil, nil
	}
	return after(r.retained(st.entries, stream, st.epoch), offset)
}

// HistorySince returns the publications of stream made at or after since
// (unix seconds) under the current epoch; an unknown stream, or one whose
// history belongs to a lost epoch, has none.
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
	keys := []string{r.key("counter", p.Stream), r.key("history", p.Stream)}
	return voidScript.Run(ctx, r.client, keys, p.Epoch, p.Offset).Err()
}
