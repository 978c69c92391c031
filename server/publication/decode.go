// Package publication reads publish bodies in AnyCable's broadcast format,
// the one every way of publishing to Cablehub takes: the REST API, and
// AnyCable's broadcast adapters (HTTP, Redis, Redis Streams, NATS).
package publication

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
	"github.com/cablehub/cablehub/server/protocol"
)

// Decode reads a publish body: one publication object or a
// non-empty array of them. Errors name the problem and, in an array, the
// index of the offending item. Unknown fields are ignored, as AnyCable does.
//
// protojson would do the field parsing, but its messages are deliberately
// unstable across builds and cannot name an array index, so the body is
// checked here with encoding/json.
func Decode(body []byte) ([]*cablehubv1.Publication, error) {
	body = TrimSpace(body)
	if len(body) == 0 {
		return nil, errors.New("request body is empty: send a publication object or a non-empty array of them")
	}
	if !json.Valid(body) {
		var v any
		err := json.Unmarshal(body, &v)
		return nil, fmt.Errorf("request body is not valid JSON: %v", err)
	}
	switch body[0] {
	case '{':
		p, err := decodePublication(body)
		if err != nil {
			return nil, err
		}
		return []*cablehubv1.Publication{p}, nil
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(body, &items); err != nil {
			return nil, fmt.Errorf("request body is not valid JSON: %v", err)
		}
		if len(items) == 0 {
			return nil, errors.New("publications array is empty")
		}
		pubs := make([]*cablehubv1.Publication, len(items))
		for i, raw := range items {
			p, err := decodePublication(raw)
			if err != nil {
				return nil, fmt.Errorf("publications[%d]: %w", i, err)
			}
			pubs[i] = p
		}
		return pubs, nil
	default:
		return nil, errors.New("request body must be a publication object or an array of them")
	}
}

func decodePublication(raw json.RawMessage) (*cablehubv1.Publication, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return nil, errors.New("publication must be a JSON object")
	}
	p := &cablehubv1.Publication{}
	stream, ok := fields["stream"]
	if !ok || isNull(stream) {
		return nil, errors.New("stream is required")
	}
	if err := stringField(stream, "stream", &p.Stream); err != nil {
		return nil, err
	}
	if p.Stream == "" {
		return nil, errors.New("stream is required")
	}
	data, ok := fields["data"]
	if !ok || isNull(data) {
		return nil, errors.New("data is required")
	}
	if err := stringField(data, "data", &p.Data); err != nil {
		return nil, fmt.Errorf("%w (encode the payload as a JSON string)", err)
	}
	metaKey := ""
	if meta, ok := fields["meta"]; ok && !isNull(meta) {
		m, key, err := decodeMeta(meta)
		if err != nil {
			return nil, err
		}
		p.Meta, metaKey = m, key
	}
	key, err := idempotencyKey(fields, metaKey)
	if err != nil {
		return nil, err
	}
	p.IdempotencyKey = key
	return p, nil
}

// idempotencyKey is the publication's idempotency key, given at the top
// level ("idempotency_key", as in the proto) or, beside AnyCable's other
// delivery options, as "meta.idempotency_key" (metaKey). Both may be given
// when they agree. A key over protocol.MaxIdempotencyKeySize is refused
// here, naming where it was sent; the service checks gRPC calls the same.
func idempotencyKey(fields map[string]json.RawMessage, metaKey string) (string, error) {
	key := ""
	if v, ok := fields["idempotency_key"]; ok && !isNull(v) {
		if err := stringField(v, "idempotency_key", &key); err != nil {
			return "", err
		}
	}
	if len(key) > protocol.MaxIdempotencyKeySize {
		return "", fmt.Errorf("idempotency_key is longer than %d bytes", protocol.MaxIdempotencyKeySize)
	}
	if len(metaKey) > protocol.MaxIdempotencyKeySize {
		return "", fmt.Errorf("meta.idempotency_key is longer than %d bytes", protocol.MaxIdempotencyKeySize)
	}
	switch {
	case metaKey == "":
		return key, nil
	case key == "" || key == metaKey:
		return metaKey, nil
	}
	return "", errors.New("idempotency_key and meta.idempotency_key differ: send one of them")
}

// decodeMeta reads a publication's meta object; key is its
// "idempotency_key", which the proto keeps on the publication itself.
func decodeMeta(raw json.RawMessage) (m *cablehubv1.PublicationMeta, key string, err error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return nil, "", errors.New("meta must be a JSON object")
	}
	m = &cablehubv1.PublicationMeta{}
	if v, ok := fields["exclude_socket"]; ok && !isNull(v) {
		if err := stringField(v, "meta.exclude_socket", &m.ExcludeSocket); err != nil {
			return nil, "", err
		}
	}
	if v, ok := fields["broadcast_type"]; ok && !isNull(v) {
		if err := stringField(v, "meta.broadcast_type", &m.BroadcastType); err != nil {
			return nil, "", err
		}
	}
	if v, ok := fields["transient"]; ok && !isNull(v) {
		if err := json.Unmarshal(v, &m.Transient); err != nil {
			return nil, "", errors.New("meta.transient must be a boolean")
		}
	}
	if v, ok := fields["idempotency_key"]; ok && !isNull(v) {
		if err := stringField(v, "meta.idempotency_key", &key); err != nil {
			return nil, "", err
		}
	}
	return m, key, nil
}

func stringField(raw json.RawMessage, name string, dst *string) error {
	if len(raw) == 0 || raw[0] != '"' {
		return fmt.Errorf("%s must be a string", name)
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("%s must be a string", name)
	}
	return nil
}

// TrimSpace trims the whitespace JSON allows around a value, and only
// that: bytes.TrimSpace would also take Unicode spaces (U+0085, U+00A0) and
// let a body that is not JSON through.
func TrimSpace(b []byte) []byte {
	return bytes.Trim(b, " \t\r\n")
}

func isNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}
