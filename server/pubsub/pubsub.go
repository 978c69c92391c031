// Package pubsub carries publications and remote commands between the
// nodes of a cluster: Local loops them back inside one process, Redis and
// NATS deliver them to every node. Each node listens to a stream only while
// it has subscribers of its own. Publications travel as protocol stream
// messages (protocol.AppendStreamMessage).
package pubsub

import (
	"encoding/json"
	"sync"
	"sync/atomic"

	"github.com/cablehub/cablehub/server/protocol"
)

// InternalChannel carries remote commands to every node, as in AnyCable.
const InternalChannel = "__anycable_internal__"

// ClusterChannel carries the nodes' messages to each other (announcements,
// queries and answers; see package cluster). It is Cablehub's own, so
// AnyCable nodes sharing the pub/sub never see them; like InternalChannel
// no stream name reaches it (streams have channels of their own: see
// RedisNames, NATSStreamSubjectPrefix).
const ClusterChannel = "__cablehub_cluster__"

// Handler receives what arrives from the cluster, this node's own
// publications included. Calls come from one goroutine, in arrival order.
type Handler interface {
	HandlePublication(p *protocol.Publication)
	HandleCommand(c *Command)
	// HandleInterrupted says the node's connection to the pub/sub dropped:
	// publications made from now on, and some made just before, may not
	// reach it. It comes before anything the connection delivers once it
	// is back.
	HandleInterrupted()
	// HandleResubscribed says the node listens to streams again after a
	// lost connection: publications made meanwhile never reached it.
	HandleResubscribed(streams []string)
	// HandleCluster takes a message of ClusterChannel, as published
	// (PublishCluster), this node's own included. It must not block.
	HandleCluster(payload []byte)
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

// Ready says when a subscription of the node to a stream took effect: Done
// is closed once the pub/sub server has it (a publication made after that
// reaches the node), or once it failed; Err then says which. Every caller
// that counted a subscription to the stream while it was being made
// shares one Ready.
type Ready struct {
	done chan struct{}
	once sync.Once
	err  error
}

// NewReady returns a Ready that is not done until Finish is called: for a
// pub/sub that confirms subscriptions.
func NewReady() *Ready { return &Ready{done: make(chan struct{})} }

// ReadyNow returns a Ready that is done with err: for a pub/sub that has
// nothing to wait for (Local), or an outcome known already.
func ReadyNow(err error) *Ready {
	r := NewReady()
	r.Finish(err)
	return r
}

// Done is closed once the subscription took effect or failed.
func (r *Ready) Done() <-chan struct{} { return r.done }

// Err is nil when the subscription took effect, the reason it did not
// otherwise; it is valid once Done is closed.
func (r *Ready) Err() error { return r.err }

// Finish settles r with err; later calls do nothing.
func (r *Ready) Finish(err error) {
	r.once.Do(func() {
		r.err = err
		close(r.done)
	})
}

// interest counts local subscriptions per stream, so a cluster pub/sub
// subscribes to a stream on the first and unsubscribes on the last. Each
// stream has a lock of its own, held while its subscribe or unsubscribe is
// sent, so they reach the server in the order its count changed; the wait
// for the server's confirmation happens outside it, so neither other
// streams nor more subscriptions (of one connection, or many) wait for one
// another's round trips. Every subscriber of a stream whose subscription
// is still being made shares its Ready: none is confirmed before the node
// listens (its client may publish right after the confirmation).
type interest struct {
	mu      sync.Mutex
	streams map[string]*streamInterest
}

// streamInterest is one stream's count and current subscription. users
// counts the callers between their lookup and their update, so the entry
// is dropped only when no one holds it and nothing is subscribed. count
// changes under mu and is read without it.
type streamInterest struct {
	mu      sync.Mutex
	count   atomic.Int64
	current *Ready // guarded by mu; nil while count is 0
	users   int    // guarded by interest.mu
}

// acquire returns stream's entry, made when missing, held by the caller
// until release.
func (i *interest) acquire(stream string) *streamInterest {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.streams == nil {
		i.streams = map[string]*streamInterest{}
	}
	e, ok := i.streams[stream]
	if !ok {
		e = &streamInterest{}
		i.streams[stream] = e
	}
	e.users++
	return e
}

// release ends the caller's hold of e.
func (i *interest) release(stream string, e *streamInterest) {
	i.mu.Lock()
	defer i.mu.Unlock()
	e.users--
	if e.users == 0 && e.count.Load() == 0 {
		delete(i.streams, stream)
	}
}

// add counts a subscription to stream; the first one sends the
// subscription with subscribe, which calls done with the outcome once the
// server answered (or did not in time). The subscription is counted
// whatever the outcome: a caller whose Ready fails removes it again.
func (i *interest) add(stream string, subscribe func(stream string, done func(error))) *Ready {
	e := i.acquire(stream)
	defer i.release(stream, e)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.count.Add(1)
	if e.current == nil {
		r := NewReady()
		e.current = r
		subscribe(stream, r.Finish)
	}
	return e.current
}

// remove counts a subscription to stream gone; the last one runs
// unsubscribe. A stream without subscriptions is ignored.
func (i *interest) remove(stream string, unsubscribe func(stream string)) {
	e := i.acquire(stream)
	defer i.release(stream, e)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.count.Load() == 0 {
		return
	}
	if e.count.Add(-1) == 0 {
		e.current = nil
		unsubscribe(stream)
	}
}

// list returns the streams with local subscriptions.
func (i *interest) list() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	out := make([]string, 0, len(i.streams))
	for s, e := range i.streams {
		if e.count.Load() > 0 {
			out = append(out, s)
		}
	}
	return out
}
