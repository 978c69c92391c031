package node

import (
	"time"

	"github.com/cablehub/cablehub/server/hub"
	"github.com/cablehub/cablehub/server/protocol"
	"github.com/cablehub/cablehub/server/streams"
)

// Connection is what a session needs from its client's transport,
// declared here so that any transport (WebSocket, Server-Sent Events, ...)
// can carry a session, and sessions run without a socket in tests.
// Send, Close and Abort never block: a session calls them while it holds
// its lock and while the hub fans a publication out. Frames are in the
// wire format of the session's Codec.
type Connection interface {
	// Send queues frame for the client and reports whether it was taken; a
	// dropped frame means the connection is closing (or was just cut as too
	// slow), so a caller producing many frames can stop. A client that does
	// not keep up is cut: it gets slow as its last frame, then a close. The
	// frame must not be modified after.
	Send(frame, slow []byte) bool
	// Close queues last (unless nil) and a close with code and reason (a
	// WebSocket close code; transports without close frames map it, see
	// their docs); frames sent after are dropped, and later calls do
	// nothing. The connection ends soon after.
	Close(code int, reason string, last []byte)
	// Abort ends the connection at once, without a close frame.
	Abort()
	// OnSlow sets a function called once if the connection is cut as too
	// slow.
	OnSlow(f func())
	// Serve starts reading: each message from the client goes to handle,
	// one at a time, and end runs once when the connection has ended,
	// never while handle runs. It returns at once. A transport whose
	// clients send nothing (Server-Sent Events) never calls handle.
	Serve(handle func(frame []byte), end func())
}

// Codec is a transport's wire format. Sessions compose server messages in
// Action Cable JSON (the protocol package) and read client commands as
// protocol.Command; a codec translates both ways. protocol.ActionCable is
// the identity. A codec must be comparable and must not change for the
// life of a session: the hub groups subscribers by it (hub.Encoder), so a
// publication is encoded once per codec and identifier, not per client.
type Codec interface {
	hub.Encoder
	// Decode parses a client message into a command; an error counts as a
	// malformed message (the connection keeps working).
	Decode(frame []byte) (*protocol.Command, error)
	// Encode turns frame, a server message in Action Cable JSON, into the
	// wire form. A nil result drops the message for this transport (a
	// client that asked for data events only, say).
	Encode(frame []byte) []byte
}

// SessionOptions are what a transport decides for the sessions it serves.
// The zero value is a plain Action Cable session with the node's pings.
type SessionOptions struct {
	// Codec is the wire format; nil is protocol.ActionCable.
	Codec Codec
	// Extended marks AnyCable's extended protocol
	// (actioncable-v1-ext-json): the session can be restored after a
	// reconnect and must answer pings with pongs within
	// Options.PongTimeout.
	Extended bool
	// PingInterval, when positive, replaces the node's ping interval for
	// these sessions; negative turns pings off. The client's ?pi= still
	// applies over it.
	PingInterval time.Duration
	// Commands are run, in order, once the session is welcomed, as if the
	// client had sent them first: the subscriptions of a transport whose
	// clients name them in the request (Server-Sent Events).
	Commands []*protocol.Command

	// The options below serve protocols whose channels are authorized per
	// connection rather than per identity (Pusher's).

	// NewSID, when set, makes the session's id (the sid every other part
	// of the protocol names it by) instead of the node's generator; it is
	// called again while the id it gave is taken on this node.
	NewSID func() string
	// Anonymous sessions are accepted without identification: no
	// authenticator and no App Connect; their identifiers are empty.
	Anonymous bool
	// Router, when set, decides every subscription of these sessions in
	// place of the node's built-in channels and App: what it refuses is
	// rejected.
	Router SessionRouter
	// LeaveOnClose makes a session leave the presence it joined as it
	// ends, so the other members see it go at once; otherwise presence
	// outlives the connection by Options.PresenceTTL (a client that
	// reconnects at once is not seen to leave).
	LeaveOnClose bool
	// PongTimeout, when positive, holds these sessions to answering each
	// ping within it, as extended sessions are to Options.PongTimeout,
	// without the rest of the extended protocol.
	PongTimeout time.Duration
}

// SessionRouter decides the subscriptions of a transport whose
// authorization names the session (SessionOptions.Router).
type SessionRouter interface {
	// Route decides cmd, a subscribe command of the session sid; an error
	// rejects it. A route with a Member makes the session join the
	// stream's presence as that member once subscribed, then get the
	// stream's presence info; the join event is not sent to the session
	// itself.
	Route(sid string, cmd *protocol.Command) (*streams.Subscription, error)
}

// whisperTagger is implemented by a codec whose whispers carry their
// sender's presence id (Pusher adds user_id to client events of presence
// channels): TagWhisper returns data, a whisper as the codec decoded it,
// with member added.
type whisperTagger interface {
	TagWhisper(data []byte, member string) []byte
}

func (o *SessionOptions) codec() Codec {
	if o.Codec == nil {
		return protocol.ActionCable{}
	}
	return o.Codec
}
