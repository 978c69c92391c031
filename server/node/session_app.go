package node

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	anycablepb "github.com/cablehub/cablehub/gen/anycable"
	"github.com/cablehub/cablehub/server/protocol"
	"github.com/cablehub/cablehub/server/pubsub"
)

// Channel state keys with a meaning to the node, as in AnyCable: an App
// sets "$w" to let clients whisper to that stream, and "$p" to the stream
// whose presence the channel joins.
const (
	stateWhisper  = "$w"
	statePresence = "$p"
)

// maxChannelStreams bounds the streams of one subscription: more streams
// in the App's answers are ignored (and logged).
const maxChannelStreams = 256

// whisperStream returns the stream whispers on sub go to, if it allows
// them.
func (sub *subscription) whisperStream() (string, bool) {
	if sub.app {
		st := sub.state[stateWhisper]
		return st, st != ""
	}
	return sub.Stream, sub.Whisper
}

// presenceStream returns the stream whose presence sub joins, if any.
func (sub *subscription) presenceStream() (string, bool) {
	if sub.app {
		st := sub.state[statePresence]
		return st, st != ""
	}
	return sub.Stream, sub.Presence
}

// appIdentifiers is the session's identifiers as the App knows them: an
// anonymous session (--noauth) is {"sid":"<sid>"}, as AnyCable names it.
// s.mu or the session's reader.
func (s *Session) appIdentifiers() string {
	if s.identifiers != "" {
		return s.identifiers
	}
	b, _ := json.Marshal(map[string]string{"sid": s.sid})
	return string(b)
}

// callApp runs one Command for the session with identifier's channel
// state, and returns the App's answer unless it failed or said ERROR
// (then nothing of it applies, as in AnyCable: the command is dropped,
// the connection stays).
func (s *Session) callApp(msg *anycablepb.CommandMessage, istate map[string]string) (*anycablepb.CommandResponse, bool) {
	s.mu.Lock()
	msg.ConnectionIdentifiers = s.appIdentifiers()
	msg.Env = s.env.proto(s.cstate, istate)
	s.mu.Unlock()
	resp, err := s.node.opts.App.Command(s.ctx, s.sid, msg)
	switch {
	case err != nil:
		s.node.log.Log(context.Background(), commandFailureLevel(err), "RPC command failed", "sid", s.sid, "command", msg.Command, "identifier", msg.Identifier, "error", err)
		return nil, false
	case resp.GetStatus() == anycablepb.Status_ERROR:
		s.node.log.Warn("RPC command error", "sid", s.sid, "command", msg.Command, "identifier", msg.Identifier, "error_msg", resp.GetErrorMsg())
		return nil, false
	}
	return resp, true
}

// commandFailureLevel is how loudly a failed Command is logged. A back end
// that is down or slow is reported by the RPC client, once per backoff
// step, and a canceled call is the client leaving: per command those are
// debug lines. Any other failure is the back end answering something
// unusable (a reply over --rpc_max_call_recv_size, not JSON, a non-200),
// which the operator must see: a WARN, as for a failed Connect.
func commandFailureLevel(err error) slog.Level {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

// subscribeApp asks the App to subscribe to a channel the router does not
// know. SUCCESS subscribes with the answer's streams and state; FAILURE
// (the App's reject_subscription) applies the answer except its streams:
// AnyCable attaches them anyway, so broadcasts reached a client under a
// rejected identifier (docs/rails.md, "Different from AnyCable on
// purpose").
func (s *Session) subscribeApp(cmd *protocol.Command) {
	identifier := cmd.Identifier
	resp, ok := s.callApp(&anycablepb.CommandMessage{Command: "subscribe", Identifier: identifier}, nil)
	if !ok {
		return
	}
	s.markAppDisconnect()
	if resp.Status != anycablepb.Status_SUCCESS {
		s.applyReply(identifier, nil, resp, 0)
		return
	}
	withHistory := hasField(cmd.History)
	hold := 1
	if withHistory {
		hold++
	}
	sub := &subscription{app: true}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.subs.set(identifier, sub)
	s.mu.Unlock()
	added := s.applyReply(identifier, sub, resp, hold)
	// The App's transmissions (its confirmation) are out: live messages
	// held meanwhile follow, after the history when one was asked.
	s.mu.Lock()
	s.finishReplays(added)
	s.mu.Unlock()
	s.cacheLater()
	if withHistory {
		s.history(identifier, cmd.History, true)
	}
	if hasField(cmd.Presence) {
		s.join(identifier, cmd.Presence)
	}
}

// unsubscribeApp asks the App to unsubscribe from one of its channels;
// any answer but ERROR ends the subscription (its streams, state and
// presence), then the answer's transmissions go out. On ERROR the
// subscription is kept, as in AnyCable.
func (s *Session) unsubscribeApp(identifier string, sub *subscription) {
	s.mu.Lock()
	state := sub.state
	s.mu.Unlock()
	resp, ok := s.callApp(&anycablepb.CommandMessage{Command: "unsubscribe", Identifier: identifier}, state)
	if !ok {
		return
	}
	s.unsubscribe(identifier)
	s.applyReply(identifier, nil, resp, 0)
}

// performApp sends a channel action to the App. data must be a JSON
// string (Action Cable's encoded action object), as AnyCable requires.
func (s *Session) performApp(cmd *protocol.Command, sub *subscription) {
	var data string
	if json.Unmarshal(cmd.Data, &data) != nil {
		s.node.metrics.FailedClientMsgTotal.Inc()
		s.node.log.Debug("message data is not a JSON string", "sid", s.sid, "identifier", cmd.Identifier)
		return
	}
	s.mu.Lock()
	state := sub.state
	s.mu.Unlock()
	resp, ok := s.callApp(&anycablepb.CommandMessage{Command: "message", Identifier: cmd.Identifier, Data: data}, state)
	if !ok {
		return
	}
	s.applyReply(cmd.Identifier, sub, resp, 0)
}

// applyReply applies an App answer for identifier in AnyCable's order:
// streams stopped, streams added, channel and connection state merged,
// transmissions sent, presence, and a requested disconnect last.
// sub is nil when the answer must not touch a subscription (a refused
// subscribe, an unsubscribe). New feeds hold live messages for hold
// pending replays (none when 0); they are returned so the caller can
// release them.
func (s *Session) applyReply(identifier string, sub *subscription, resp *anycablepb.CommandResponse, hold int) []*feed {
	var removed, added []*feed
	s.mu.Lock()
	if sub != nil && s.subs.get(identifier) == sub && !s.closed {
		removed, added = s.changeFeeds(identifier, sub, resp, hold)
		if st := resp.GetEnv().GetIstate(); len(st) > 0 {
			sub.state = mergeState(sub.state, st)
		}
	}
	if cs := resp.GetEnv().GetCstate(); len(cs) > 0 {
		s.cstate = mergeState(s.cstate, cs)
	}
	s.mu.Unlock()
	for _, f := range removed {
		s.unsubscribeHub(f.stream, identifier)
	}
	if !s.subscribeFeeds(identifier, sub, added) {
		// The node cannot listen to a stream the App attached: the client
		// must not take the App's confirmation for a working subscription.
		s.unavailable()
		return nil
	}
	for _, t := range resp.GetTransmissions() {
		s.Send([]byte(t))
	}
	if p := resp.GetPresence(); p != nil && sub != nil {
		s.appPresence(identifier, sub, p)
	}
	if resp.GetDisconnect() {
		// The App ended the connection: like a remote disconnect, it
		// cannot be undone by a restore without the App's Connect.
		s.revoked.Store(true)
		// AnyCable closes with 1006, which RFC 6455 reserves for a
		// connection lost without a close frame and forbids on the wire;
		// a normal closure tells clients the same.
		s.close(1000, "Command Failed", nil)
	}
	if len(removed)+len(added) > 0 {
		s.cacheLater()
	}
	return added
}

// subscribeFeeds subscribes the node to the streams of feeds, added to
// sub, and waits until it listens to all of them (their round trips
// together). When one fails, every feed of the list is unsubscribed and
// taken out of sub; it reports false.
func (s *Session) subscribeFeeds(identifier string, sub *subscription, feeds []*feed) bool {
	return s.awaitFeeds(identifier, sub, feeds, s.startFeeds(identifier, feeds))
}

// startFeeds subscribes the node to the streams of feeds; awaitFeeds
// waits for the outcome.
func (s *Session) startFeeds(identifier string, feeds []*feed) []*pubsub.Ready {
	readies := make([]*pubsub.Ready, len(feeds))
	for i, f := range feeds {
		readies[i] = s.node.subscribe(f.stream, identifier, s)
	}
	return readies
}

// awaitFeeds waits for the subscriptions startFeeds made; see
// subscribeFeeds.
func (s *Session) awaitFeeds(identifier string, sub *subscription, feeds []*feed, readies []*pubsub.Ready) bool {
	ok := true
	for i, r := range readies {
		<-r.Done()
		if err := r.Err(); err != nil {
			if ok {
				s.node.subscriptionFailed(feeds[i].stream, err)
			}
			ok = false
		}
	}
	if ok {
		return true
	}
	for _, f := range feeds {
		s.unsubscribeHub(f.stream, identifier)
	}
	s.mu.Lock()
	sub.feeds = slices.DeleteFunc(sub.feeds, func(f *feed) bool { return slices.Contains(feeds, f) })
	s.mu.Unlock()
	return false
}

// changeFeeds removes the feeds the answer stops and adds those it
// starts; s.mu is held.
func (s *Session) changeFeeds(identifier string, sub *subscription, resp *anycablepb.CommandResponse, hold int) (removed, added []*feed) {
	keep := sub.feeds[:0]
	for _, f := range sub.feeds {
		stop := resp.GetStopStreams()
		for _, st := range resp.GetStoppedStreams() {
			stop = stop || st == f.stream
		}
		if stop {
			removed = append(removed, f)
		} else {
			keep = append(keep, f)
		}
	}
	clear(sub.feeds[len(keep):])
	sub.feeds = keep
	for _, st := range resp.GetStreams() {
		if st == "" || sub.feed(st) != nil {
			continue
		}
		if len(sub.feeds) >= maxChannelStreams {
			s.node.log.Warn("too many streams for one subscription; ignoring the rest", "sid", s.sid, "identifier", identifier, "limit", maxChannelStreams)
			break
		}
		f := &feed{stream: st}
		if hold > 0 {
			f.replay = &replay{pending: hold}
		}
		sub.feeds = append(sub.feeds, f)
		added = append(added, f)
	}
	return removed, added
}

// appPresence applies the presence part of an App answer: a join or
// leave of the channel's presence stream, "$p" in its state. Without
// one the part is ignored with a warning, as AnyCable does.
func (s *Session) appPresence(identifier string, sub *subscription, p *anycablepb.PresenceResponse) {
	s.mu.Lock()
	stream, ok := sub.presenceStream()
	s.mu.Unlock()
	if !ok {
		s.node.log.Warn("RPC presence ignored: the channel state has no presence stream ($p)", "sid", s.sid, "identifier", identifier)
		return
	}
	switch p.GetType() {
	case "join":
		var info json.RawMessage
		if p.GetInfo() != "" {
			raw := p.GetInfo()
			if !json.Valid([]byte(raw)) {
				quoted, _ := json.Marshal(raw)
				raw = string(quoted)
			}
			if max := s.node.opts.MaxPresenceInfo; max > 0 && len(raw) > max {
				s.refuseJoin(identifier, reasonPresenceInfoTooLarge)
				return
			}
			info = protocol.EncodeMessage(raw)
		}
		s.joinStream(identifier, stream, p.GetId(), info, "")
	case "leave":
		s.leaveStream(stream)
	default:
		s.node.log.Warn("RPC presence type unknown", "sid", s.sid, "type", p.GetType())
	}
}

// markAppDisconnect records that the App answered for this session, which
// makes it owed a Disconnect in DisconnectAuto mode.
func (s *Session) markAppDisconnect() {
	s.mu.Lock()
	s.appDisconnect = true
	s.mu.Unlock()
}
