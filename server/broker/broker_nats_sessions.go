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

// kvBucket is a KV bucket's handle, kept for the NATS server process it
// was looked up on (guarded by NATS.mu).
type kvBucket struct {
	kv     jetstream.KeyValue
	server string
}

// bucket returns the KV bucket cfg names through h, creating it when
// missing (first use, or JetStream lost its state). A handle looked up on
// another server process is looked up again: the bucket may be gone with
// a store that server lost, and a NATS 2.9 server does not answer reads of
// a bucket it lacks (the caller would wait out its deadline).
func (b *NATS) bucket(ctx context.Context, h *kvBucket, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	if !b.conn.IsConnected() {
		return nil, errNATSDown
	}
	server := b.conn.ConnectedServerId()
	b.mu.Lock()
	kv := h.kv
	if h.server != server {
		kv = nil
	}
	b.mu.Unlock()
	if kv != nil {
		return kv, nil
	}
	kv, err := b.js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = b.js.CreateKeyValue(ctx, cfg)
		if err != nil { // another node may have just created it
			kv, err = b.js.KeyValue(ctx, cfg.Bucket)
		}
	}
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	h.kv, h.server = kv, server
	b.mu.Unlock()
	return kv, nil
}

// forgetBucket drops h's handle after an error that says the bucket is gone
// or does not answer, so the next call looks it up, and creates it, again.
func (b *NATS) forgetBucket(h *kvBucket, err error) {
	if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded) {
		b.mu.Lock()
		h.kv = nil
		b.mu.Unlock()
	}
}

// sessionsKV returns the sessions bucket; see bucket.
func (b *NATS) sessionsKV(ctx context.Context) (jetstream.KeyValue, error) {
	return b.bucket(ctx, &b.sessions, jetstream.KeyValueConfig{Bucket: natsSessionsBucket, TTL: b.opts.SessionsTTL,
		Storage: jetstream.FileStorage, Replicas: b.replicas()})
}

// sessionOp runs op on the sessions bucket; when the bucket is gone (or
// does not answer: after JetStream lost its state, writes to it may find
// no stream and wait out their deadline) it forgets the handle.
func (b *NATS) sessionOp(ctx context.Context, op func(kv jetstream.KeyValue) error) error {
	kv, err := b.sessionsKV(ctx)
	if err != nil {
		return err
	}
	err = op(kv)
	b.forgetBucket(&b.sessions, err)
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
