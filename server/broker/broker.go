// Package broker keeps what outlives a single delivery: presence (and, as it
// grows, stream history and the session cache). Memory is the single-node
// broker; None keeps nothing, like AnyCable's legacy broker.
package broker

import (
	"encoding/json"
	"errors"
)

// ErrPresenceUnsupported is returned by brokers that keep no presence.
// The API answers it with 501 / UNIMPLEMENTED.
var ErrPresenceUnsupported = errors.New("broker does not support presence")

// ErrPresenceMismatch is returned when a session that already joined a
// stream under one presence id tries to join it under another.
var ErrPresenceMismatch = errors.New("presence ID mismatch")

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
	// Records holds one record per id, sorted by id.
	Records []PresenceRecord
}
