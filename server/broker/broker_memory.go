package broker

import (
	"context"
	"encoding/json"
	"sort"
	"sync"
)

// Memory is the single-node broker: presence lives in this process.
// All methods are safe for concurrent use.
type Memory struct {
	mu       sync.Mutex
	presence map[string]*streamPresence
}

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

// NewMemory returns an empty memory broker.
func NewMemory() *Memory {
	return &Memory{presence: map[string]*streamPresence{}}
}

// SupportsPresence reports true.
func (m *Memory) SupportsPresence() bool { return true }

// PresenceJoin records that session sid is present on stream as id with the
// given info (nil for none). joined is true only when id was not present on
// the stream before: that is when subscribers get a join event. A later join
// of the same id from any session replaces the info. A session that joined
// under another id gets ErrPresenceMismatch.
func (m *Memory) PresenceJoin(_ context.Context, stream, sid, id string, info json.RawMessage) (joined bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sp, ok := m.presence[stream]
	if !ok {
		sp = &streamPresence{byID: map[string]*presenceEntry{}, bySID: map[string]string{}}
		m.presence[stream] = sp
	}
	if prev, ok := sp.bySID[sid]; ok && prev != id {
		return false, ErrPresenceMismatch
	}
	e, ok := sp.byID[id]
	if !ok {
		e = &presenceEntry{sessions: map[string]struct{}{}}
		sp.byID[id] = e
	}
	e.info = info
	e.sessions[sid] = struct{}{}
	sp.bySID[sid] = id
	return !ok, nil
}

// PresenceLeave removes session sid's presence from stream. left is true
// when that was the last session of its presence id, which is then gone:
// that is when subscribers get a leave event for id.
func (m *Memory) PresenceLeave(_ context.Context, stream, sid string) (id string, left bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sp, ok := m.presence[stream]
	if !ok {
		return "", false, nil
	}
	id, ok = sp.bySID[sid]
	if !ok {
		return "", false, nil
	}
	delete(sp.bySID, sid)
	e := sp.byID[id]
	delete(e.sessions, sid)
	if len(e.sessions) > 0 {
		return id, false, nil
	}
	delete(sp.byID, id)
	if len(sp.byID) == 0 {
		delete(m.presence, stream)
	}
	return id, true, nil
}

// PresenceInfo returns the records of stream sorted by id; an unknown stream
// has none.
func (m *Memory) PresenceInfo(_ context.Context, stream string) (*PresenceInfo, error) {
	m.mu.Lock()
	sp, ok := m.presence[stream]
	info := &PresenceInfo{}
	if ok {
		info.Records = make([]PresenceRecord, 0, len(sp.byID))
		for id, e := range sp.byID {
			info.Records = append(info.Records, PresenceRecord{ID: id, Info: e.info})
		}
	}
	m.mu.Unlock()
	sort.Slice(info.Records, func(i, j int) bool { return info.Records[i].ID < info.Records[j].ID })
	info.Total = len(info.Records)
	return info, nil
}
