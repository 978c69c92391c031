package node

import (
	"encoding/json"

	"github.com/cablehub/cablehub/server/protocol"
)

// perform runs a channel action: the App performs it (for built-in
// channels too, as in AnyCable, whose built-in controllers pass actions
// on), except BenchmarkChannel's echo and broadcast, performed here.
// Without an App, actions are dropped.
func (s *Session) perform(cmd *protocol.Command) {
	s.mu.Lock()
	sub, ok := s.subs.lookup(cmd.Identifier)
	s.mu.Unlock()
	switch {
	case ok && !sub.Benchmark && s.node.opts.App != nil:
		s.performApp(cmd, sub)
		return
	case !ok || !sub.Benchmark:
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
		ctx, cancel := s.brokerContext()
		defer cancel()
		if err := s.node.Broadcast(ctx, []protocol.Publication{pub}); err != nil {
			s.node.log.Warn("benchmark broadcast not delivered", "sid", s.sid, "error", err)
		}
		data["action"] = "broadcastResult"
		msg, _ = json.Marshal(data)
		s.Send(protocol.Transmission(cmd.Identifier, msg))
	}
}
