package node

import (
	"errors"

	"github.com/cablehub/cablehub/server/protocol"
	"github.com/cablehub/cablehub/server/pubsub"
	"github.com/cablehub/cablehub/server/streams"
)

// subscribe runs the client's subscribe command: a built-in channel is
// decided by the router and confirmed once the node listens to its
// stream; an application channel goes to the App.
func (s *Session) subscribe(cmd *protocol.Command) {
	identifier := cmd.Identifier
	if reject, ok := s.canSubscribe(identifier); !ok {
		if reject {
			s.Send(protocol.Reject(identifier))
		}
		return
	}
	// Decided outside s.mu, so a failure in the router cannot leave the
	// session locked.
	route, err := s.route(cmd)
	if errors.Is(err, streams.ErrNotRouted) && s.router == nil {
		if s.node.opts.App != nil {
			s.subscribeApp(cmd)
			return
		}
		s.node.warnNoApp("channel", "subscriptions to application channels are rejected")
	}
	if err != nil {
		s.Send(protocol.Reject(identifier))
		return
	}
	// Live messages are held until the client has its confirmation (and,
	// with a history request, its history), so nothing overtakes them.
	sub := builtinSubscription(route, &replay{pending: 1})
	withHistory := hasField(cmd.History)
	if withHistory {
		sub.feeds[0].replay.pending++
	}
	s.mu.Lock()
	s.subs.set(identifier, sub)
	s.mu.Unlock()
	// Outside s.mu: the hub calls Deliver (which takes s.mu) under its own
	// lock. The confirmation waits until the cluster pub/sub listens to the
	// stream, so a publish the client makes after it reaches the client;
	// meanwhile the session goes on with the client's next commands. When
	// the pub/sub cannot listen, the client is not confirmed to a stream
	// that would bring it nothing (see unavailable).
	s.whenReady(s.node.subscribe(sub.Stream, identifier, s), func(err error) {
		if err != nil {
			s.node.subscriptionFailed(sub.Stream, err)
			s.dropSubscription(identifier, sub)
			s.unavailable()
			return
		}
		s.mu.Lock()
		current := s.subs.get(identifier) == sub && !s.closed
		s.mu.Unlock()
		if !current {
			return // unsubscribed (or ended) meanwhile
		}
		// A member joins, and gets the members, before its confirmation
		// releases the live messages held meanwhile: a join event the
		// roster missed comes after it, not before (the client would take
		// the roster as the whole truth and lose that member).
		if route.Member != nil && !s.joinMember(identifier, sub.Stream, route.Member) {
			s.dropSubscription(identifier, sub)
			return
		}
		s.confirm(identifier, sub)
		s.cacheLater()
		if withHistory {
			s.history(identifier, cmd.History, true)
		}
		if route.Member == nil && hasField(cmd.Presence) {
			s.join(identifier, cmd.Presence)
		}
	})
}

// route decides a subscription: by the transport's router when it has
// one, else by the node's built-in channels.
func (s *Session) route(cmd *protocol.Command) (*streams.Subscription, error) {
	if s.router != nil {
		return s.router.Route(s.sid, cmd)
	}
	return s.node.router.Subscribe(cmd.Identifier)
}

// whenReady runs then with ready's outcome: at once when it is known (the
// node listens to the stream already), else on a goroutine of its own once
// it is.
func (s *Session) whenReady(ready *pubsub.Ready, then func(error)) {
	select {
	case <-ready.Done():
		then(ready.Err())
	default:
		go func() {
			defer s.recoverPanic("subscription")
			<-ready.Done()
			then(ready.Err())
		}()
	}
}

// dropSubscription takes sub, still the session's under identifier, out of
// the session, the hub and the pub/sub's count.
func (s *Session) dropSubscription(identifier string, sub *subscription) {
	s.mu.Lock()
	owned := s.subs.get(identifier) == sub
	if owned {
		s.subs.del(identifier)
	}
	s.mu.Unlock()
	if owned {
		for _, f := range sub.feeds {
			s.unsubscribeHub(f.stream, identifier)
		}
	}
}

var unavailableFrame = protocol.Disconnect(protocol.ReasonStreamUnavailable, true)

// unavailable ends a session whose subscription the node cannot listen to
// (its pub/sub is down, or did not confirm in time). Refusing the
// subscription would tell the client it is not allowed, which clients
// take as final; the outage is not: the client reconnects with its
// backoff, restores its session and subscribes again.
func (s *Session) unavailable() {
	s.close(1000, "", unavailableFrame)
}

// hasField reports whether an optional JSON field of a command was given.
func hasField(raw []byte) bool {
	return len(raw) > 0 && string(raw) != "null"
}

// unsubscribeCommand runs the client's unsubscribe: the App decides for
// its channels, built-in ones end here.
func (s *Session) unsubscribeCommand(identifier string) {
	s.mu.Lock()
	sub := s.subs.get(identifier)
	s.mu.Unlock()
	if sub != nil && sub.app {
		s.unsubscribeApp(identifier, sub)
		return
	}
	s.unsubscribe(identifier)
}

// unsubscribe ends a subscription: its streams, its presence, its place in
// the restore cache.
func (s *Session) unsubscribe(identifier string) {
	s.mu.Lock()
	sub, ok := s.subs.lookup(identifier)
	if ok {
		s.subs.del(identifier)
	}
	s.mu.Unlock()
	if !ok {
		return
	}
	for _, f := range sub.feeds {
		s.unsubscribeHub(f.stream, identifier)
	}
	if stream, ok := sub.presenceStream(); ok {
		s.leaveStream(stream)
	}
	s.cacheLater()
}

// whisper relays client data to the other subscribers of a stream that
// allows it, as a transient publication that skips the sender.
func (s *Session) whisper(cmd *protocol.Command) {
	s.mu.Lock()
	var stream string
	sub, ok := s.subs.lookup(cmd.Identifier)
	if ok {
		stream, ok = sub.whisperStream()
	}
	s.mu.Unlock()
	if !ok || len(cmd.Data) == 0 {
		return
	}
	data := []byte(cmd.Data)
	if tagger, ok := s.codec.(whisperTagger); ok && sub.Member != nil {
		data = tagger.TagWhisper(data, sub.Member.ID)
	}
	pub := protocol.Publication{Stream: stream, Data: string(data), ExcludeSocket: s.sid, Transient: true}
	ctx, cancel := s.brokerContext()
	defer cancel()
	if err := s.node.Broadcast(ctx, []protocol.Publication{pub}); err != nil {
		s.node.log.Warn("whisper not delivered", "sid", s.sid, "error", err)
		return
	}
	if o := s.node.opts.Observer; o != nil && o.Watches(stream) {
		member := ""
		if sub.Member != nil {
			member = sub.Member.ID
		}
		o.Whispered(stream, s.sid, member, data)
	}
}

// canSubscribe checks that identifier may be subscribed: ok is false for a
// closed session, an identifier already subscribed (ignored, as in
// AnyCable) and over Options.MaxSubscriptions (reject set: the client is
// told).
func (s *Session) canSubscribe(identifier string) (reject, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch _, dup := s.subs.lookup(identifier); {
	case s.closed:
		return false, false
	case dup:
		s.node.log.Debug("already subscribed", "sid", s.sid, "identifier", identifier)
		return false, false
	}
	if max := s.node.opts.MaxSubscriptions; max > 0 && s.subs.len() >= max {
		s.node.metrics.FailedClientMsgTotal.Inc()
		s.node.log.Debug("subscription limit reached", "sid", s.sid, "limit", max)
		return true, false
	}
	return false, true
}
