// Package pubsub carries publications and remote commands between the
// nodes of a cluster: Local loops them back inside one process, Redis and
// NATS deliver them to every node. Each node listens to a stream only while
// it has subscribers of its own. Publications travel as protocol stream
// messages (protocol.AppendStreamMessage).
package pubsub

import (
	"encoding/json"
	"sync"

	"github.com/cablehub/cablehub/server/protocol"
)

// InternalChannel carries remote commands to every node, as in AnyCable.
const InternalChannel = "__anycable_internal__"

// Handler receives what arrives from the cluster, this node's own
// publications included. Calls come from one goroutine, in arrival order.
type Handler interface {
	HandlePublication(p *protocol.Publication)
	HandleCommand(c *Command)
	// HandleResubscribed says the node listens to streams again after a
	// lost connection: publications made meanwhile never reached it.
	HandleResubscribed(streams []string)
}

// Command is a remote command; only "disconnect" exists. On the wire it
// is AnyCable's remote command message,
// {"command":"disconnect","payload":{"identifier":…,"reconnect":…}}, so
// AnyCable and Cablehub nodes sharing a Redis or NATS pub/sub during a
// migration carry out each other's disconnects; the flat form earlier
// Cablehub versions sent ({"command","identifier","reconnect"}) is still
// read, for rolling upgrades.
type Command struct {
	Command    string
	Identifier string
	Reconnect  bool
}

type commandPayload struct {
	Identifier string `json:"identifier"`
	Reconnect  bool   `json:"reconnect"`
}

type commandMessage struct {
	Command    string          `json:"command"`
	Payload    *commandPayload `json:"payload,omitempty"`
	Identifier string          `json:"identifier,omitempty"`
	Reconnect  bool            `json:"reconnect,omitempty"`
}

// MarshalJSON encodes c as AnyCable's remote command message.
func (c Command) MarshalJSON() ([]byte, error) {
	return json.Marshal(commandMessage{Command: c.Command, Payload: &commandPayload{Identifier: c.Identifier, Reconnect: c.Reconnect}})
}

// UnmarshalJSON reads AnyCable's remote command message, or the flat form.
func (c *Command) UnmarshalJSON(b []byte) error {
	var m commandMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*c = Command{Command: m.Command, Identifier: m.Identifier, Reconnect: m.Reconnect}
	if m.Payload != nil {
		c.Identifier, c.Reconnect = m.Payload.Identifier, m.Payload.Reconnect
	}
	return nil
}

// interest counts local subscriptions per stream, so a cluster pub/sub
// subscribes to a stream on the first and unsubscribes on the last. apply
// runs under the lock, which keeps subscribe and unsubscribe commands in
// the order the counts changed.
type interest struct {
	mu     sync.Mutex
	counts map[string]int
}

func (i *interest) add(stream string, apply func(stream string)) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.counts == nil {
		i.counts = map[string]int{}
	}
	i.counts[stream]++
	if i.counts[stream] == 1 {
		apply(stream)
	}
}

// streams lists the streams with local subscriptions.
func (i *interest) streams() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	out := make([]string, 0, len(i.counts))
	for s := range i.counts {
		out = append(out, s)
	}
	return out
}

func (i *interest) remove(stream string, apply func(stream string)) {
	i.mu.Lock()
	defer i.mu.Unlock()
	n, ok := i.counts[stream]
	if !ok {
		return
	}
	if n <= 1 {
		delete(i.counts, stream)
		apply(stream)
		return
	}
	i.counts[stream] = n - 1
}
