package broadcast

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cablehub/cablehub/server/backoff"
	"github.com/cablehub/cablehub/server/connwatch"
)

// redisxMaxDeliveries is how many times an entry is tried while the broker
// or pub/sub is unavailable before it is logged and dropped, so that an
// entry that can never be delivered does not come back forever (AnyCable
// retries it every few seconds for good). With the backoff between tries
// that is about half a minute of outage.
const redisxMaxDeliveries = 10

// Tuning of the redisx loop.
const (
	// redisxReadCount bounds one XREADGROUP: a batch must be handled well
	// within the block time, or another node reclaims its tail while it is
	// still being delivered here.
	redisxReadCount = 64
	// redisxPruneIdle is how long a consumer with nothing pending must have
	// been silent before it is removed from the group: processes that died
	// leave their consumers behind, one per start.
	redisxPruneIdle = time.Hour
	// redisxPruneEvery is how often such consumers are looked for.
	redisxPruneEvery = time.Minute
	// redisxBackoffMin and redisxBackoffMax bound the wait between attempts
	// while Redis (or the broker) is down (backoff.New): it grows after
	// each failed step and starts over after one that succeeds.
	redisxBackoffMin = 250 * time.Millisecond
	redisxBackoffMax = 5 * time.Second
)

// errSinkUnavailable says a batch stopped at an entry the broker or
// pub/sub could not take; Run backs off before reading more.
var errSinkUnavailable = errors.New("the broker or pub/sub is unavailable")

// redisxConfig is what one redisx adapter runs with.
type redisxConfig struct {
	RedisXOptions
	// consumer names this process in the group (Options.NodeID).
	consumer string
	// maxDeliveries: see redisxMaxDeliveries.
	maxDeliveries int64
	// counters count Redis's outages (Options.Metrics); nil counts
	// nothing.
	counters connwatch.Counters
}

// RedisX is the redisx adapter: AnyCable's Redis Streams broadcaster.
// Publishers XADD entries with a payload field to the stream; every node
// reads it in one consumer group, so each entry is handled by one node of
// the cluster, through the broker (offsets, history) like every
// broadcast. Delivery is at least once: an entry handled by a node that
// dies before acknowledging it is handled again by another.
//
// Handled entries are acknowledged and deleted (the stream stays empty).
// An entry without a payload field, or whose payload is malformed or over
// the size limit (Options.MaxPayloadSize, checked before decoding), is
// logged and dropped at once (AnyCable retries it forever). An entry that
// cannot be delivered because the broker or pub/sub is down stays pending
// and is reclaimed and tried again, up to redisxMaxDeliveries times.
// Entries this node holds when it stops stay pending for another node, or
// the next start, to reclaim (AnyCable's shutdown discards them).
type RedisX struct {
	client redis.UniversalClient
	cfg    redisxConfig
	handle func(ctx context.Context, payload []byte) error
	log    *slog.Logger
	// watch counts the outages setErr logs.
	watch *connwatch.Watch

	// Run's own state.
	grouped   bool
	groupFrom string
	nextClaim time.Time
	nextPrune time.Time

	mu  sync.Mutex
	err error
}

// newRedisX builds the redisx adapter of the factory (New).
func newRedisX(o Options, h *Handler, log *slog.Logger) (Adapter, error) {
	if o.Redis == nil {
		return nil, fmt.Errorf("the %s broadcast adapter needs a Redis client", NameRedisX)
	}
	cfg := redisxConfig{RedisXOptions: o.RedisX, consumer: o.NodeID, counters: o.Metrics}
	return newRedisXAdapter(o.Redis, cfg, h.Deliver, log), nil
}

// newRedisXAdapter returns the redisx adapter reading with client and
// giving each entry's payload to handle, whose error decides what becomes
// of the entry: nil or a permanent error settle it; an unavailable broker
// (sinkRetryable) leaves it pending. Zero settings get AnyCable's defaults.
func newRedisXAdapter(client redis.UniversalClient, cfg redisxConfig, handle func(ctx context.Context, payload []byte) error, log *slog.Logger) *RedisX {
	d := DefaultOptions().RedisX
	if cfg.Stream == "" {
		cfg.Stream = d.Stream
	}
	if cfg.Group == "" {
		cfg.Group = d.Group
	}
	if cfg.ReadBlock <= 0 {
		cfg.ReadBlock = d.ReadBlock
	}
	if cfg.maxDeliveries <= 0 {
		cfg.maxDeliveries = redisxMaxDeliveries
	}
	if cfg.consumer == "" {
		cfg.consumer = randomID()
	}
	log = log.With("stream", cfg.Stream, "group", cfg.Group, "consumer", cfg.consumer)
	return &RedisX{client: client, cfg: cfg, handle: handle, log: log, groupFrom: "$",
		watch: connwatch.New("broadcast:"+NameRedisX, cfg.counters)}
}

// Name is "redisx".
func (r *RedisX) Name() string { return NameRedisX }

// Consumer is this process's consumer name in the group.
func (r *RedisX) Consumer() string { return r.cfg.consumer }

// Role is "": every node reads the stream alike, as one consumer of the
// group among others, so none has a role to tell.
func (r *RedisX) Role() string { return "" }

// Describe is the adapter's startup line.
func (r *RedisX) Describe() string {
	return fmt.Sprintf("Starting Redis broadcaster at %s (stream: %s, group: %s, consumer: %s)", redisAddr(r.client), r.cfg.Stream, r.cfg.Group, r.cfg.consumer)
}

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
		r.watch.Lost()
		r.log.Warn("Redis stream broadcasts paused: Redis is unavailable; retrying", "error", err)
	case err == nil && was != nil:
		_, outage := r.watch.Restored()
		r.log.Info("Redis stream broadcasts resumed", "outage", outage.Round(time.Millisecond).String())
	}
}

// Run reads and delivers entries until ctx ends; it returns within the
// block time of that (a blocked XREADGROUP is not interrupted), after the
// entry being delivered, if any (bounded by the sink). Entries it holds
// undelivered at that point stay pending in the group for another node
// (or the next start) to reclaim: the consumer is removed from the group
// only when it holds none.
func (r *RedisX) Run(ctx context.Context) error {
	defer r.leave(ctx)
	wait := backoff.New(redisxBackoffMin, redisxBackoffMax, nil)
	for ctx.Err() == nil {
		err := r.step(ctx)
		if err == nil {
			wait.Reset()
			continue
		}
		if ctx.Err() != nil {
			break
		}
		if !errors.Is(err, errSinkUnavailable) {
			r.setErr(err)
		}
		sleep(ctx, wait.Next())
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
		r.nextClaim = time.Now().Add(r.cfg.ReadBlock)
	}
	res, err := r.client.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: r.cfg.Group, Consumer: r.cfg.consumer,
		Streams: []string{r.cfg.Stream, ">"}, Count: redisxReadCount, Block: r.cfg.ReadBlock,
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
	err := r.client.XGroupCreateMkStream(ctx, r.cfg.Stream, r.cfg.Group, r.groupFrom).Err()
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

// claim takes over and delivers entries idle longer than the block time:
// those of consumers that died, and those this node or another left
// pending because the broker was unavailable.
func (r *RedisX) claim(ctx context.Context) error {
	start := "0-0"
	for {
		msgs, next, err := r.client.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: r.cfg.Stream, Group: r.cfg.Group, Consumer: r.cfg.consumer,
			MinIdle: r.cfg.ReadBlock, Start: start, Count: redisxReadCount,
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
			Stream: r.cfg.Stream, Group: r.cfg.Group, Start: m.ID, End: m.ID, Count: 1,
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
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.ReadBlock)
	defer cancel()
	pipe := r.client.Pipeline()
	pipe.XAck(actx, r.cfg.Stream, r.cfg.Group, settled...)
	pipe.XDel(actx, r.cfg.Stream, settled...)
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
	// An entry being delivered when the adapter stops is finished.
	err := r.handle(context.WithoutCancel(ctx), []byte(payload))
	switch {
	case err == nil:
		return true
	case ctx.Err() != nil:
		return false
	case !sinkRetryable(err):
		r.log.Warn("Redis stream entry dropped: not deliverable", "id", m.ID, "error", err, "payload", excerpt([]byte(payload)))
		return true
	case delivery >= r.cfg.maxDeliveries:
		r.log.Error("Redis stream entry dropped: not delivered after the most tries", "id", m.ID, "deliveries", delivery, "error", err, "payload", excerpt([]byte(payload)))
		return true
	default:
		r.log.Debug("Redis stream entry not delivered; it stays pending and is tried again", "id", m.ID, "delivery", delivery, "max_deliveries", r.cfg.maxDeliveries, "error", err)
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
	removed, err := pruneScript.Run(ctx, r.client, []string{r.cfg.Stream}, r.cfg.Group, redisxPruneIdle.Milliseconds(), "").StringSlice()
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
// entries: they stay for another node to reclaim after the block time.
func (r *RedisX) leave(ctx context.Context) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if _, err := pruneScript.Run(lctx, r.client, []string{r.cfg.Stream}, r.cfg.Group, 0, r.cfg.consumer).StringSlice(); err != nil {
		r.log.Debug("Redis stream consumer not removed", "error", err)
		return
	}
	if p, err := r.client.XPending(lctx, r.cfg.Stream, r.cfg.Group).Result(); err == nil && p.Consumers[r.cfg.consumer] > 0 {
		r.log.Info("Redis stream consumer kept in the group with its pending entries, for another node to reclaim", "pending", p.Consumers[r.cfg.consumer])
	}
}
