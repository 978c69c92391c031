package broker

import "context"

// None keeps no presence or history. Presence reads fail with
// ErrPresenceUnsupported.
type None struct{}

// SupportsPresence reports false.
func (None) SupportsPresence() bool { return false }

// PresenceInfo always fails with ErrPresenceUnsupported.
func (None) PresenceInfo(context.Context, string) (*PresenceInfo, error) {
	return nil, ErrPresenceUnsupported
}
