package node

import (
	"encoding/json"

	"github.com/cablehub/cablehub/server/protocol"
)

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
