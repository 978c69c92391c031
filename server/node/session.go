package node

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"cablehub/server/broker"
	"cablehub/server/protocol"
	"cablehub/server/streams"
	"cablehub/server/ws"
)

// restoreHold is how long live messages of restored subscriptions wait for
// the client's history request, so history and live messages arrive in
// order.
const restoreHold = 5 * time.Second

// Session is one connected client.
type Session struct {
	node        *Node
	conn        *ws.Conn
	sid         string
	identifiers string
	extended    bool

	pingInterval  time.Duration
	pingPrecision string
	// lastActivity is when the client last sent a command (unix nanos).
	lastActivity atomic.Int64

	mu     sync.Mutex
	subs   map[string]*subscription
	closed bool
}

// subscription is one identifier the session is subscribed to.
type subscription struct {
	streams.Subscription
	// lastOffset is the offset of the last stamped publication the client
	// got on this subscription: history replays and live messages at or
	// below it are not sent again.
	lastOffset uint64
	// replay, while set, holds live messages back until history has been
	// sent, so the client sees the stream in order.
	replay *replay
}

type replay struct {
	// pending counts history requests in progress, plus one while a
	// restored subscription waits for its first history request.
	pending  int
	restored bool
	held     []heldFrame
}

type heldFrame struct {
	frame  []byte
	offset uint64
}

var tooSlowFrame = protocol.Disconnect(protocol.ReasonTooSlow, true)

// SID is the session id (hub.Subscriber).
func (s *Session) SID() string { return s.sid }

// Send queues a frame. A client too slow to take its frames is disconnected
// here, without slowing the caller.
func (s *Session) Send(frame []byte) {
	s.conn.Send(frame, tooSlowFrame)
}

// Deliver queues a publication's frame for one subscription (hub.Subscriber).
func (s *Session) Deliver(identifier string, p *protocol.Publication, frame []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.subs[identifier]
	if sub == nil {
		return
	}
	if sub.replay != nil {
		sub.replay.held = append(sub.replay.held, heldFrame{frame: frame, offset: p.Offset})
		return
	}
	s.sendOrdered(sub, frame, p.Offset)
}

// sendOrdered sends a publication frame unless the client already has it;
// s.mu is held.
func (s *Session) sendOrdered(sub *subscription, frame []byte, offset uint64) {
	if offset > 0 {
		if offset <= sub.lastOffset {
			return
		}
		sub.lastOffset = offset
	}
	s.Send(frame)
}

// close sends last (if any) and a close frame, then the connection ends.
func (s *Session) close(code int, reason string, last []byte) {
	s.conn.Close(code, reason, last)
}

// start registers the session, welcomes the client and schedules its timers.
// restored lists the identifiers brought back from a cached session (nil
// for a new session).
func (s *Session) start(restored []string) bool {
	if !s.node.register(s) {
		s.close(1001, "Server restart", protocol.Disconnect(protocol.ReasonServerRestart, true))
		return false
	}
	s.conn.OnSlow(func() {
		s.node.metrics.DisconnectedSlowTotal.Inc()
		s.node.log.Debug("disconnecting slow client", "sid", s.sid)
	})
	s.lastActivity.Store(time.Now().UnixNano())
	s.Send(protocol.Welcome(s.sid, restored))
	if s.pingInterval > 0 {
		// Spread the first pings of clients that connect together.
		first := time.Duration(float64(s.pingInterval) * (0.5 + rand.Float64()))
		s.node.timers.add(timer{s: s, kind: timerPing}, first)
	}
	if s.resumable() {
		s.cache()
		s.node.timers.add(timer{s: s, kind: timerTouch}, s.node.opts.SessionsTTL/2)
	}
	if len(restored) > 0 {
		s.node.timers.add(timer{s: s, kind: timerRestoreHold}, restoreHold)
	}
	return true
}

// resumable reports whether the session can be restored after a drop.
func (s *Session) resumable() bool {
	return s.extended && s.node.opts.SessionsTTL > 0
}

// cachedState is what a session's restore needs.
type cachedState struct {
	Identifiers   string   `json:"ids"`
	Subscriptions []string `json:"subs"`
}

// cache stores the session's state for restore.
func (s *Session) cache() {
	s.mu.Lock()
	state := cachedState{Identifiers: s.identifiers, Subscriptions: make([]string, 0, len(s.subs))}
	for id := range s.subs {
		state.Subscriptions = append(state.Subscriptions, id)
	}
	s.mu.Unlock()
	sort.Strings(state.Subscriptions)
	data, _ := json.Marshal(state)
	if err := s.node.broker.CacheSession(context.Background(), s.sid, data); err != nil {
		s.node.log.Warn("session not cached", "sid", s.sid, "error", err)
	}
}

// restore subscribes the session to the cached identifiers, holding their
// live messages until the client asks for history (or restoreHold passes),
// and returns the identifiers restored.
func (s *Session) restore(state *cachedState) []string {
	restored := []string{}
	for _, id := range state.Subscriptions {
		sub, err := s.node.router.Subscribe(id)
		if err != nil {
			continue
		}
		s.mu.Lock()
		if s.subs == nil {
			s.subs = map[string]*subscription{}
		}
		s.subs[id] = &subscription{Subscription: *sub, replay: &replay{pending: 1, restored: true}}
		s.mu.Unlock()
		s.node.subscribe(sub.Stream, id, s)
		restored = append(restored, id)
	}
	return restored
}

// end releases everything the session holds once its connection is gone.
// Presence stays for --presence_ttl, and the session can be restored for
// --sessions_ttl.
func (s *Session) end() {
	s.mu.Lock()
	s.closed = true
	subs := s.subs
	s.mu.Unlock()
	if s.resumable() {
		s.cache()
	}
	for id, sub := range subs {
		s.unsubscribeHub(sub.Stream, id)
	}
	if err := s.node.broker.PresenceDisconnect(context.Background(), s.sid); err != nil {
		s.node.log.Warn("presence not released", "sid", s.sid, "error", err)
	}
	s.node.unregister(s)
}

func (s *Session) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Session) unsubscribeHub(stream, identifier string) {
	s.node.unsubscribe(stream, identifier, s)
}

// onTimer runs a due session timer.
func (n *Node) onTimer(t timer) {
	s := t.s
	if s.isClosed() {
		return
	}
	switch t.kind {
	case timerPongCheck:
		if s.lastActivity.Load() < t.sentAt {
			s.close(1000, "No Pong", protocol.Disconnect(protocol.ReasonNoPong, true))
		}
	case timerTouch:
		s.cache()
		n.timers.add(timer{s: s, kind: timerTouch}, n.opts.SessionsTTL/2)
	case timerRestoreHold:
		s.releaseRestoreHolds()
	case timerPing:
		now := time.Now()
		s.Send(protocol.Ping(timestamp(now, s.pingPrecision)))
		if n.opts.PongTimeout > 0 && s.extended {
			n.timers.add(timer{s: s, kind: timerPongCheck, sentAt: now.UnixNano()}, n.opts.PongTimeout)
		}
		n.timers.add(timer{s: s, kind: timerPing}, s.pingInterval)
	}
}

func timestamp(t time.Time, precision string) int64 {
	switch precision {
	case "ms":
		return t.UnixMilli()
	case "ns":
		return t.UnixNano()
	}
	return t.Unix()
}

// handle runs one client frame. Malformed frames and unknown commands are
// counted and ignored: the connection keeps working.
func (s *Session) handle(frame []byte) {
	m := s.node.metrics
	m.ClientMsgTotal.Inc()
	m.DataRcvdTotal.Add(float64(len(frame)))
	cmd, err := protocol.ParseCommand(frame)
	if err != nil {
		m.FailedClientMsgTotal.Inc()
		s.node.log.Debug("malformed client message", "sid", s.sid, "error", err)
		return
	}
	s.lastActivity.Store(time.Now().UnixNano())
	switch cmd.Command {
	case "subscribe":
		s.subscribe(cmd)
	case "unsubscribe":
		s.unsubscribe(cmd.Identifier)
	case "history":
		s.history(cmd.Identifier, cmd.History, false)
	case "join":
		s.join(cmd.Identifier, cmd.Presence)
	case "leave":
		s.leave(cmd.Identifier)
	case "presence":
		s.presenceInfo(cmd.Identifier)
	case "whisper":
		s.whisper(cmd)
	case "ping":
		s.Send(protocol.Pong())
	case "pong":
	case "message":
		s.perform(cmd)
	default:
		m.FailedClientMsgTotal.Inc()
		s.node.log.Debug("unknown command", "sid", s.sid, "command", cmd.Command)
	}
}

func (s *Session) subscribe(cmd *protocol.Command) {
	identifier := cmd.Identifier
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if _, ok := s.subs[identifier]; ok {
		s.mu.Unlock()
		s.node.log.Debug("already subscribed", "sid", s.sid, "identifier", identifier)
		return
	}
	route, err := s.node.router.Subscribe(identifier)
	if err != nil {
		s.mu.Unlock()
		s.Send(protocol.Reject(identifier))
		return
	}
	if s.subs == nil {
		s.subs = map[string]*subscription{}
	}
	// Live messages are held until the client has its confirmation (and,
	// with a history request, its history), so nothing overtakes them.
	sub := &subscription{Subscription: *route, replay: &replay{pending: 1}}
	withHistory := len(cmd.History) > 0 && string(cmd.History) != "null"
	if withHistory {
		sub.replay.pending++
	}
	s.subs[identifier] = sub
	s.mu.Unlock()
	// Outside s.mu: the hub calls Deliver (which takes s.mu) under its own
	// lock. This also waits until the cluster pub/sub listens to the stream,
	// so a publish the client makes after the confirmation reaches it.
	s.node.subscribe(sub.Stream, identifier, s)
	s.mu.Lock()
	s.Send(protocol.Confirm(identifier))
	s.finishReplay(sub)
	s.mu.Unlock()
	if s.resumable() {
		s.cache()
	}
	if withHistory {
		s.history(identifier, cmd.History, true)
	}
	if len(cmd.Presence) > 0 && string(cmd.Presence) != "null" {
		s.join(identifier, cmd.Presence)
	}
}

func (s *Session) unsubscribe(identifier string) {
	s.mu.Lock()
	sub, ok := s.subs[identifier]
	if ok {
		delete(s.subs, identifier)
	}
	s.mu.Unlock()
	if !ok {
		return
	}
	s.unsubscribeHub(sub.Stream, identifier)
	if sub.Presence {
		s.leaveStream(sub.Stream)
	}
	if s.resumable() {
		s.cache()
	}
}

// historyRequest is the client's history field.
type historyRequest struct {
	Since   int64 `json:"since"`
	Streams map[string]struct {
		Epoch  string `json:"epoch"`
		Offset uint64 `json:"offset"`
	} `json:"streams"`
}

// history sends what the subscription's stream published since the
// client's position, then confirm_history; or reject_history when the
// broker cannot serve it. held tells that the caller already holds the
// subscription's live messages for this request.
func (s *Session) history(identifier string, raw json.RawMessage, held bool) {
	var req historyRequest
	err := json.Unmarshal(raw, &req)
	s.mu.Lock()
	sub := s.subs[identifier]
	if sub == nil {
		s.mu.Unlock()
		return
	}
	pos, hasPos := req.Streams[sub.Stream]
	if err != nil || (req.Since <= 0 && len(req.Streams) == 0) {
		// Nothing to look up: AnyCable only logs such a request.
		s.node.log.Debug("history request without since or streams", "sid", s.sid, "identifier", identifier)
		if held {
			s.finishReplay(sub)
		}
		s.mu.Unlock()
		return
	}
	if !held {
		if sub.replay == nil {
			sub.replay = &replay{}
		}
		sub.replay.pending++
	}
	stream := sub.Stream
	s.mu.Unlock()

	ctx := context.Background()
	var pubs []protocol.Publication
	switch {
	case hasPos:
		pubs, err = s.node.broker.HistoryFrom(ctx, stream, pos.Epoch, pos.Offset)
	case req.Since > 0:
		pubs, err = s.node.broker.HistorySince(ctx, stream, req.Since)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.subs[identifier] != sub {
		return // unsubscribed meanwhile
	}
	if err != nil {
		s.node.log.Debug("history not available", "sid", s.sid, "stream", stream, "error", err)
		s.Send(protocol.RejectHistory(identifier))
	} else {
		for i := range pubs {
			frame := protocol.AppendBroadcast(nil, identifier, &pubs[i], protocol.EncodeMessage(pubs[i].Data))
			s.sendOrdered(sub, frame, pubs[i].Offset)
		}
		s.Send(protocol.ConfirmHistory(identifier))
	}
	// The first history request after a restore also ends its hold.
	if sub.replay.restored {
		sub.replay.restored = false
		sub.replay.pending--
	}
	s.finishReplay(sub)
}

// finishReplay ends one pending replay of sub and, once none is left,
// releases the live messages held meanwhile, skipping what history already
// sent; s.mu is held.
func (s *Session) finishReplay(sub *subscription) {
	r := sub.replay
	if r == nil {
		return
	}
	r.pending--
	if r.pending > 0 {
		return
	}
	sub.replay = nil
	for _, h := range r.held {
		s.sendOrdered(sub, h.frame, h.offset)
	}
}

// releaseRestoreHolds lets live messages of restored subscriptions flow
// when the client did not ask for their history in time.
func (s *Session) releaseRestoreHolds() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sub := range s.subs {
		if sub.replay != nil && sub.replay.restored {
			sub.replay.restored = false
			s.finishReplay(sub)
		}
	}
}

// presenceRequest is the client's presence field of join.
type presenceRequest struct {
	ID   *string         `json:"id"`
	Info json.RawMessage `json:"info"`
}

// join records the client's presence on a subscription's stream; the first
// session of a presence id makes every subscriber get a join event.
func (s *Session) join(identifier string, raw json.RawMessage) {
	stream, ok := s.presenceStream(identifier)
	if !ok || len(raw) == 0 || string(raw) == "null" {
		return
	}
	var req presenceRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		s.node.log.Debug("malformed presence", "sid", s.sid, "error", err)
		return
	}
	id := ""
	if req.ID != nil {
		id = *req.ID
	}
	info := req.Info
	if string(info) == "null" {
		info = nil
	}
	joined, err := s.node.broker.PresenceJoin(context.Background(), stream, s.sid, id, info)
	if err != nil {
		s.node.log.Debug("presence join refused", "sid", s.sid, "stream", stream, "error", err)
		return
	}
	if joined {
		s.node.presenceEvent(stream, id, "join", info)
	}
}

func (s *Session) leave(identifier string) {
	if stream, ok := s.presenceStream(identifier); ok {
		s.leaveStream(stream)
	}
}

func (s *Session) leaveStream(stream string) {
	id, left, err := s.node.broker.PresenceLeave(context.Background(), stream, s.sid)
	if err != nil && !errors.Is(err, broker.ErrPresenceUnsupported) {
		s.node.log.Warn("presence leave failed", "sid", s.sid, "stream", stream, "error", err)
		return
	}
	if left {
		s.node.presenceEvent(stream, id, "leave", nil)
	}
}

// presenceStream returns the stream of a subscription that allows presence.
func (s *Session) presenceStream(identifier string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.subs[identifier]
	if !ok || !sub.Presence {
		return "", false
	}
	return sub.Stream, true
}

// presenceInfo answers the presence command with the stream's records, in
// AnyCable's shape ({"info":..,"id":..} per record); a broker without
// presence, or one that fails, gives {"type":"error","total":0}.
func (s *Session) presenceInfo(identifier string) {
	stream, ok := s.presenceStream(identifier)
	if !ok {
		return
	}
	info, err := s.node.Presence(context.Background(), stream)
	if err != nil {
		s.Send(protocol.Presence(identifier, []byte(`{"type":"error","total":0}`)))
		return
	}
	type record struct {
		Info json.RawMessage `json:"info,omitempty"`
		ID   string          `json:"id"`
	}
	msg := struct {
		Type    string   `json:"type"`
		Total   int      `json:"total"`
		Records []record `json:"records,omitempty"`
	}{Type: "info", Total: info.Total}
	for _, r := range info.Records {
		var normalized json.RawMessage
		if len(r.Info) > 0 {
			normalized = protocol.EncodeMessage(string(r.Info))
		}
		msg.Records = append(msg.Records, record{Info: normalized, ID: r.ID})
	}
	data, _ := json.Marshal(msg)
	s.Send(protocol.Presence(identifier, data))
}

// whisper relays client data to the other subscribers of a stream that
// allows it, as a transient publication that skips the sender.
func (s *Session) whisper(cmd *protocol.Command) {
	s.mu.Lock()
	sub, ok := s.subs[cmd.Identifier]
	s.mu.Unlock()
	if !ok || !sub.Whisper || len(cmd.Data) == 0 {
		return
	}
	pub := protocol.Publication{Stream: sub.Stream, Data: string(cmd.Data), ExcludeSocket: s.sid, Transient: true}
	if err := s.node.Broadcast(context.Background(), []protocol.Publication{pub}); err != nil {
		s.node.log.Warn("whisper not delivered", "sid", s.sid, "error", err)
	}
}

// perform runs a channel action. Performing actions needs an application
// back end in AnyCable and the built-in channels have none, so they are
// dropped like there; only BenchmarkChannel's echo and broadcast are
// performed here.
func (s *Session) perform(cmd *protocol.Command) {
	s.mu.Lock()
	sub, ok := s.subs[cmd.Identifier]
	s.mu.Unlock()
	if !ok || !sub.Benchmark {
		s.node.log.Debug("command not handled", "sid", s.sid, "command", cmd.Command)
		return
	}
	// data is a JSON string holding the action's JSON object.
	var encoded string
	var data map[string]any
	if json.Unmarshal(cmd.Data, &encoded) != nil || json.Unmarshal([]byte(encoded), &data) != nil || data == nil {
		s.node.metrics.FailedClientMsgTotal.Inc()
		return
	}
	switch data["action"] {
	case "echo":
		msg, _ := json.Marshal(data)
		s.Send(protocol.Transmission(cmd.Identifier, msg))
	case "broadcast":
		msg, _ := json.Marshal(data)
		pub := protocol.Publication{Stream: sub.Stream, Data: string(msg), Transient: true}
		if err := s.node.Broadcast(context.Background(), []protocol.Publication{pub}); err != nil {
			s.node.log.Warn("benchmark broadcast not delivered", "sid", s.sid, "error", err)
		}
		data["action"] = "broadcastResult"
		msg, _ = json.Marshal(data)
		s.Send(protocol.Transmission(cmd.Identifier, msg))
	}
}
