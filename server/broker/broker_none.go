package broker

import (
	"context"
	"encoding/json"

	"github.com/cablehub/cablehub/server/protocol"
)

// None keeps no presence, history or sessions: publications are not
// stamped, history requests fail, presence reads fail with
// ErrPresenceUnsupported.
type None struct{}

// Describe names the broker for the startup log.
func (None) Describe() string { return "Using no-op broker (no history, presence or session restore)" }

// Idempotency is nil: None keeps no idempotency keys, the node keeps them.
func (None) Idempotency() IdempotencyStore { return nil }

// Run returns when ctx is done: there is nothing to expire.
func (None) Run(ctx context.Context, _ func([]PresenceLeft)) { <-ctx.Done() }

// StampAndPublish publishes each of pubs through ps, unstamped, one call
// each so that taken is exact; see node.Broker.StampAndPublish. Without
// offsets there is no order between publishers to keep.
func (None) StampAndPublish(ctx context.Context, pubs []protocol.Publication, ps Publisher) (taken int, err error) {
	for i := range pubs {
		if err := ctx.Err(); err != nil {
			return i, err
		}
		if err := ps.Publish(ctx, pubs[i:i+1]); err != nil {
			return i, err
		}
	}
	return len(pubs), nil
}

// HistoryFrom fails with ErrHistoryUnsupported.
func (None) HistoryFrom(context.Context, string, string, uint64) ([]protocol.Publication, error) {
	return nil, ErrHistoryUnsupported
}

// HistorySince fails with ErrHistoryUnsupported.
func (None) HistorySince(context.Context, string, int64) ([]protocol.Publication, error) {
	return nil, ErrHistoryUnsupported
}

// Tail fails with ErrHistoryUnsupported.
func (None) Tail(context.Context, string) (string, uint64, error) {
	return "", 0, ErrHistoryUnsupported
}

// SupportsPresence reports false.
func (None) SupportsPresence() bool { return false }

// PresenceJoin fails with ErrPresenceUnsupported.
func (None) PresenceJoin(context.Context, string, string, string, json.RawMessage) (bool, error) {
	return false, ErrPresenceUnsupported
}

// PresenceLeave fails with ErrPresenceUnsupported.
func (None) PresenceLeave(context.Context, string, string) (string, bool, error) {
	return "", false, ErrPresenceUnsupported
}

// PresenceDisconnect does nothing.
func (None) PresenceDisconnect(context.Context, string) error { return nil }

// PresenceInfo fails with ErrPresenceUnsupported.
func (None) PresenceInfo(context.Context, string) (*PresenceInfo, error) {
	return nil, ErrPresenceUnsupported
}

// CacheSession does nothing.
func (None) CacheSession(context.Context, string, []byte) error { return nil }

// RestoreSession always fails with ErrSessionNotFound.
func (None) RestoreSession(context.Context, string) ([]byte, error) { return nil, ErrSessionNotFound }

// ForgetSession does nothing.
func (None) ForgetSession(context.Context, string) error { return nil }

// ReturnSession does nothing.
func (None) ReturnSession(context.Context, string, []byte) error { return nil }
