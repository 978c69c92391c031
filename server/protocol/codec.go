package protocol

// ActionCable is the Action Cable JSON wire format (with AnyCable's
// extensions) as a session codec: client frames are commands, server
// messages are sent as composed, and a publication is the frame
// AppendBroadcast builds. It has no state; its zero value is ready and
// every value is equal, so sessions of every WebSocket share one group
// per identifier in the hub.
type ActionCable struct{}

// Decode parses a client frame (ParseCommand).
func (ActionCable) Decode(frame []byte) (*Command, error) { return ParseCommand(frame) }

// Encode returns frame itself: server messages are composed in this
// format.
func (ActionCable) Encode(frame []byte) []byte { return frame }

// AppendBroadcast is the package's AppendBroadcast.
func (ActionCable) AppendBroadcast(dst []byte, identifier string, p *Publication, message []byte) []byte {
	return AppendBroadcast(dst, identifier, p, message)
}
