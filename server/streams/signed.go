// Package streams decides subscriptions to streams that need no application
// back end: AnyCable's "$pubsub" channel (public and signed stream names)
// and Turbo Streams ("Turbo::StreamsChannel").
package streams

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
)

// Errors of Verify.
var (
	// ErrBadSignature means a signed stream name did not verify.
	ErrBadSignature = errors.New("signed stream verification failed")
	// ErrNoSecret means no secret is configured, so nothing can verify: an
	// empty HMAC key would let anyone sign any name.
	ErrNoSecret = errors.New("no secret to verify signed stream names")
)

// Sign produces a signed stream name the way AnyCable and Rails'
// MessageVerifier (SHA256, no metadata) do:
// base64(JSON(name)) + "--" + hex(HMAC-SHA256(secret, base64 part)).
func Sign(name, secret string) string {
	b, _ := json.Marshal(name)
	payload := base64.StdEncoding.EncodeToString(b)
	return payload + "--" + digest(payload, secret)
}

// Verify returns the stream name inside a signed stream name. The signature
// is compared in constant time; the payload must be a JSON string. It fails
// closed: with an empty secret nothing verifies (ErrNoSecret).
func Verify(signed, secret string) (string, error) {
	if secret == "" {
		return "", ErrNoSecret
	}
	parts := strings.Split(signed, "--")
	if len(parts) != 2 {
		return "", ErrBadSignature
	}
	want := digest(parts[0], secret)
	if !hmac.Equal([]byte(parts[1]), []byte(want)) {
		return "", ErrBadSignature
	}
	raw, err := base64.StdEncoding.DecodeString(parts[0])
	if err != nil {
		return "", ErrBadSignature
	}
	var name string
	if err := json.Unmarshal(raw, &name); err != nil {
		return "", ErrBadSignature
	}
	return name, nil
}

func digest(payload, secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(payload))
	return hex.EncodeToString(m.Sum(nil))
}
