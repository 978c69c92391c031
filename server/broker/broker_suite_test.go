package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cablehub/cablehub/server/protocol"
	"github.com/cablehub/cablehub/server/redisconn/redistest"
)

// testedBroker is what the suite exercises on every broker: node.Broker's
// methods (this package cannot import node; the runner's build checks that
// every broker implements node.Broker) and Stamp, the first of the two
// steps of StampAndPublish where they are two.
type testedBroker interface {
	StampAndPublish(ctx context.Context, pubs []protocol.Publication, ps Publisher) (taken int, err error)
	Stamp(ctx context.Context, p *protocol.Publication) error
	HistoryFrom(ctx context.Context, stream, epoch string, offset uint64) ([]protocol.Publication, error)
	HistorySince(ctx context.Context, stream string, since int64) ([]protocol.Publication, error)
	Tail(ctx context.Context, stream string) (string, uint64, error)
	PresenceJoin(ctx context.Context, stream, sid, id string, info json.RawMessage) (bool, error)
	PresenceLeave(ctx context.Context, stream, sid string) (string, bool, error)
	PresenceDisconnect(ctx context.Context, sid string) error
	PresenceInfo(ctx context.Context, stream string) (*PresenceInfo, error)
	CacheSession(ctx context.Context, sid string, data []byte) error
	RestoreSession(ctx context.Context, sid string) ([]byte, error)
	ForgetSession(ctx context.Context, sid string) error
	ReturnSession(ctx context.Context, sid string, data []byte) error
	Idempotency() IdempotencyStore
}

type suiteCase struct {
	b testedBroker
	// clock drives the broker's notion of now.
	clock *clock
	// expire runs one presence expiry pass.
	expire func() []PresenceLeft
	// idle lets stream's state expire as it does when the stream has no
	// publication for ten history TTLs: by the clock where the broker
	// expires by it, else by waiting (with a deadline) for the service to.
	idle func(stream string)
}

// eachBroker runs f against the memory broker, the Redis broker (on the
// Redis at 127.0.0.1:6379, keys under a prefix of the test's own) and the
// NATS JetStream broker (on an embedded server of the test's own).
func eachBroker(t *testing.T, opts MemoryOptions, f func(t *testing.T, c suiteCase)) {
	t.Run("nats", func(t *testing.T) { f(t, natsCase(t, opts)) })
	t.Run("memory", func(t *testing.T) {
		m, c := newTestMemory(opts)
		f(t, suiteCase{b: m, clock: c, expire: func() []PresenceLeft { return m.expirePresence(c.t) },
			idle: func(string) {
				c.t = c.t.Add(10*m.opts.HistoryTTL + time.Second)
				m.expireHistory(c.t)
			}})
	})
	t.Run("redis", func(t *testing.T) {
		client := testRedis(t, 2)
		prefix := fmt.Sprintf("cablehub-test:%s:%d:", t.Name(), time.Now().UnixNano())
		t.Cleanup(func() {
			keys, _ := client.Keys(context.Background(), prefix+"*").Result()
			if len(keys) > 0 {
				client.Del(context.Background(), keys...)
			}
		})
		f(t, redisCase(t, client, prefix, opts))
	})
	t.Run("redis cluster", func(t *testing.T) {
		client := testRedisCluster(t)
		prefix := fmt.Sprintf("cablehub-test:%s:%d:", t.Name(), time.Now().UnixNano())
		t.Cleanup(func() {
			for _, k := range redistest.Keys(context.Background(), client, prefix+"*") {
				client.Del(context.Background(), k)
			}
		})
		f(t, redisCase(t, client, prefix, opts))
	})
}

// redisCase is the suite's case of a Redis broker on client, with keys
// under prefix.
func redisCase(t *testing.T, client redis.UniversalClient, prefix string, opts MemoryOptions) suiteCase {
	ctx := context.Background()
	r := NewRedis(client, prefix, opts, nil)
	c := &clock{t: time.Now()}
	r.now = c.now
	return suiteCase{b: r, clock: c,
		idle: func(stream string) {
			waitFor(t, "the counter of "+stream+" to expire", func() bool {
				return client.Exists(ctx, r.keys.streamKey(stream, "counter")).Val() == 0
			})
		},
		expire: func() []PresenceLeft {
			left, err := r.expire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return left
		}}
}

// skipWithoutPresence skips brokers that keep no presence (NATS).
func skipWithoutPresence(t *testing.T, b testedBroker) {
	if p, ok := b.(interface{ SupportsPresence() bool }); ok && !p.SupportsPresence() {
		t.Skip("the broker keeps no presence")
	}
}

func TestPresenceDedupesByID(t *testing.T) {
	eachBroker(t, MemoryOptions{PresenceTTL: time.Second}, func(t *testing.T, c suiteCase) {
		skipWithoutPresence(t, c.b)
		ctx, b := context.Background(), c.b
		join := func(sid, id string, info json.RawMessage) bool {
			t.Helper()
			joined, err := b.PresenceJoin(ctx, "room", sid, id, info)
			if err != nil {
				t.Fatalf("join of %s as %s: %v", sid, id, err)
			}
			return joined
		}
		leave := func(sid string) (string, bool) {
			t.Helper()
			id, left, err := b.PresenceLeave(ctx, "room", sid)
			if err != nil {
				t.Fatalf("leave of %s: %v", sid, err)
			}
			return id, left
		}
		if !join("s1", "u1", json.RawMessage(`{"name":"Alice"}`)) {
			t.Error("first join of u1 not reported")
		}
		if join("s2", "u1", json.RawMessage(`{"name":"Alice (tab 2)"}`)) {
			t.Error("second session of u1 reported as a new join")
		}
		if join("s2", "u1", json.RawMessage(`{"name":"Alice (tab 2)"}`)) {
			t.Error("repeated join reported")
		}
		if _, err := b.PresenceJoin(ctx, "room", "s1", "u2", nil); !errors.Is(err, ErrPresenceMismatch) {
			t.Errorf("re-join with another id: %v", err)
		}
		if !join("s3", "b0", nil) {
			t.Error("first join of b0 not reported")
		}

		info, err := b.PresenceInfo(ctx, "room")
		if err != nil || info.Sessions != 3 {
			t.Errorf("sessions of two ids (one with two): %+v %v", info, err)
		}
		if err != nil || info.Total != 2 || info.Records[0].ID != "b0" || info.Records[0].Info != nil || info.Records[1].ID != "u1" ||
			string(info.Records[1].Info) != `{"name":"Alice (tab 2)"}` {
			t.Errorf("info: %+v %v", info, err)
		}
		if id, left := leave("s1"); id != "u1" || left {
			t.Errorf("leave of one of two sessions: %q %v", id, left)
		}
		if info, _ := b.PresenceInfo(ctx, "room"); info.Total != 2 || info.Sessions != 2 {
			t.Errorf("after one session left: %+v", info)
		}
		if id, left := leave("s2"); id != "u1" || !left {
			t.Errorf("leave of the last session: %q %v", id, left)
		}
		if id, left := leave("s2"); left || id != "" {
			t.Errorf("repeated leave reported: %q %v", id, left)
		}
		if info, err := b.PresenceInfo(ctx, "unknown"); err != nil || info.Total != 0 || info.Records != nil {
			t.Errorf("unknown stream: %+v %v", info, err)
		}
	})
}

func TestPresenceExpiresOnlyAfterDisconnect(t *testing.T) {
	eachBroker(t, MemoryOptions{PresenceTTL: 5 * time.Second}, func(t *testing.T, c suiteCase) {
		skipWithoutPresence(t, c.b)
		ctx, b := context.Background(), c.b
		if _, err := b.PresenceJoin(ctx, "room", "s1", "u1", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := b.PresenceJoin(ctx, "room", "s2", "u1", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := b.PresenceJoin(ctx, "other", "s1", "u1", nil); err != nil {
			t.Fatal(err)
		}
		if left := c.expire(); len(left) != 0 {
			t.Fatalf("expired while connected: %v", left)
		}
		if err := b.PresenceDisconnect(ctx, "s1"); err != nil {
			t.Fatal(err)
		}
		c.clock.t = c.clock.t.Add(4 * time.Second)
		if left := c.expire(); len(left) != 0 {
			t.Fatalf("expired before the TTL: %v", left)
		}
		c.clock.t = c.clock.t.Add(2 * time.Second)
		// s2 is live but (for Redis) only refreshed by its node's loop;
		// keep it fresh as that loop would.
		if r, ok := b.(*Redis); ok {
			r.refresh(ctx)
		}
		left := c.expire()
		// u1 still has s2 on "room"; on "other" s1 was its only session.
		if len(left) != 1 || left[0] != (PresenceLeft{Stream: "other", ID: "u1"}) {
			t.Fatalf("left: %v", left)
		}
		if left := c.expire(); len(left) != 0 {
			t.Fatalf("reported twice: %v", left)
		}
		if info, _ := b.PresenceInfo(ctx, "room"); info.Total != 1 {
			t.Errorf("room: %+v", info)
		}
	})
}

// A stream takes at most PresenceMaxMembers presence ids: a new id over
// that is refused with ErrPresenceFull and recorded nowhere, more sessions
// of an id already present are not new ids, and a place freed by a leave or
// an expiry can be taken again.
func TestPresenceMaxMembers(t *testing.T) {
	eachBroker(t, MemoryOptions{PresenceTTL: time.Second, PresenceMaxMembers: 2}, func(t *testing.T, c suiteCase) {
		skipWithoutPresence(t, c.b)
		ctx, b := context.Background(), c.b
		for i, id := range []string{"u1", "u2"} {
			if joined, err := b.PresenceJoin(ctx, "room", fmt.Sprint("s", i+1), id, nil); err != nil || !joined {
				t.Fatalf("join of %s under the limit: %v %v", id, joined, err)
			}
		}
		if joined, err := b.PresenceJoin(ctx, "room", "s3", "u3", json.RawMessage(`"over"`)); !errors.Is(err, ErrPresenceFull) || joined {
			t.Fatalf("join of a third id: %v %v", joined, err)
		}
		if _, left, _ := b.PresenceLeave(ctx, "room", "s3"); left {
			t.Error("the refused session left")
		}
		// Another session of u1, and a repeated join: no new id.
		if joined, err := b.PresenceJoin(ctx, "room", "s4", "u1", json.RawMessage(`"tab 2"`)); err != nil || joined {
			t.Errorf("second session of a present id: %v %v", joined, err)
		}
		if _, err := b.PresenceJoin(ctx, "room", "s2", "u2", nil); err != nil {
			t.Errorf("repeated join: %v", err)
		}
		// The limit is per stream.
		if joined, err := b.PresenceJoin(ctx, "other", "s3", "u3", nil); err != nil || !joined {
			t.Errorf("join of another stream: %v %v", joined, err)
		}
		info, _ := b.PresenceInfo(ctx, "room")
		if info.Total != 2 || len(info.Records) != 2 || info.Records[0].ID != "u1" || info.Records[1].ID != "u2" {
			t.Fatalf("room: %+v", info)
		}
		b.PresenceLeave(ctx, "room", "s2")
		if joined, err := b.PresenceJoin(ctx, "room", "s5", "u5", nil); err != nil || !joined {
			t.Fatalf("join after a leave freed a place: %v %v", joined, err)
		}
		b.PresenceDisconnect(ctx, "s5")
		c.clock.t = c.clock.t.Add(2 * time.Second)
		if r, ok := b.(*Redis); ok {
			r.refresh(ctx) // s1 and s4 live on, as their node's loop keeps them
		}
		c.expire()
		if joined, err := b.PresenceJoin(ctx, "room", "s6", "u6", nil); err != nil || !joined {
			t.Fatalf("join after an expiry freed a place: %v %v", joined, err)
		}
	})
}

// Joins racing for the last places of a stream (on Redis, through many
// connections, as nodes would) take exactly as many as there are.
func TestPresenceMaxMembersConcurrent(t *testing.T) {
	const most, racers = 5, 40
	eachBroker(t, MemoryOptions{PresenceTTL: time.Minute, PresenceMaxMembers: most}, func(t *testing.T, c suiteCase) {
		skipWithoutPresence(t, c.b)
		ctx := context.Background()
		var wg sync.WaitGroup
		var mu sync.Mutex
		joined, full := 0, 0
		for i := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := c.b.PresenceJoin(ctx, "race", fmt.Sprint("s", i), fmt.Sprint("u", i), nil)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil && ok:
					joined++
				case errors.Is(err, ErrPresenceFull):
					full++
				default:
					t.Errorf("join %d: %v %v", i, ok, err)
				}
			}()
		}
		wg.Wait()
		info, err := c.b.PresenceInfo(ctx, "race")
		if err != nil || joined != most || full != racers-most || info.Total != most {
			t.Errorf("%d joined, %d refused, %d present (%v); want %d joined", joined, full, info.Total, err, most)
		}
	})
}

func TestHistory(t *testing.T) {
	eachBroker(t, MemoryOptions{HistoryLimit: 3, HistoryTTL: time.Minute}, func(t *testing.T, c suiteCase) {
		ctx, b := context.Background(), c.b
		epoch := ""
		for i := 1; i <= 5; i++ {
			p := &protocol.Publication{Stream: "s", Data: fmt.Sprint(i)}
			if err := b.Stamp(ctx, p); err != nil {
				t.Fatal(err)
			}
			if epoch == "" {
				epoch = p.Epoch
			}
			if p.Offset != uint64(i) || p.Epoch != epoch || epoch == "" {
				t.Fatalf("stamp %d: %+v", i, p)
			}
			c.clock.t = c.clock.t.Add(time.Second)
		}
		data := func(ps []protocol.Publication) string {
			s := ""
			for _, p := range ps {
				s += p.Data
			}
			return s
		}
		// Retained: 3, 4, 5.
		cases := []struct {
			epoch  string
			offset uint64
			want   string
			err    bool
		}{
			{epoch, 3, "45", false},
			{epoch, 4, "5", false},
			{epoch, 5, "", false},
			{epoch, 2, "", true}, // below the oldest kept offset: rejected, as AnyCable does
			{epoch, 6, "", true},
			{"nope", 4, "", true},
		}
		for _, cse := range cases {
			got, err := b.HistoryFrom(ctx, "s", cse.epoch, cse.offset)
			if (err != nil) != cse.err || data(got) != cse.want {
				t.Errorf("from %s/%d: %q %v", cse.epoch, cse.offset, data(got), err)
			}
			for _, p := range got {
				if p.Stream != "s" || p.Epoch != epoch {
					t.Errorf("replayed %+v", p)
				}
			}
		}
		if _, err := b.HistoryFrom(ctx, "unknown", epoch, 0); !errors.Is(err, ErrHistoryUnavailable) {
			t.Errorf("unknown stream: %v", err)
		}
		since := c.clock.t.Add(-2 * time.Second).Unix()
		if got, _ := b.HistorySince(ctx, "s", since); data(got) != "45" {
			t.Errorf("since: %q", data(got))
		}
		if got, err := b.HistorySince(ctx, "unknown", since); err != nil || len(got) != 0 {
			t.Errorf("since on unknown: %v %v", got, err)
		}
		if e, last, err := b.Tail(ctx, "unknown"); e != "" || last != 0 || err != nil {
			t.Errorf("tail of unknown: %q %d %v", e, last, err)
		}
		if e, last, err := b.Tail(ctx, "s"); e != epoch || last != 5 || err != nil {
			t.Errorf("tail: %q %d %v", e, last, err)
		}
		// Past the TTL nothing is served, and offsets carry on.
		c.clock.t = c.clock.t.Add(2 * time.Minute)
		if _, err := b.HistoryFrom(ctx, "s", epoch, 4); err == nil {
			t.Error("expired history served")
		}
		// The tail outlives the entries, and a reader at it is up to date.
		if e, last, err := b.Tail(ctx, "s"); e != epoch || last != 5 || err != nil {
			t.Errorf("tail after expiry: %q %d %v", e, last, err)
		}
		if got, err := b.HistoryFrom(ctx, "s", epoch, 5); err != nil || len(got) != 0 {
			t.Errorf("history at the tail after expiry: %v %v", got, err)
		}
		p := &protocol.Publication{Stream: "s", Data: "6"}
		b.Stamp(ctx, p)
		if p.Offset != 6 || p.Epoch != epoch {
			t.Errorf("offset after expiry: %+v", p)
		}
	})
}

// A stream whose state expires (no publication for ten history TTLs)
// takes its epoch with it: when offsets start again at 1 they do under
// another epoch, so a client that saw the old offsets takes the new ones
// as new (not as ones it has), and its history request is refused. Other
// streams keep their epochs.
func TestEpochEndsWithExpiredStream(t *testing.T) {
	eachBroker(t, MemoryOptions{HistoryLimit: 10, HistoryTTL: 100 * time.Millisecond}, func(t *testing.T, c suiteCase) {
		ctx, b := context.Background(), c.b
		stamp := func(stream string) protocol.Publication {
			t.Helper()
			p := protocol.Publication{Stream: stream, Data: "x"}
			if err := b.Stamp(ctx, &p); err != nil {
				t.Fatal(err)
			}
			return p
		}
		var old protocol.Publication
		for range 5 {
			old = stamp("idle")
		}
		c.idle("idle")
		if e, last, err := b.Tail(ctx, "idle"); e != "" || last != 0 || err != nil {
			t.Errorf("tail of an expired stream: %q %d %v", e, last, err)
		}
		if _, err := b.HistoryFrom(ctx, "idle", old.Epoch, old.Offset); !errors.Is(err, ErrHistoryUnavailable) {
			t.Errorf("history at the last position of an expired stream: %v", err)
		}
		fresh := stamp("idle")
		if fresh.Offset != 1 || fresh.Epoch == old.Epoch || fresh.Epoch == "" {
			t.Fatalf("first stamp after expiry: %+v (before: %+v)", fresh, old)
		}
		if _, err := b.HistoryFrom(ctx, "idle", old.Epoch, old.Offset); !errors.Is(err, ErrHistoryUnavailable) {
			t.Errorf("history from the expired epoch: %v", err)
		}
		if got, err := b.HistoryFrom(ctx, "idle", fresh.Epoch, 1); err != nil || len(got) != 0 {
			t.Errorf("history in the new epoch: %+v %v", got, err)
		}
	})
}

func TestSessionsCache(t *testing.T) {
	eachBroker(t, MemoryOptions{SessionsTTL: time.Minute}, func(t *testing.T, c suiteCase) {
		ctx, b := context.Background(), c.b
		b.CacheSession(ctx, "sid", []byte("old"))
		b.CacheSession(ctx, "sid", []byte("state"))
		if got, err := b.RestoreSession(ctx, "sid"); err != nil || string(got) != "state" {
			t.Fatalf("restore: %q %v", got, err)
		}
		// A sid is restorable once: the restore took the entry, and the
		// session restored (still live somewhere) cannot cache it again.
		if got, err := b.RestoreSession(ctx, "sid"); !errors.Is(err, ErrSessionNotFound) {
			t.Errorf("second restore of one sid: %q %v", got, err)
		}
		b.CacheSession(ctx, "sid", []byte("late write"))
		b.ForgetSession(ctx, "sid")
		if got, err := b.RestoreSession(ctx, "sid"); !errors.Is(err, ErrSessionNotFound) {
			t.Errorf("restore after a late write of a taken sid: %q %v", got, err)
		}
		if _, err := b.RestoreSession(ctx, "other"); !errors.Is(err, ErrSessionNotFound) {
			t.Errorf("unknown sid: %v", err)
		}
		// A take whose restore could not go on is returned: restorable
		// again (once), over the tombstone.
		b.CacheSession(ctx, "back", []byte("state"))
		if _, err := b.RestoreSession(ctx, "back"); err != nil {
			t.Fatal(err)
		}
		if err := b.ReturnSession(ctx, "back", []byte("state")); err != nil {
			t.Fatal(err)
		}
		if got, err := b.RestoreSession(ctx, "back"); err != nil || string(got) != "state" {
			t.Errorf("restore after a return: %q %v", got, err)
		}
		if got, err := b.RestoreSession(ctx, "back"); !errors.Is(err, ErrSessionNotFound) {
			t.Errorf("second restore after a return: %q %v", got, err)
		}
		b.CacheSession(ctx, "gone", []byte("state"))
		if err := b.ForgetSession(ctx, "gone"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.RestoreSession(ctx, "gone"); !errors.Is(err, ErrSessionNotFound) {
			t.Errorf("forgotten session restored: %v", err)
		}
	})
}

func TestMemorySessionsExpire(t *testing.T) {
	ctx := context.Background()
	m, c := newTestMemory(MemoryOptions{SessionsTTL: time.Minute})
	m.CacheSession(ctx, "sid", []byte("state"))
	c.t = c.t.Add(2 * time.Minute)
	if _, err := m.RestoreSession(ctx, "sid"); !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("expired session restored: %v", err)
	}
}

// The memory broker's session cache stays within its byte bound, letting
// the oldest entries go first, and refuses an entry larger than the bound.
func TestMemorySessionsBounded(t *testing.T) {
	ctx := context.Background()
	m, _ := newTestMemory(MemoryOptions{SessionsTTL: time.Minute, SessionsMaxSize: 10 * entrySize("s00", make([]byte, 100))})
	for i := range 30 {
		m.CacheSession(ctx, fmt.Sprintf("s%02d", i), make([]byte, 100))
	}
	if m.sessions.size > m.sessions.max {
		t.Errorf("cache holds %d bytes, bound %d", m.sessions.size, m.sessions.max)
	}
	if _, err := m.RestoreSession(ctx, "s00"); !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("oldest entry kept past the bound: %v", err)
	}
	if _, err := m.RestoreSession(ctx, "s29"); err != nil {
		t.Errorf("newest entry evicted: %v", err)
	}
	m.CacheSession(ctx, "huge", make([]byte, 2*m.sessions.max))
	if _, err := m.RestoreSession(ctx, "huge"); !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("entry over the whole bound kept: %v", err)
	}
}

// A voided publication (stamped, then not published) is served to nobody;
// the offsets around it stay as they were.
func TestVoid(t *testing.T) {
	eachBroker(t, MemoryOptions{HistoryTTL: time.Minute}, func(t *testing.T, c suiteCase) {
		v, ok := c.b.(interface {
			Void(ctx context.Context, p *protocol.Publication) error
		})
		if !ok {
			t.Skip("stamping and publishing are one step here: nothing to void")
		}
		ctx := context.Background()
		stream := "void"
		pubs := make([]protocol.Publication, 3)
		for i := range pubs {
			pubs[i] = protocol.Publication{Stream: stream, Data: fmt.Sprint(i + 1)}
			if err := c.b.Stamp(ctx, &pubs[i]); err != nil {
				t.Fatal(err)
			}
		}
		if err := v.Void(ctx, &pubs[1]); err != nil {
			t.Fatal(err)
		}
		got, err := c.b.HistoryFrom(ctx, stream, pubs[0].Epoch, pubs[0].Offset)
		if err != nil || len(got) != 1 || got[0].Offset != pubs[2].Offset {
			t.Errorf("history after voiding offset %d: %+v %v", pubs[1].Offset, got, err)
		}
		since, _ := c.b.HistorySince(ctx, stream, 0)
		if len(since) != 2 {
			t.Errorf("history since 0: %+v", since)
		}
	})
}

// PresenceStreams lists the streams with presence under a prefix, glob
// characters in the prefix taken literally, and forgets a stream once
// its last presence left.
func TestPresenceStreams(t *testing.T) {
	eachBroker(t, MemoryOptions{PresenceTTL: time.Second}, func(t *testing.T, c suiteCase) {
		skipWithoutPresence(t, c.b)
		lister, ok := c.b.(interface {
			PresenceStreams(ctx context.Context, prefix string, limit int) ([]string, error)
		})
		if !ok {
			t.Fatalf("%T cannot list its presence streams", c.b)
		}
		ctx := context.Background()
		for _, s := range []string{"p*x-1", "p*x-2", "pzx-3", "other"} {
			if _, err := c.b.PresenceJoin(ctx, s, "sid-"+s, "u", nil); err != nil {
				t.Fatal(err)
			}
		}
		got, err := lister.PresenceStreams(ctx, "p*x", 10)
		if slices.Sort(got); err != nil || !slices.Equal(got, []string{"p*x-1", "p*x-2"}) {
			t.Errorf("PresenceStreams(p*x) = %q, %v", got, err)
		}
		if got, _ := lister.PresenceStreams(ctx, "", 1); len(got) != 1 {
			t.Errorf("limit 1 gave %q", got)
		}
		if _, _, err := c.b.PresenceLeave(ctx, "p*x-1", "sid-p*x-1"); err != nil {
			t.Fatal(err)
		}
		if got, _ := lister.PresenceStreams(ctx, "p*x", 10); !slices.Equal(got, []string{"p*x-2"}) {
			t.Errorf("after the leave: %q", got)
		}
	})
}
