package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"
)

// occupancyPrefix starts the broker streams where nodes record their
// occupancy of watched streams. A client may name such a stream too, but
// its presence there is under its own sid and an id it cannot know
// (Options.OccupancyID), so it never counts as a node's.
const occupancyPrefix = "\x00occupancy\x00"

// countPrefix starts the broker streams where each node records, as a
// presence of its own (its sid as the id), how many subscribers it has of
// a watched stream: the records' sum is the cluster's count.
const countPrefix = "\x00count\x00"

// occupancy tells the Observer when a watched stream gets its first
// subscriber in the cluster and when its last one goes. Each node records
// in the broker, as a presence of its own (sid) under the cluster's
// OccupancyID, which watched streams it has subscribers of: the broker's
// join reports whether that id was new on the stream (so the first node
// reports Occupied) and its leave whether it was the id's last session
// (the last node reports Vacated); a dead node's record expires after the
// presence TTL, and the node that sees it expire reports Vacated.
//
// The hub's transitions are recorded at once (set) and sent to the broker
// by one goroutine (run), so a stream's transitions reach it in order:
// only the latest wanted state of each stream is kept, and the goroutine
// brings the broker to it. A node's first subscription of a stream waits
// until its record is in (see Node.subscribe): a subscriber confirmed on
// one node is on record before another node's last one can leave, so the
// stream is not seen vacated and occupied again meanwhile.
type occupancy struct {
	n   *Node
	sid string
	id  string

	mu sync.Mutex
	// want holds the streams whose wanted state changed since run last
	// looked; told the streams the broker has this node's record on.
	want map[string]*wanted
	told map[string]struct{}
	wake chan struct{}
	// counted holds the subscriber counts the broker has of this node
	// (run's alone).
	counted map[string]int
}

// wanted is a stream's latest wanted state (true: occupied here), with
// the channels to close once the broker has it.
type wanted struct {
	occupied bool
	done     []chan struct{}
}

func newOccupancy(n *Node, id string) *occupancy {
	var b [9]byte
	rand.Read(b[:])
	return &occupancy{
		n:    n,
		sid:  occupancyPrefix + "node-" + hex.EncodeToString(b[:]),
		id:   id,
		want: map[string]*wanted{},
		told: map[string]struct{}{},
		wake: make(chan struct{}, 1),

		counted: map[string]int{},
	}
}

// set records that the node now has (or no longer has) subscribers of
// stream, or that their number changed. With wait, for a watched stream,
// it returns a channel closed once the broker has the change (or it
// failed); nil otherwise.
func (o *occupancy) set(stream string, occupied, wait bool) <-chan struct{} {
	if !o.n.opts.Observer.Watches(stream) {
		return nil
	}
	var done chan struct{}
	o.mu.Lock()
	w := o.want[stream]
	if w == nil {
		w = &wanted{}
		o.want[stream] = w
	}
	w.occupied = occupied
	if wait {
		done = make(chan struct{})
		w.done = append(w.done, done)
	}
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return done
}

// run brings the broker to the wanted states until ctx is done.
func (o *occupancy) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.wake:
		}
		o.mu.Lock()
		pending := o.want
		o.want = map[string]*wanted{}
		o.mu.Unlock()
		for stream, w := range pending {
			if ctx.Err() == nil {
				o.apply(ctx, stream, w.occupied)
				o.recount(ctx, stream)
			}
			for _, done := range w.done {
				close(done)
			}
		}
	}
}

// apply records (or removes) this node's occupancy of stream in the
// broker and reports the cluster's transition if it made one. A broker
// error is logged and the change dropped: webhooks are best-effort, and
// the record expires with the node anyway.
func (o *occupancy) apply(ctx context.Context, stream string, occupied bool) {
	_, told := o.told[stream]
	if occupied == told {
		return
	}
	if !o.n.broker.SupportsPresence() {
		// A broker without presence keeps nothing for the cluster: a
		// node's transitions are the only ones it can tell.
		o.local(stream, occupied)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, brokerTimeout)
	defer cancel()
	key := occupancyPrefix + stream
	if occupied {
		first, err := o.n.broker.PresenceJoin(ctx, key, o.sid, o.id, nil)
		if err != nil {
			o.n.log.Warn("stream occupancy not recorded", "stream", stream, "error", err)
			return
		}
		o.told[stream] = struct{}{}
		if first {
			o.n.opts.Observer.Occupied(stream)
		}
		return
	}
	delete(o.told, stream)
	_, last, err := o.n.broker.PresenceLeave(ctx, key, o.sid)
	if err != nil {
		o.n.log.Warn("stream occupancy not released", "stream", stream, "error", err)
		return
	}
	if last {
		o.n.opts.Observer.Vacated(stream)
	}
}

func (o *occupancy) local(stream string, occupied bool) {
	if occupied {
		o.told[stream] = struct{}{}
		o.n.opts.Observer.Occupied(stream)
		return
	}
	delete(o.told, stream)
	o.n.opts.Observer.Vacated(stream)
}

// recount records this node's number of subscribers of stream, when it
// changed, in the broker (none: the record goes).
func (o *occupancy) recount(ctx context.Context, stream string) {
	if !o.n.broker.SupportsPresence() {
		return
	}
	n := o.n.hub.Count(stream)
	if o.counted[stream] == n {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, brokerTimeout)
	defer cancel()
	key := countPrefix + stream
	var err error
	if n == 0 {
		_, _, err = o.n.broker.PresenceLeave(ctx, key, o.sid)
		delete(o.counted, stream)
	} else {
		_, err = o.n.broker.PresenceJoin(ctx, key, o.sid, o.sid, json.RawMessage(strconv.Itoa(n)))
		o.counted[stream] = n
	}
	if err != nil {
		o.n.log.Warn("stream subscriber count not recorded", "stream", stream, "error", err)
		delete(o.counted, stream) // written again at the next change
	}
}

// expired reports stream's occupancy records gone with their node: when
// it was the last, the stream is vacated. A node's count record going is
// not an event.
func (o *occupancy) expired(key, id string) bool {
	if strings.HasPrefix(key, countPrefix) {
		return true
	}
	stream, ok := strings.CutPrefix(key, occupancyPrefix)
	if !ok {
		return false
	}
	if id == o.id {
		o.n.opts.Observer.Vacated(stream)
	}
	return true
}

// release drops this node's records once run has returned, so the
// streams it alone occupied are vacated now rather than after the
// presence TTL.
func (o *occupancy) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for stream := range o.told {
		if ctx.Err() != nil {
			return
		}
		o.apply(ctx, stream, false)
	}
	for stream := range o.counted {
		if ctx.Err() != nil {
			return
		}
		o.n.broker.PresenceLeave(ctx, countPrefix+stream, o.sid)
	}
}

// presenceLister is a broker that lists its streams with presence
// (broker.Memory, broker.Redis).
type presenceLister interface {
	PresenceStreams(ctx context.Context, prefix string, limit int) ([]string, error)
}

// OccupiedStreams lists the streams whose names start with prefix that
// have subscribers on some node of the cluster, as the nodes' occupancy
// records in the broker say (at most limit, in no particular order): only
// streams the Observer watches, and a record trails its node's first
// subscription by a broker round trip. ok is false when the node keeps no
// records (no Observer) or the broker cannot list them.
func (n *Node) OccupiedStreams(ctx context.Context, prefix string, limit int) (streams []string, ok bool, err error) {
	lister, can := n.broker.(presenceLister)
	if n.occupancy == nil || !can || !n.broker.SupportsPresence() {
		return nil, false, nil
	}
	keys, err := lister.PresenceStreams(ctx, occupancyPrefix+prefix, limit)
	if err != nil {
		return nil, true, err
	}
	streams = make([]string, len(keys))
	for i, k := range keys {
		streams[i] = strings.TrimPrefix(k, occupancyPrefix)
	}
	return streams, true, nil
}

// Subscriptions is the number of subscribers of stream in the cluster, as
// the nodes' count records in the broker say (Options.Observer watching
// it; a record trails its node's changes by a broker round trip), or, when
// the node keeps no records (no Observer, a broker without presence),
// this node's.
func (n *Node) Subscriptions(ctx context.Context, stream string) (int, error) {
	if n.occupancy == nil || !n.broker.SupportsPresence() || !n.opts.Observer.Watches(stream) {
		return n.hub.Count(stream), nil
	}
	info, err := n.broker.PresenceInfo(ctx, countPrefix+stream)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, r := range info.Records {
		c, _ := strconv.Atoi(string(r.Info))
		total += c
	}
	return total, nil
}
