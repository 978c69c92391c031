// Package broker keeps what outlives a single delivery: stream history with
// offsets and epochs, presence, and the session cache used to restore
// sessions; and it stamps publications and publishes them in offset order
// (StampAndPublish, through a Publisher: the node's pub/sub). Memory is the
// single-node broker, Redis and NATS (JetStream) serve clusters; None keeps
// nothing, like AnyCable's legacy broker.
//
// The contract they share is node.Broker, documented there method by
// method, by the package that relies on it. Every method takes a context
// and may fail, so that callers make no assumption that the broker lives
// in-process (a Redis broker does not).
package broker

import (
	"encoding/json"
	"errors"
)

// Errors callers tell apart.
var (
	// ErrPresenceUnsupported: the broker keeps no presence (REST/gRPC 501).
	ErrPresenceUnsupported = errors.New("broker does not support presence")
	// ErrPresenceMismatch: a session that joined a stream under one
	// presence id tried to join it under another.
	ErrPresenceMismatch = errors.New("presence ID mismatch")
	// ErrPresenceFull: the stream already has MemoryOptions.PresenceMaxMembers
	// presence ids and the join would add one more.
	ErrPresenceFull = errors.New("presence stream is full")
	// ErrHistoryUnsupported: the broker keeps no history.
	ErrHistoryUnsupported = errors.New("broker does not keep history")
	// ErrHistoryUnavailable: the requested position cannot be served (wrong
	// epoch, unknown stream, offset outside what is retained).
	ErrHistoryUnavailable = errors.New("history not available for that position")
	// ErrSessionNotFound: no cached session under that sid.
	ErrSessionNotFound = errors.New("session not found")
)

// PresenceRecord is one presence id on a stream.
type PresenceRecord struct {
	ID string
	// Info is the JSON value of the latest join, nil when none was given.
	Info json.RawMessage
}

// PresenceInfo is who is present on a stream.
type PresenceInfo struct {
	// Total is the number of unique presence ids.
	Total int
	// Sessions is the number of sessions present under those ids (an id
	// may have several: a user with two tabs).
	Sessions int
	// Records holds one record per id, sorted by id.
	Records []PresenceRecord
}

// PresenceLeft reports a presence id that left a stream because its last
// session's record expired.
type PresenceLeft struct {
	Stream string
	ID     string
}
