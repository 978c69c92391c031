package broadcast

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// RedisXOptions configure the redisx adapter: AnyCable's Redis Streams
// broadcaster, where publishers XADD entries with a payload field to a
// stream that a consumer group of every node reads.
type RedisXOptions struct {
	// Stream is --redisx_stream, the stream key publishers XADD to.
	Stream string
	// Group is --redisx_group, the consumer group every node joins.
	Group string
	// Block is --redisx_read_block_milliseconds: how long one XREADGROUP
	// waits for new entries, how often pending entries are reclaimed, and
	// how long an entry must have been idle to be reclaimed from another
	// consumer (a node that died, or one that could not deliver it).
	Block time.Duration
	// MaxDeliveries is how many times an entry is tried while the broker
	// or pub/sub is unavailable before it is logged and dropped, so an
	// entry that can never be delivered does not come back forever.
	MaxDeliveries int64
	// Consumer names this process in the group; empty picks a fresh one
	// (the host name and a random suffix).
	Consumer string
}

// DefaultRedisXOptions are AnyCable's defaults (stream __anycable__, group
// bx, 2 s block), and 10 deliveries.
func DefaultRedisXOptions() RedisXOptions {
	return RedisXOptions{Stream: "__anycable__", Group: "bx", Block: 2 * time.Second, MaxDeliveries: 10}
}

// Tuning of the redisx loop.
const (
	// redisxReadCount bounds one XREADGROUP: a batch must be handled well
	// within Block, or another node reclaims its tail while it is still
	// being delivered here.
	redisxReadCount = 64
	// redisxPruneIdle is how long a consumer with nothing pending must have
	// been silent before it is removed from the group: processes that died
	// leave their consumers behind, one per start.
	redisxPruneIdle = time.Hour
	// redisxPruneEvery is how often such consumers are looked for.
	redisxPruneEvery = time.Minute
	// redisxMaxBackoff caps the wait between attempts while Redis is down.
	redisxMaxBackoff = 5 * time.Second
)

// errSinkUnavailable says a batch stopped at an entry the broker or
// pub/sub could not take; Run backs off before reading more.
var errSinkUnavailable = errors.New("the broker or pub/sub is unavailable")

// RedisX is the redisx adapter. Each entry is handled by one node of the
// cluster (at least once: an entry handled by a node that dies before
// acknowledging it is handled again by another). Handled entries are
// acknowledged and deleted; entries that cannot be delivered because the
// broker or pub/sub is down stay pending and are retried up to
// MaxDeliveries times; malformed ones are logged and dropped.
type RedisX struct {
	client redis.UniversalClient
	opts   RedisXOptions
	handle func(ctx context.Context, payload []byte) error
	log    *slog.Logger

	// Run's own state.
	grouped   bool
	groupFrom string
	nextClaim time.Time
	nextPrune time.Time

	mu  sync.Mutex
	err error
}

// NewRedisX returns the redisx adapter reading with client and giving each
// entry's payload to handle. handle's errors decide what becomes of the
// entry: nil or a permanent error (anything but codes.Unavailable and
// deadline errors) settle it; an unavailable broker leaves it pending.
func NewRedisX(client redis.UniversalClient, o RedisXOptions, handle func(ctx context.Context, payload []byte) error, log *slog.Logger) *RedisX {
	d := DefaultRedisXOptions()
	if o.Stream == "" {
		o.Stream = d.Stream
	}
	if o.Group == "" {
		o.Group = d.Group
	}
	if o.Block <= 0 {
		o.Block = d.Block
	}
	if o.MaxDeliveries <= 0 {
		o.MaxDeliveries = d.MaxDeliveries
	}
	if o.Consumer == "" {
		o.Consumer = consumerName()
	}
	log = log.With("adapter", "redisx", "stream", o.Stream, "group", o.Group, "consumer", o.Consumer)
	return &RedisX{client: client, opts: o, handle: handle, log: log, groupFrom: "$"}
}

// consumerName is the host name and a random suffix: unique per process,
// and telling which machine holds an entry in XPENDING's output.
func consumerName() string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 6)
	rand.Read(b)
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	if host, err := os.Hostname(); err == nil && host != "" {
		return host + "-" + string(b)
	}
	return string(b)
}

// Name is "redisx".
func (r *RedisX) Name() string { return "redisx" }

// Consumer is this process's consumer name in the group.
func (r *RedisX) Consumer() string { return r.opts.Consumer }

// Err is nil while Redis answers, else its last error.
func (r *RedisX) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func (r *RedisX) setErr(err error) {
	r.mu.Lock()
	was := r.err
	r.err = err
	r.mu.Unlock()
	switch {
	case err != nil && was == nil:
		r.log.Warn("Redis stream broadcasts paused: Redis is unavailable; retrying", "error", err)
	case err == nil && was != nil:
		r.log.Info("Redis stream broadcasts resumed")
	}
}

// Run reads and delivers entries until ctx ends; it returns within Block
// of that (a blocked XREADGROUP is not interrupted). Entries it holds
// undelivered at that point stay pending in the group for another node
// (or the next start) to reclaim: the consumer is removed from the group
// only when it holds none.
func (r *RedisX) Run(ctx context.Context) error {
	r.log.Info(fmt.Sprintf("Consuming broadcasts from Redis stream %s (group %s, consumer %s)", r.opts.Stream, r.opts.Group, r.opts.Consumer))
	defer r.leave(ctx)
	var delay time.Duration
	for ctx.Err() == nil {
		err := r.step(ctx)
		if err == nil {
			delay = 0
			continue
		}
		if ctx.Err() != nil {
			break
		}
		if !errors.Is(err, errSinkUnavailable) {
			r.setErr(err)
		}
		delay = min(max(2*delay, 250*time.Millisecond), redisxMaxBackoff)
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
	}
	return nil
}

// step creates the group when needed, reclaims idle entries when due, then
// reads and delivers one batch of new entries.
func (r *RedisX) step(ctx context.Context) error {
	if !r.grouped {
		if err := r.createGroup(ctx); err != nil {
			return err
		}
	}
	now := time.Now()
	if now.After(r.nextPrune) {
		r.prune(ctx)
		r.nextPrune = now.Add(redisxPruneEvery)
	}
	if now.After(r.nextClaim) {
		if err := r.claim(ctx); err != nil {
			return r.groupGone(err)
		}
		r.nextClaim = time.Now().Add(r.opts.Block)
	}
	res, err := r.client.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: r.opts.Group, Consumer: r.opts.Consumer,
		Streams: []string{r.opts.Stream, ">"}, Count: redisxReadCount, Block: r.opts.Block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		r.setErr(nil)
		return nil
	}
	if err != nil {
		return r.groupGone(err)
	}
	r.setErr(nil)
	for _, s := range res {
		if err := r.deliver(ctx, s.Messages, nil); err != nil {
			return err
		}
	}
	return nil
}

// createGroup creates the group (and the stream) unless it exists. At the
// first start it begins at the stream's end ($), as AnyCable does, so a
// stream's old entries are not replayed; when the group vanished while
// running (Redis restarted without persistence, the key was deleted)
// everything in the stream came after, and it begins at 0.
func (r *RedisX) createGroup(ctx context.Context) error {
	err := r.client.XGroupCreateMkStream(ctx, r.opts.Stream, r.opts.Group, r.groupFrom).Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return err
	}
	r.grouped = true
	return nil
}

// groupGone notes a NOGROUP error (the stream or the group was deleted), so
// the next step creates the group again, and passes err on.
func (r *RedisX) groupGone(err error) error {
	if strings.HasPrefix(err.Error(), "NOGROUP") {
		r.grouped, r.groupFrom = false, "0"
	}
	return err
}

// claim takes over and delivers entries idle longer than Block: those of
// consumers that died, and those this node or another left pending because
// the broker was unavailable.
func (r *RedisX) claim(ctx context.Context) error {
	start := "0-0"
	for {
		msgs, next, err := r.client.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: r.opts.Stream, Group: r.opts.Group, Consumer: r.opts.Consumer,
			MinIdle: r.opts.Block, Start: start, Count: redisxReadCount,
		}).Result()
		if err != nil {
			return err
		}
		if len(msgs) > 0 {
			counts, err := r.deliveries(ctx, msgs)
			if err != nil {
				return err
			}
			if err := r.deliver(ctx, msgs, counts); err != nil {
				return err
			}
		}
		if next == "" || next == "0-0" {
			return nil
		}
		start = next
	}
}

// deliveries reads how many times each claimed entry has been delivered
// (XAUTOCLAIM counts the claim but does not report it).
func (r *RedisX) deliveries(ctx context.Context, msgs []redis.XMessage) (map[string]int64, error) {
	pipe := r.client.Pipeline()
	cmds := make([]*redis.XPendingExtCmd, len(msgs))
	for i, m := range msgs {
		cmds[i] = pipe.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: r.opts.Stream, Group: r.opts.Group, Start: m.ID, End: m.ID, Count: 1,
		})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	counts := make(map[string]int64, len(msgs))
	for _, c := range cmds {
		for _, p := range c.Val() {
			counts[p.ID] = p.RetryCount
		}
	}
	return counts, nil
}

// deliver hands msgs to the handler in order, then acknowledges and deletes
// the settled ones in one round trip. It stops at an entry the broker could
// not take (errSinkUnavailable): that one and the rest stay pending.
// counts are the entries' delivery counts (nil: first delivery).
func (r *RedisX) deliver(ctx context.Context, msgs []redis.XMessage, counts map[string]int64) error {
	settled := make([]string, 0, len(msgs))
	var stop error
	for _, m := range msgs {
		if ctx.Err() != nil {
			break
		}
		n := int64(1)
		if c, ok := counts[m.ID]; ok {
			n = c
		}
		if !r.entry(ctx, m, n) {
			stop = errSinkUnavailable
			break
		}
		settled = append(settled, m.ID)
	}
	if len(settled) == 0 {
		return stop
	}
	// Work done is acknowledged even when ctx has just ended.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.Block)
	defer cancel()
	pipe := r.client.Pipeline()
	pipe.XAck(actx, r.opts.Stream, r.opts.Group, settled...)
	pipe.XDel(actx, r.opts.Stream, settled...)
	if _, err := pipe.Exec(actx); err != nil {
		r.log.Warn("Redis stream entries delivered but not acknowledged: they will be delivered again", "entries", len(settled), "error", err)
		return err
	}
	return stop
}

// entry delivers one entry and reports whether it is settled (delivered,
// or dropped for good) rather than left pending for another try.
func (r *RedisX) entry(ctx context.Context, m redis.XMessage, delivery int64) bool {
	payload, ok := m.Values["payload"].(string)
	if !ok {
		r.log.Warn("Redis stream entry dropped: it has no payload field", "id", m.ID, "fields", fieldNames(m.Values))
		return true
	}
	err := r.handle(ctx, []byte(payload))
	switch {
	case err == nil:
		return true
	case ctx.Err() != nil:
		return false
	case !sinkRetryable(err):
		r.log.Warn("Redis stream entry dropped: invalid broadcast", "id", m.ID, "error", err, "payload", truncate(payload, 256))
		return true
	case delivery >= r.opts.MaxDeliveries:
		r.log.Error("Redis stream entry dropped: not delivered after the most tries", "id", m.ID, "deliveries", delivery, "error", err, "payload", truncate(payload, 256))
		return true
	default:
		r.log.Warn("Redis stream entry not delivered; it stays pending and is tried again", "id", m.ID, "delivery", delivery, "max_deliveries", r.opts.MaxDeliveries, "error", err)
		return false
	}
}

// sinkRetryable reports whether a Sink error is worth trying again: the broker
// or pub/sub was unavailable or too slow. Other errors (an invalid
// publication) fail the same way every time.
func sinkRetryable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}

func fieldNames(v map[string]any) []string {
	names := make([]string, 0, len(v))
	for k := range v {
		names = append(names, k)
	}
	return names
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// pruneScript removes consumers of group ARGV[1] on stream KEYS[1] that
// hold no pending entries and have been idle at least ARGV[2] ms; ARGV[3],
// when not empty, limits it to that consumer. Checking and removing in one
// script means no entry can be handed to a consumer between the two.
// Returns the names removed.
var pruneScript = redis.NewScript(`
local removed = {}
local consumers = redis.pcall('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if type(consumers) ~= 'table' or consumers.err then return removed end
for _, c in ipairs(consumers) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f['pending'] == 0 and f['idle'] >= tonumber(ARGV[2]) and (ARGV[3] == '' or f['name'] == ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    table.insert(removed, f['name'])
  end
end
return removed
`)

// prune removes the consumers that dead processes left behind with nothing
// pending. Failures only delay that to the next round.
func (r *RedisX) prune(ctx context.Context) {
	removed, err := pruneScript.Run(ctx, r.client, []string{r.opts.Stream}, r.opts.Group, redisxPruneIdle.Milliseconds(), "").StringSlice()
	if err != nil {
		r.log.Debug("Redis stream consumer cleanup failed", "error", err)
		return
	}
	if len(removed) > 0 {
		r.log.Info("Removed idle Redis stream consumers with nothing pending", "removed", removed)
	}
}

// leave removes this consumer from the group if it holds no pending
// entries. Unlike AnyCable's XGROUP DELCONSUMER, it never discards pending
// entries: they stay for another node to reclaim after Block.
func (r *RedisX) leave(ctx context.Context) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	removed, err := pruneScript.Run(lctx, r.client, []string{r.opts.Stream}, r.opts.Group, 0, r.opts.Consumer).StringSlice()
	switch {
	case err != nil:
		r.log.Debug("Redis stream consumer not removed", "error", err)
	case len(removed) == 0:
		r.log.Info("Redis stream consumer kept in the group: it has pending entries, which another node reclaims")
	}
}
