package broker

import (
	"context"
	"encoding/base64"
	"errors"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cached sessions live in the KV bucket cablehub_sessions, whose TTL is
// sessions_ttl (each write renews its key's age), under base64url(sid):
// sids may hold characters KV keys cannot. A restore leaves an empty value
// (a tombstone, for the TTL): the session being restored may still be live
// on some node, which has not noticed its client is gone, and its next
// cache write must not make the sid restorable again. Every write is
// conditional on the revision read (KV Create / Update), so a take and a
// cache write racing on two nodes cannot both win: the loser rereads.

// natsSessionRetries bounds the read-and-write rounds of one call racing
// with other writers of the same sid.
const natsSessionRetries = 8

// sessionsKV returns the sessions bucket, creating it when missing (first
// use, or JetStream lost its state).
func (b *NATS) sessionsKV(ctx context.Context) (jetstream.KeyValue, error) {
	if !b.conn.IsConnected() {
		return nil, errNATSDown
	}
	b.mu.Lock()
	kv := b.sessions
	b.mu.Unlock()
	if kv != nil {
		return kv, nil
	}
	kv, err := b.js.KeyValue(ctx, natsSessionsBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = b.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: natsSessionsBucket, TTL: b.opts.SessionsTTL, Storage: jetstream.FileStorage})
		if err != nil { // another node may have just created it
			kv, err = b.js.KeyValue(ctx, natsSessionsBucket)
		}
	}
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.sessions = kv
	b.mu.Unlock()
	return kv, nil
}

// sessionOp runs op on the sessions bucket; when the bucket is gone (or
// does not answer: after JetStream lost its state, writes to it may find
// no stream and wait out their deadline) it forgets the handle, so the next
// call looks the bucket up, and creates it, again.
func (b *NATS) sessionOp(ctx context.Context, op func(kv jetstream.KeyValue) error) error {
	kv, err := b.sessionsKV(ctx)
	if err != nil {
		return err
	}
	err = op(kv)
	if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded) {
		b.mu.Lock()
		b.sessions = nil
		b.mu.Unlock()
	}
	return err
}

func sessionKey(sid string) string { return base64.RawURLEncoding.EncodeToString([]byte(sid)) }

// CacheSession stores a session's state for SessionsTTL unless the sid is
// tombstoned; see Memory.
func (b *NATS) CacheSession(ctx context.Context, sid string, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	key := sessionKey(sid)
	return b.sessionOp(ctx, func(kv jetstream.KeyValue) error {
		for range natsSessionRetries {
			e, err := kv.Get(ctx, key)
			switch {
			case errors.Is(err, jetstream.ErrKeyNotFound):
				_, err = kv.Create(ctx, key, data)
			case err != nil:
				return err
			case len(e.Value()) == 0:
				return nil // tombstone: restored already
			default:
				_, err = kv.Update(ctx, key, data, e.Revision())
			}
			if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				return err
			}
		}
		return errors.New("session cache write lost every race")
	})
}

// RestoreSession takes a cached session's state, leaving a tombstone; see
// Memory. Of two restores of one sid on any nodes, the revision check lets
// one win.
func (b *NATS) RestoreSession(ctx context.Context, sid string) ([]byte, error) {
	key := sessionKey(sid)
	var data []byte
	err := b.sessionOp(ctx, func(kv jetstream.KeyValue) error {
		for range natsSessionRetries {
			e, err := kv.Get(ctx, key)
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				return ErrSessionNotFound
			}
			if err != nil {
				return err
			}
			if len(e.Value()) == 0 {
				return ErrSessionNotFound
			}
			_, err = kv.Update(ctx, key, nil, e.Revision())
			if err == nil {
				data = e.Value()
				return nil
			}
			if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				return err
			}
		}
		return ErrSessionNotFound
	})
	return data, err
}

// ForgetSession drops a cached session unless it is tombstoned; see
// Memory.
func (b *NATS) ForgetSession(ctx context.Context, sid string) error {
	key := sessionKey(sid)
	err := b.sessionOp(ctx, func(kv jetstream.KeyValue) error {
		for range natsSessionRetries {
			e, err := kv.Get(ctx, key)
			if err != nil || len(e.Value()) == 0 {
				return err
			}
			err = kv.Delete(ctx, key, jetstream.LastRevision(e.Revision()))
			if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	return err
}

// ReturnSession caches data under sid again, over the tombstone; see
// Memory.
func (b *NATS) ReturnSession(ctx context.Context, sid string, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	return b.sessionOp(ctx, func(kv jetstream.KeyValue) error {
		_, err := kv.Put(ctx, sessionKey(sid), data)
		return err
	})
}
