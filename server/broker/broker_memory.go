package broker

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cablehub/cablehub/server/protocol"
)

// MemoryOptions configure the memory broker; names follow AnyCable's flags.
type MemoryOptions struct {
	// HistoryLimit is how many publications each stream keeps.
	HistoryLimit int
	// HistoryTTL is how long a publication stays in history.
	HistoryTTL time.Duration
	// SessionsTTL is how long a cached session can be restored.
	SessionsTTL time.Duration
	// PresenceTTL is how long presence outlives a session's connection.
	PresenceTTL time.Duration
	// PresenceMaxMembers bounds the presence ids of one stream, on every
	// node together: a join that would add one more fails with
	// ErrPresenceFull (joins of an id already present always succeed).
	// 0 means unlimited (tests only: the configuration always sets it).
	PresenceMaxMembers int
	// SessionsMaxSize bounds the bytes of all cached sessions the memory
	// broker keeps; the oldest go first. 0 means DefaultSessionsMaxSize.
	SessionsMaxSize int
	// IdempotencyMaxKeys bounds the idempotency keys the memory broker
	// remembers; the oldest go first. 0 means DefaultIdempotencyMaxKeys.
	IdempotencyMaxKeys int
}

// DefaultHistoryLimit is the publications a stream keeps when
// MemoryOptions.HistoryLimit is not positive (--history_limit's default).
const DefaultHistoryLimit = 100

// DefaultMemoryOptions are the brokers' settings without flags: AnyCable's
// defaults for --history_limit, --history_ttl, --sessions_ttl and
// --presence_ttl.
func DefaultMemoryOptions() MemoryOptions {
	return MemoryOptions{
		HistoryLimit: DefaultHistoryLimit,
		HistoryTTL:   300 * time.Second,
		SessionsTTL:  300 * time.Second,
		PresenceTTL:  15 * time.Second,

		// Cablehub's own (--presence_max_members).
		PresenceMaxMembers: DefaultPresenceMaxMembers,
	}
}

// DefaultPresenceMaxMembers is --presence_max_members' default: room for
// the largest rooms whose members are listed, while a stream's records
// (with --max_presence_info_size's 4 KiB each, at most 40 MiB) stay a
// bounded share of a broker.
const DefaultPresenceMaxMembers = 10000

// DefaultSessionsMaxSize is the memory broker's default bound on cached
// sessions: room for about a million typical sessions, and a ceiling on
// what sessions that come and go can pin.
const DefaultSessionsMaxSize = 256 << 20

// Memory is the single-node broker: history, presence and the session cache
// live in this process. All methods are safe for concurrent use.
type Memory struct {
	opts  MemoryOptions
	epoch string
	now   func() time.Time

	hmu     sync.Mutex
	streams map[string]*history
	// forgets counts the expiry passes that forgot streams: records made
	// after one count in another epoch (see Stamp).
	forgets uint64
	seq     sequencer

	pmu       sync.Mutex
	presence  map[string]*streamPresence
	bySession map[string]map[string]struct{} // sid -> streams it is present on
	expiring  map[string]time.Time           // sid -> when its presence goes

	sessions *sessionCache

	// idempotency remembers publications' idempotency keys (on m's clock).
	idempotency *IdempotencyMemory
}

// NewMemory returns an empty memory broker with a fresh epoch.
func NewMemory(opts MemoryOptions) *Memory {
	if opts.HistoryLimit <= 0 {
		opts.HistoryLimit = DefaultHistoryLimit
	}
	m := &Memory{
		opts:        opts,
		epoch:       newEpoch(),
		now:         time.Now,
		streams:     map[string]*history{},
		presence:    map[string]*streamPresence{},
		bySession:   map[string]map[string]struct{}{},
		expiring:    map[string]time.Time{},
		sessions:    newSessionCache(opts.SessionsMaxSize),
		idempotency: NewIdempotencyMemory(opts.IdempotencyMaxKeys),
	}
	m.idempotency.now = func() time.Time { return m.now() }
	return m
}

// newEpoch returns 4 random characters, like AnyCable's memory broker's
// epoch: the part of every epoch that differs per process, telling clients
// that offsets of an earlier process mean nothing here.
func newEpoch() string { return randomEpoch(4) }

// newStreamEpoch returns an epoch for one stream of a cluster broker:
// 8 random characters, so that a stream's new epoch is practically never
// one it had before (a client still holding that one would take the new
// offsets for old ones).
func newStreamEpoch() string { return randomEpoch(8) }

func randomEpoch(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[b[i]&63]
	}
	return string(b)
}

// Epoch is the epoch of the streams whose records are made now: the
// process's epoch (shown in the startup log), followed by the number of
// expiry passes that forgot streams, once there were any (see Stamp).
func (m *Memory) Epoch() string {
	m.hmu.Lock()
	defer m.hmu.Unlock()
	return m.currentEpoch()
}

// currentEpoch is Epoch; m.hmu is held.
func (m *Memory) currentEpoch() string {
	if m.forgets == 0 {
		return m.epoch
	}
	return m.epoch + strconv.FormatUint(m.forgets, 36)
}

// Describe names the broker and its settings for the startup log.
func (m *Memory) Describe() string {
	return fmt.Sprintf("Using in-memory broker (epoch: %s, history limit: %d, history ttl: %s, sessions ttl: %s, presence ttl: %s)",
		m.epoch, m.opts.HistoryLimit, seconds(m.opts.HistoryTTL), seconds(m.opts.SessionsTTL), seconds(m.opts.PresenceTTL))
}

func seconds(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", int64(d/time.Second))
	}
	return d.String()
}

// Run expires presence, history and cached sessions until ctx is done,
// reporting presence ids that left their streams to onLeft. One loop serves
// every record: nothing holds a timer of its own.
func (m *Memory) Run(ctx context.Context, onLeft func([]PresenceLeft)) {
	tick := m.opts.PresenceTTL / 5
	tick = max(50*time.Millisecond, min(tick, time.Second))
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := m.now()
		if left := m.expirePresence(now); len(left) > 0 && onLeft != nil {
			onLeft(left)
		}
		m.expireHistory(now)
		m.sessions.expire(now)
		m.idempotency.Expire()
	}
}

// --- history ---

// history is one stream's retained publications in a ring buffer, and the
// epoch its offsets count in.
type history struct {
	epoch     string
	last      uint64 // offset of the latest publication
	ring      []historyEntry
	start     int // index of the oldest entry once the ring is full
	lastWrite time.Time
}

type historyEntry struct {
	at  time.Time
	pub protocol.Publication
	// void marks a publication whose publish failed after it was stamped
	// (see Void): its offset stays taken, it is served to nobody.
	void bool
}

// entries returns the retained entries, oldest first, dropping those older
// than the TTL.
func (h *history) entries() []historyEntry {
	out := make([]historyEntry, 0, len(h.ring))
	out = append(out, h.ring[h.start:]...)
	return append(out, h.ring[:h.start]...)
}

// StampAndPublish stamps and publishes pubs in order through ps; see
// node.Broker.StampAndPublish. Stamping and publishing are two steps, kept
// in order per stream by a lock each, which is the whole of the order for
// a broker that lives in one process.
func (m *Memory) StampAndPublish(ctx context.Context, pubs []protocol.Publication, ps Publisher) (taken int, err error) {
	return m.seq.stampAndPublish(ctx, m, pubs, ps)
}

// Stamp gives a non-transient publication the next offset of its stream and
// the stream's epoch, and keeps it in history.
//
// A stream's record is made by its first publication and forgotten ten
// history TTLs after its last (expireHistory); offsets then start again at
// 1. So the epoch belongs to the record, not to the process: a record
// counts in the epoch current when it was made, which changes with every
// expiry pass that forgets streams. A forgotten stream's new record thus
// counts in another epoch than its old one, and a client still holding a
// position of the old record is refused history (reject_history) and sees
// the new offsets as new, never as ones it already has.
func (m *Memory) Stamp(_ context.Context, p *protocol.Publication) error {
	now := m.now()
	m.hmu.Lock()
	defer m.hmu.Unlock()
	h, ok := m.streams[p.Stream]
	if !ok {
		h = &history{epoch: m.currentEpoch()}
		m.streams[p.Stream] = h
	}
	h.last++
	p.Epoch, p.Offset = h.epoch, h.last
	e := historyEntry{at: now, pub: *p}
	if len(h.ring) < m.opts.HistoryLimit {
		h.ring = append(h.ring, e)
	} else {
		h.ring[h.start] = e
		h.start = (h.start + 1) % len(h.ring)
	}
	h.lastWrite = now
	return nil
}

// retained returns a stream's history within the TTL, oldest first; m.hmu
// is held.
func (m *Memory) retained(h *history, now time.Time) []historyEntry {
	all := h.entries()
	if m.opts.HistoryTTL <= 0 {
		return all
	}
	cutoff := now.Add(-m.opts.HistoryTTL)
	i := sort.Search(len(all), func(i int) bool { return all[i].at.After(cutoff) })
	return all[i:]
}

// HistoryFrom returns the publications of stream after offset, for a client
// that has seen everything up to offset in epoch. It fails with
// ErrHistoryUnavailable, as AnyCable's memory broker does, when the epoch
// differs, the stream is unknown, the offset is beyond the latest, or it is
// below the oldest retained offset (some publications after it are gone).
func (m *Memory) HistoryFrom(_ context.Context, stream, epoch string, offset uint64) ([]protocol.Publication, error) {
	m.hmu.Lock()
	defer m.hmu.Unlock()
	h, ok := m.streams[stream]
	if !ok {
		return nil, fmt.Errorf("%w: stream %q has no history", ErrHistoryUnavailable, stream)
	}
	if epoch != h.epoch {
		return nil, fmt.Errorf("%w: unknown epoch %s, current %s", ErrHistoryUnavailable, epoch, h.epoch)
	}
	if offset > h.last {
		return nil, fmt.Errorf("%w: offset %d is beyond the latest %d", ErrHistoryUnavailable, offset, h.last)
	}
	if offset == h.last {
		return nil, nil
	}
	return after(m.retained(h, m.now()), offset)
}

// after returns the retained publications with offsets above offset; it
// fails when offset is below the oldest one kept (AnyCable's rule, also for
// offset 0 when offset 1 is kept). Both brokers share it.
func after(kept []historyEntry, offset uint64) ([]protocol.Publication, error) {
	if len(kept) == 0 || offset < kept[0].pub.Offset {
		return nil, fmt.Errorf("%w: offset %d is older than the history kept", ErrHistoryUnavailable, offset)
	}
	var out []protocol.Publication
	for _, e := range kept {
		if e.pub.Offset > offset && !e.void {
			out = append(out, e.pub)
		}
	}
	return out, nil
}

// Tail returns the stream's epoch and the offset of its latest
// publication, kept or expired since; "" and 0 for a stream it does not
// know (never published, or forgotten after ten TTLs unwritten).
func (m *Memory) Tail(_ context.Context, stream string) (string, uint64, error) {
	m.hmu.Lock()
	defer m.hmu.Unlock()
	h, ok := m.streams[stream]
	if !ok {
		return "", 0, nil
	}
	return h.epoch, h.last, nil
}

// HistorySince returns the publications of stream made at or after since
// (unix seconds); an unknown stream has none.
func (m *Memory) HistorySince(_ context.Context, stream string, since int64) ([]protocol.Publication, error) {
	m.hmu.Lock()
	defer m.hmu.Unlock()
	h, ok := m.streams[stream]
	if !ok {
		return nil, nil
	}
	var out []protocol.Publication
	for _, e := range m.retained(h, m.now()) {
		if e.at.Unix() >= since && !e.void {
			out = append(out, e.pub)
		}
	}
	return out, nil
}

// expireHistory drops entries past the TTL and forgets streams unwritten
// for ten TTLs (until then their offsets carry on; a stream written again
// later starts a new epoch, see Stamp).
func (m *Memory) expireHistory(now time.Time) {
	if m.opts.HistoryTTL <= 0 {
		return
	}
	m.hmu.Lock()
	defer m.hmu.Unlock()
	forgot := false
	defer func() {
		if forgot {
			m.forgets++
		}
	}()
	for name, h := range m.streams {
		if now.Sub(h.lastWrite) > 10*m.opts.HistoryTTL {
			delete(m.streams, name)
			forgot = true
			continue
		}
		kept := m.retained(h, now)
		if len(kept) < len(h.ring) {
			ring := make([]historyEntry, len(kept), m.opts.HistoryLimit)
			copy(ring, kept)
			h.ring, h.start = ring, 0
		}
	}
}

// --- presence ---

// streamPresence is the presence of one stream: records by presence id and
// the id each session joined with.
type streamPresence struct {
	byID  map[string]*presenceEntry
	bySID map[string]string
}

type presenceEntry struct {
	info     json.RawMessage
	sessions map[string]struct{}
}

// SupportsPresence reports true.
func (m *Memory) SupportsPresence() bool { return true }

// PresenceJoin records that session sid is present on stream as id with the
// given info (nil for none). joined is true only when id was not present on
// the stream before: that is when subscribers get a join event. A later join
// of the same id from any session replaces the info. A session that joined
// under another id gets ErrPresenceMismatch; a new id on a stream that has
// PresenceMaxMembers ids gets ErrPresenceFull.
func (m *Memory) PresenceJoin(_ context.Context, stream, sid, id string, info json.RawMessage) (joined bool, err error) {
	m.pmu.Lock()
	defer m.pmu.Unlock()
	sp, ok := m.presence[stream]
	if !ok {
		sp = &streamPresence{byID: map[string]*presenceEntry{}, bySID: map[string]string{}}
		m.presence[stream] = sp
	}
	if prev, ok := sp.bySID[sid]; ok && prev != id {
		return false, ErrPresenceMismatch
	}
	e, existed := sp.byID[id]
	if !existed && m.opts.PresenceMaxMembers > 0 && len(sp.byID) >= m.opts.PresenceMaxMembers {
		return false, ErrPresenceFull
	}
	if !existed {
		e = &presenceEntry{sessions: map[string]struct{}{}}
		sp.byID[id] = e
	}
	e.info = info
	e.sessions[sid] = struct{}{}
	sp.bySID[sid] = id
	streams, ok := m.bySession[sid]
	if !ok {
		streams = map[string]struct{}{}
		m.bySession[sid] = streams
	}
	streams[stream] = struct{}{}
	return !existed, nil
}

// PresenceLeave removes session sid's presence from stream at once. left is
// true when that was the last session of its presence id, which is then
// gone: that is when subscribers get a leave event for id.
func (m *Memory) PresenceLeave(_ context.Context, stream, sid string) (id string, left bool, err error) {
	m.pmu.Lock()
	defer m.pmu.Unlock()
	id, left, _ = m.leave(stream, sid)
	if streams, ok := m.bySession[sid]; ok {
		delete(streams, stream)
		if len(streams) == 0 {
			delete(m.bySession, sid)
			delete(m.expiring, sid)
		}
	}
	return id, left, nil
}

// leave removes sid from stream's presence; m.pmu is held. found reports
// whether sid was present at all.
func (m *Memory) leave(stream, sid string) (id string, left, found bool) {
	sp, ok := m.presence[stream]
	if !ok {
		return "", false, false
	}
	id, ok = sp.bySID[sid]
	if !ok {
		return "", false, false
	}
	delete(sp.bySID, sid)
	e := sp.byID[id]
	delete(e.sessions, sid)
	if len(e.sessions) > 0 {
		return id, false, true
	}
	delete(sp.byID, id)
	if len(sp.byID) == 0 {
		delete(m.presence, stream)
	}
	return id, true, true
}

// PresenceDisconnect marks that session sid's connection is gone: its
// presence on every stream expires PresenceTTL from now. While a connection
// lives its presence never expires, whatever its protocol.
func (m *Memory) PresenceDisconnect(_ context.Context, sid string) error {
	m.pmu.Lock()
	defer m.pmu.Unlock()
	if _, ok := m.bySession[sid]; ok {
		m.expiring[sid] = m.now().Add(m.opts.PresenceTTL)
	}
	return nil
}

func (m *Memory) expirePresence(now time.Time) []PresenceLeft {
	m.pmu.Lock()
	defer m.pmu.Unlock()
	var left []PresenceLeft
	for sid, deadline := range m.expiring {
		if deadline.After(now) {
			continue
		}
		for stream := range m.bySession[sid] {
			if id, gone, _ := m.leave(stream, sid); gone {
				left = append(left, PresenceLeft{Stream: stream, ID: id})
			}
		}
		delete(m.bySession, sid)
		delete(m.expiring, sid)
	}
	return left
}

// PresenceInfo returns the records of stream sorted by id; an unknown stream
// has none.
func (m *Memory) PresenceInfo(_ context.Context, stream string) (*PresenceInfo, error) {
	m.pmu.Lock()
	sp, ok := m.presence[stream]
	info := &PresenceInfo{}
	if ok {
		info.Records = make([]PresenceRecord, 0, len(sp.byID))
		for id, e := range sp.byID {
			info.Records = append(info.Records, PresenceRecord{ID: id, Info: e.info})
		}
		info.Sessions = len(sp.bySID)
	}
	m.pmu.Unlock()
	sort.Slice(info.Records, func(i, j int) bool { return info.Records[i].ID < info.Records[j].ID })
	info.Total = len(info.Records)
	return info, nil
}

// Void takes back a stamped publication whose publish failed, so that the
// publisher's error answer holds: it is never served from history. Its
// offset stays taken (a later publication may have the next one), so
// subscribers see a hole there, which history tells apart from a loss by
// the offsets after it. Unknown publications are ignored.
func (m *Memory) Void(_ context.Context, p *protocol.Publication) error {
	m.hmu.Lock()
	defer m.hmu.Unlock()
	h, ok := m.streams[p.Stream]
	if !ok || p.Epoch != h.epoch {
		return nil
	}
	for i := range h.ring {
		if h.ring[i].pub.Offset == p.Offset {
			h.ring[i].void = true
		}
	}
	return nil
}

// PresenceStreams lists the streams whose names start with prefix that
// have presence, in no particular order, at most limit of them.
func (m *Memory) PresenceStreams(_ context.Context, prefix string, limit int) ([]string, error) {
	m.pmu.Lock()
	defer m.pmu.Unlock()
	var out []string
	for stream, sp := range m.presence {
		if len(out) >= limit {
			break
		}
		if strings.HasPrefix(stream, prefix) && len(sp.byID) > 0 {
			out = append(out, stream)
		}
	}
	return out, nil
}
