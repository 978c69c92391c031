package node

import "encoding/json"

// Observer hears of what happens to the cluster's streams, for webhooks
// (Options.Observer). Each event is reported once in the cluster, by one
// node: occupancy is decided through the broker, joins and leaves where
// the broker says an id's first session came or its last went (or, for a
// node that died, where its expiry is seen), whispers where they were
// sent. The calls are made on the node's own goroutines and must not
// block: an observer queues what it does with them.
type Observer interface {
	// Watches reports whether the observer wants the events of stream;
	// it is called on every subscription change, so must be cheap.
	Watches(stream string) bool
	// Occupied reports a stream's first subscriber in the cluster;
	// Vacated its last one gone (or, when a node dies, its subscribers'
	// departure seen after the presence TTL).
	Occupied(stream string)
	Vacated(stream string)
	// Joined reports a presence id's first session on stream, with its
	// info (nil for none); Left its last session gone.
	Joined(stream, id string, info json.RawMessage)
	Left(stream, id string)
	// Whispered reports a client's whisper published on stream by the
	// session sid (the presence id it is a member as, "" for none), data
	// as published.
	Whispered(stream, sid, member string, data []byte)
}
