package node

import (
	"encoding/json"

	anycablepb "github.com/cablehub/cablehub/gen/anycable"
)

// connectApp asks the App to identify the session and applies its answer
// as AnyCable does: SUCCESS sends its transmissions (its welcome; none is
// made up) and takes its identifiers and connection state; FAILURE sends
// its transmissions and closes 1000 "Auth Failed"; ERROR, or no answer at
// all, closes 1011 "Auth Error" without a frame. It reports whether the
// session goes on.
func (s *Session) connectApp() bool {
	resp, err := s.node.opts.App.Connect(s.ctx, s.sid, &anycablepb.ConnectionRequest{Env: s.env.proto(nil, nil)})
	status := resp.GetStatus()
	if err != nil || status == anycablepb.Status_ERROR {
		s.node.metrics.FailedAuthsTotal.Inc()
		s.node.log.Warn("RPC connect failed", "sid", s.sid, "error", err, "error_msg", resp.GetErrorMsg())
		s.close(1011, "Auth Error", nil)
		return false
	}
	if status != anycablepb.Status_SUCCESS {
		s.node.metrics.FailedAuthsTotal.Inc()
		s.node.log.Debug("RPC connect refused", "sid", s.sid, "error_msg", resp.GetErrorMsg())
		for _, t := range resp.GetTransmissions() {
			s.Send([]byte(t))
		}
		s.close(1000, "Auth Failed", nil)
		return false
	}
	s.mu.Lock()
	s.cstate = mergeState(nil, resp.GetEnv().GetCstate())
	s.appDisconnect = true
	s.mu.Unlock()
	s.node.identify(s, resp.GetIdentifiers())
	for _, t := range resp.GetTransmissions() {
		s.Send([]byte(t))
	}
	return true
}

// owesDisconnect reports whether the App must hear of the session's end:
// only a session that was welcomed, and then as its DisconnectMode says.
// s.mu is held.
func (s *Session) owesDisconnect() bool {
	if s.node.opts.App == nil || !s.started {
		return false
	}
	switch s.node.opts.AppOptions.DisconnectMode {
	case DisconnectAlways:
		return true
	case DisconnectNever:
		return false
	}
	return s.appDisconnect
}

// disconnectRequest is the Disconnect call for the session as it ends, or
// nil when none is owed: its identifiers, every identifier it was
// subscribed to, and its state: the connection's as cstate, each
// channel's as istate[identifier] = its state map as a JSON object, the
// shape AnyCable sends.
func (s *Session) disconnectRequest(subs *subSet) *anycablepb.DisconnectRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.owesDisconnect() {
		return nil
	}
	req := &anycablepb.DisconnectRequest{Identifiers: s.appIdentifiers(), Env: s.env.proto(s.cstate, nil)}
	for id, sub := range subs.all() {
		req.Subscriptions = append(req.Subscriptions, id)
		if len(sub.state) == 0 {
			continue
		}
		if req.Env.Istate == nil {
			req.Env.Istate = map[string]string{}
		}
		b, _ := json.Marshal(sub.state)
		req.Env.Istate[id] = string(b)
	}
	return req
}

// identify gives a session the identifiers the App returned, indexed for
// remote disconnects.
func (n *Node) identify(s *Session, identifiers string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	s.identifiers = identifiers
	if identifiers == "" {
		return
	}
	set, ok := n.byIdentifier[identifiers]
	if !ok {
		set = map[*Session]struct{}{}
		n.byIdentifier[identifiers] = set
	}
	set[s] = struct{}{}
	n.metrics.ClientsUniqNum.Set(float64(len(n.byIdentifier)))
}

// warnNoApp logs, once per kind, that something needing an application
// back end was refused because there is none, and how to configure one;
// later refusals are logged at debug level.
func (n *Node) warnNoApp(kind, what string) {
	if _, seen := n.noAppWarned.LoadOrStore(kind, true); seen {
		n.log.Debug("refused: no RPC back end", "kind", kind)
		return
	}
	n.log.Warn("no RPC back end configured (--norpc): "+what+"; set --rpc_host to your application's AnyCable RPC server (gRPC host:port or http(s):// URL) to serve them",
		"kind", kind)
}
