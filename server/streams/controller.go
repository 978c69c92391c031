package streams

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/cablehub/cablehub/server/internal/plainjson"
)

// Channel names routed to the built-in controller.
const (
	PubSubChannel = "$pubsub"
	TurboChannel  = "Turbo::StreamsChannel"
	// BenchmarkChannel is the channel Action Cable benchmarks (websocket-bench,
	// websocket-shootout) drive: every subscriber streams from BenchmarkStream,
	// "echo" transmits the data back, "broadcast" publishes it to the stream
	// and transmits it back as "broadcastResult".
	BenchmarkChannel = "BenchmarkChannel"
	BenchmarkStream  = "all"
)

// ErrRejected means the subscription must be rejected.
var ErrRejected = errors.New("subscription rejected")

// ErrNotRouted means the identifier names no built-in channel (or one
// that is turned off, or is not JSON): the application back end decides
// it when there is one, as in AnyCable, else it is rejected. It wraps
// ErrRejected.
var ErrNotRouted = fmt.Errorf("%w: not a built-in channel", ErrRejected)

// Config holds the stream options, named after AnyCable's flags.
type Config struct {
	// Secret verifies $pubsub signed stream names (--streams_secret, falling
	// back to --secret).
	Secret string
	// Public allows $pubsub subscriptions by plain stream_name
	// (--public_streams).
	Public bool
	// Reserved, when set, names the streams a plain stream_name may not
	// reach even when Public: those another protocol authorizes itself
	// (Pusher's private, presence and user channels). Signed names, which
	// only the application makes, still may.
	Reserved func(name string) bool
	// Whisper allows whispers on signed streams (--streams_whisper); public
	// streams always allow them.
	Whisper bool
	// Presence allows presence on $pubsub streams (--streams_presence).
	Presence bool
	// Turbo enables Turbo::StreamsChannel (--turbo_streams), verified with
	// TurboSecret (--turbo_streams_secret, falling back to Secret).
	Turbo       bool
	TurboSecret string
	// Benchmark enables BenchmarkChannel (--benchmark_channel).
	Benchmark bool
}

// DefaultConfig is the controller's configuration without flags: presence
// on $pubsub streams allowed (AnyCable's --streams_presence default),
// everything else off.
func DefaultConfig() Config {
	return Config{Presence: true}
}

// Subscription is an accepted subscription to one stream.
type Subscription struct {
	Stream string
	// Whisper is true when clients may whisper to the stream.
	Whisper bool
	// Presence is true when clients may join the stream's presence.
	Presence bool
	// Benchmark is true for BenchmarkChannel, whose actions the node
	// performs itself.
	Benchmark bool
	// Member, when set, is the presence the subscription joins the stream
	// with as it is confirmed (a Pusher presence channel's user).
	Member *Member
}

// Member is one presence id with its info (JSON, normalised: keys sorted;
// nil for none).
type Member struct {
	ID   string
	Info json.RawMessage
}

// Controller decides subscriptions to built-in channels.
type Controller struct {
	cfg Config
}

// NewController returns a controller for cfg.
func NewController(cfg Config) *Controller {
	return &Controller{cfg: cfg}
}

type identifier struct {
	Channel          string  `json:"channel"`
	StreamName       *string `json:"stream_name"`
	SignedStreamName *string `json:"signed_stream_name"`
}

// parseIdentifier decodes what Subscribe reads of an identifier. A plain
// object (plainjson) naming each of the three fields at most once, in
// lower case, is read without encoding/json (other members are ignored,
// as encoding/json ignores them, unless their name matches a field's in
// another case); anything else goes to encoding/json.
func parseIdentifier(id string) (identifier, error) {
	var ident identifier
	seen := 0
	plain := plainjson.Object([]byte(id), func(key, raw []byte) bool {
		var bit int
		switch string(key) {
		case "channel":
			bit = 1
			ident.Channel = plainjson.String(raw)
		case "stream_name":
			bit = 2
			ident.StreamName = ptr(plainjson.String(raw))
		case "signed_stream_name":
			bit = 4
			ident.SignedStreamName = ptr(plainjson.String(raw))
		default:
			return !strings.EqualFold(string(key), "channel") && !strings.EqualFold(string(key), "stream_name") &&
				!strings.EqualFold(string(key), "signed_stream_name")
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	})
	if plain {
		return ident, nil
	}
	ident = identifier{}
	err := json.Unmarshal([]byte(id), &ident)
	return ident, err
}

func ptr(s string) *string { return &s }

// Subscribe decides a subscription by its identifier (the JSON the client
// sent). A built-in channel it cannot accept gives ErrRejected; an
// identifier that is no built-in channel gives ErrNotRouted.
func (c *Controller) Subscribe(id string) (*Subscription, error) {
	ident, err := parseIdentifier(id)
	if err != nil {
		return nil, ErrNotRouted
	}
	switch ident.Channel {
	case PubSubChannel:
		if ident.SignedStreamName != nil {
			name, err := Verify(*ident.SignedStreamName, c.cfg.Secret)
			if err != nil || name == "" {
				return nil, ErrRejected
			}
			return &Subscription{Stream: name, Whisper: c.cfg.Whisper, Presence: c.cfg.Presence}, nil
		}
		if ident.StreamName != nil && *ident.StreamName != "" && c.cfg.Public &&
			(c.cfg.Reserved == nil || !c.cfg.Reserved(*ident.StreamName)) {
			return &Subscription{Stream: *ident.StreamName, Whisper: true, Presence: true}, nil
		}
		return nil, ErrRejected
	case BenchmarkChannel:
		if !c.cfg.Benchmark {
			return nil, ErrNotRouted
		}
		return &Subscription{Stream: BenchmarkStream, Benchmark: true}, nil
	case TurboChannel:
		if !c.cfg.Turbo {
			return nil, ErrNotRouted
		}
		if ident.SignedStreamName == nil {
			return nil, ErrRejected
		}
		name, err := Verify(*ident.SignedStreamName, c.cfg.TurboSecret)
		if err != nil || name == "" {
			return nil, ErrRejected
		}
		return &Subscription{Stream: name}, nil
	}
	return nil, ErrNotRouted
}
