package node

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/cablehub/cablehub/server/pubsub"
)

// DefaultRestoreHold is how long live messages of restored subscriptions
// wait for the client's history request, so history and live messages
// arrive in order, when Options.RestoreHold is zero.
const DefaultRestoreHold = 5 * time.Second

// cacheDelay is how long after a subscription change the restore cache is
// written. Writing it serialises every subscription, so writing on each
// change made subscribing quadratic; written once per delay, however many
// changes came meanwhile, a subscribe costs O(1) amortised. A session that
// ends writes its cache at once, so the delay only matters when a node dies
// within it.
const cacheDelay = 200 * time.Millisecond

// resumable reports whether the session can be restored after a drop.
func (s *Session) resumable() bool {
	return s.extended && s.node.opts.SessionsTTL > 0
}

// cachedState is what a session's restore needs: its identifiers, the
// built-in subscriptions (the router decides them again), and what the App
// gave it (channels with their streams and state, the connection state,
// whether it is owed a Disconnect), so that a restore calls no Connect.
//
// IdentifiedAt and Expires carry the identity's life across restores:
// when it was established (unix nanoseconds; a remote disconnect of the
// identifiers after it makes the state unrestorable, see kicks) and when
// its credential expires (unix milliseconds, 0 for never; from then on the
// state is not restored). A state without IdentifiedAt (written by an
// earlier version) counts as identified before any disconnect.
type cachedState struct {
	Identifiers   string                   `json:"ids"`
	IdentifiedAt  int64                    `json:"at,omitempty"`
	Expires       int64                    `json:"exp,omitempty"`
	Subscriptions []string                 `json:"subs"`
	Channels      map[string]cachedChannel `json:"channels,omitempty"`
	CState        map[string]string        `json:"cstate,omitempty"`
	AppDisconnect bool                     `json:"disconnect,omitempty"`
}

// cachedChannel is an App channel's subscription in the restore cache.
type cachedChannel struct {
	Streams []string          `json:"streams,omitempty"`
	State   map[string]string `json:"state,omitempty"`
}

// cacheLater schedules a write of the restore cache within cacheDelay,
// unless one is already due.
func (s *Session) cacheLater() {
	if !s.resumable() {
		return
	}
	s.mu.Lock()
	due := s.cacheScheduled || s.closed
	s.cacheScheduled = true
	s.mu.Unlock()
	if !due {
		s.node.timers.add(timer{s: s, kind: timerCache}, cacheDelay)
	}
}

// cache stores the session's current state for restore. A state larger
// than Options.MaxCachedSession is not stored (the client then subscribes
// afresh on reconnect, as after any failed restore), so one session cannot
// pin more than that in the broker.
//
// A revoked session (see disconnectLocal), or one whose identity has
// expired, is forgotten instead: it cannot be restored.
//
// Once the session has ended, the state its end wrote is final: a write
// due from a timer is then dropped. It reports whether a state was
// written.
func (s *Session) cache() bool {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	if s.ctx.Err() != nil {
		return false
	}
	var data []byte
	switch {
	case s.revoked.Load():
	case s.identityExpired(time.Now()):
		s.node.log.Debug("session identity expired: not cached", "sid", s.sid)
	default:
		data, _ = json.Marshal(s.cachedState())
		if max := s.node.opts.MaxCachedSession; max > 0 && len(data) > max {
			s.node.log.Debug("session state too large to cache", "sid", s.sid, "bytes", len(data), "limit", max)
			data = nil
		}
	}
	ctx, cancel := s.brokerContext()
	defer cancel()
	var err error
	if data == nil {
		err = s.node.broker.ForgetSession(ctx, s.sid)
	} else {
		err = s.node.broker.CacheSession(ctx, s.sid, data)
	}
	if err != nil {
		s.node.log.Warn("session not cached", "sid", s.sid, "error", err)
	}
	return data != nil && err == nil
}

// forget drops the session's restore state.
func (s *Session) forget() {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	ctx, cancel := s.brokerContext()
	defer cancel()
	if err := s.node.broker.ForgetSession(ctx, s.sid); err != nil {
		s.node.log.Warn("restore state of a disconnected session not dropped", "sid", s.sid, "error", err)
	}
}

// identityExpired reports whether the session's credential has expired.
func (s *Session) identityExpired(now time.Time) bool {
	return !s.expires.IsZero() && !now.Before(s.expires)
}

// adopt takes the identity of a cached state for a restore.
func (s *Session) adopt(state *cachedState) {
	s.identifiers = state.Identifiers
	s.identifiedAt = state.IdentifiedAt
	s.expires = time.Time{}
	if state.Expires != 0 {
		s.expires = time.UnixMilli(state.Expires)
	}
}

// cachedState returns the session's state for its restore cache.
func (s *Session) cachedState() cachedState {
	s.mu.Lock()
	defer s.mu.Unlock()
	state := cachedState{
		Identifiers:   s.identifiers,
		IdentifiedAt:  s.identifiedAt,
		Subscriptions: make([]string, 0, s.subs.len()),
		CState:        copyState(s.cstate),
		AppDisconnect: s.appDisconnect,
	}
	if !s.expires.IsZero() {
		// Truncated: the state expires no later than its credential.
		state.Expires = s.expires.UnixMilli()
	}
	for id, sub := range s.subs.all() {
		if !sub.app {
			state.Subscriptions = append(state.Subscriptions, id)
			continue
		}
		if state.Channels == nil {
			state.Channels = map[string]cachedChannel{}
		}
		ch := cachedChannel{State: copyState(sub.state)}
		for _, f := range sub.feeds {
			ch.Streams = append(ch.Streams, f.stream)
		}
		state.Channels[id] = ch
	}
	return state
}

// restore subscribes the session to the cached identifiers, holding their
// live messages until the client asks for history (or Options.RestoreHold passes),
// and returns the identifiers restored. Like subscribe, it stops at
// Options.MaxSubscriptions. The node's subscriptions to their streams are
// made together; an identifier one of whose streams the node cannot
// listen to is not restored (the client subscribes to it again itself).
func (s *Session) restore(state *cachedState) []string {
	s.mu.Lock()
	s.cstate = state.CState
	s.appDisconnect = state.AppDisconnect
	s.mu.Unlock()
	var pending []restoring
	for _, id := range state.Subscriptions {
		route, err := s.node.router.Subscribe(id)
		if err != nil {
			continue
		}
		if r, ok := s.restoreOne(id, builtinSubscription(route, &replay{pending: 1, restored: true}), len(pending)); ok {
			pending = append(pending, r)
		}
	}
	if s.node.opts.App != nil { // else App channels cannot run here
		for id, ch := range state.Channels {
			sub := &subscription{app: true, state: ch.State}
			for _, st := range ch.Streams[:min(len(ch.Streams), maxChannelStreams)] {
				sub.feeds = append(sub.feeds, &feed{stream: st, replay: &replay{pending: 1, restored: true}})
			}
			if r, ok := s.restoreOne(id, sub, len(pending)); ok {
				pending = append(pending, r)
			}
		}
	}
	restored := []string{}
	for _, r := range pending {
		if s.awaitFeeds(r.id, r.sub, r.feeds, r.readies) {
			restored = append(restored, r.id)
			continue
		}
		s.mu.Lock()
		if s.subs.get(r.id) == r.sub {
			s.subs.del(r.id)
		}
		s.mu.Unlock()
	}
	return restored
}

// restoring is a restored subscription whose streams are being subscribed.
type restoring struct {
	id      string
	sub     *subscription
	feeds   []*feed
	readies []*pubsub.Ready
}

// restoreOne adds a restored subscription, unless it is a duplicate or
// over Options.MaxSubscriptions (n are restored already), and starts
// subscribing its streams.
func (s *Session) restoreOne(id string, sub *subscription, n int) (restoring, bool) {
	if max := s.node.opts.MaxSubscriptions; max > 0 && n >= max {
		return restoring{}, false
	}
	s.mu.Lock()
	if _, dup := s.subs.lookup(id); dup {
		s.mu.Unlock()
		return restoring{}, false
	}
	s.subs.set(id, sub)
	s.mu.Unlock()
	feeds := slices.Clone(sub.feeds)
	return restoring{id: id, sub: sub, feeds: feeds, readies: s.startFeeds(id, feeds)}, true
}

// putBack caches a taken state again under its old sid, for a restore that
// could not proceed here.
func (s *Session) putBack(sid string, state *cachedState) {
	data, _ := json.Marshal(state)
	ctx, cancel := s.brokerContext()
	defer cancel()
	if err := s.node.broker.ReturnSession(ctx, sid, data); err != nil {
		s.node.log.Warn("session not cached", "sid", sid, "error", err)
	}
}
