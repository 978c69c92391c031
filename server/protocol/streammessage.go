package protocol

import (
	"encoding/json"
	"strconv"
)

// A stream message is a publication on its way between nodes: the payload
// of a Redis or NATS pub/sub message, in AnyCable's StreamMessage shape:
//
//	{"stream":..,"data":..,"meta":{"exclude_socket":..,"broadcast_type":..,"transient":true},"offset":..,"epoch":..}
//
// meta and each of its keys appear only when set; offset and epoch only
// once a broker stamped the publication. The idempotency key and Recovered
// never travel.
//
// The position (offset and epoch) comes last so that a message can be
// written in two parts: AppendStreamMessageHead here, and the tail once the
// position is known. Everything is written by this file, except for one
// tail: the Redis broker stamps and publishes in one script run inside
// Redis (see broker_redis_history.go), and that script appends the tail of
// AppendStreamMessageTail itself, byte for byte; a test there holds it to
// AppendStreamMessage.

// EncodeStreamMessage returns p's stream message in a buffer sized for it,
// so that it takes one allocation unless escapes make it grow.
func EncodeStreamMessage(p *Publication) []byte {
	return AppendStreamMessage(make([]byte, 0, StreamMessageSize(p)), p)
}

// StreamMessageSize is the length of p's stream message when nothing in it
// needs escaping: a capacity for the buffer that receives it.
func StreamMessageSize(p *Publication) int {
	// The fixed keys and punctuation of a message with every key take
	// about 110 bytes, an offset and an epoch about 30.
	return len(p.Stream) + len(p.Data) + len(p.ExcludeSocket) + len(p.BroadcastType) + len(p.Epoch) + 128
}

// AppendStreamMessage appends p's stream message.
func AppendStreamMessage(dst []byte, p *Publication) []byte {
	dst = AppendStreamMessageHead(dst, p)
	return AppendStreamMessageTail(dst, p.Offset, p.Epoch)
}

// AppendStreamMessageHead appends p's stream message up to its position:
// everything but offset, epoch and the closing brace.
func AppendStreamMessageHead(dst []byte, p *Publication) []byte {
	dst = append(dst, `{"stream":`...)
	dst = appendString(dst, p.Stream)
	dst = append(dst, `,"data":`...)
	dst = appendString(dst, p.Data)
	if p.ExcludeSocket == "" && p.BroadcastType == "" && !p.Transient {
		return dst
	}
	dst = append(dst, `,"meta":{`...)
	sep := false
	if p.ExcludeSocket != "" {
		dst = append(dst, `"exclude_socket":`...)
		dst = appendString(dst, p.ExcludeSocket)
		sep = true
	}
	if p.BroadcastType != "" {
		if sep {
			dst = append(dst, ',')
		}
		dst = append(dst, `"broadcast_type":`...)
		dst = appendString(dst, p.BroadcastType)
		sep = true
	}
	if p.Transient {
		if sep {
			dst = append(dst, ',')
		}
		dst = append(dst, `"transient":true`...)
	}
	return append(dst, '}')
}

// AppendStreamMessageTail completes a head with the position: offset when
// not 0, epoch when not empty, and the closing brace.
func AppendStreamMessageTail(dst []byte, offset uint64, epoch string) []byte {
	if offset != 0 {
		dst = append(dst, `,"offset":`...)
		dst = strconv.AppendUint(dst, offset, 10)
	}
	if epoch != "" {
		dst = append(dst, `,"epoch":`...)
		dst = appendString(dst, epoch)
	}
	return append(dst, '}')
}

// streamMessage is what DecodeStreamMessage reads; keys as written above.
type streamMessage struct {
	Stream string `json:"stream"`
	Data   string `json:"data"`
	Meta   struct {
		ExcludeSocket string `json:"exclude_socket"`
		BroadcastType string `json:"broadcast_type"`
		Transient     bool   `json:"transient"`
	} `json:"meta"`
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// DecodeStreamMessage reads a stream message; key order and spacing do not
// matter.
func DecodeStreamMessage(data []byte) (*Publication, error) {
	var m streamMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	return &Publication{
		Stream: m.Stream, Data: m.Data, Offset: m.Offset, Epoch: m.Epoch,
		ExcludeSocket: m.Meta.ExcludeSocket, BroadcastType: m.Meta.BroadcastType, Transient: m.Meta.Transient,
	}, nil
}

// DecodeStreamMessages reads a stream message, or a JSON array of them (a
// JetStream message holding several publications of one stream), in
// order.
func DecodeStreamMessages(data []byte) ([]Publication, error) {
	for _, c := range data {
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			continue
		}
		if c != '[' {
			break
		}
		var items []json.RawMessage
		if err := json.Unmarshal(data, &items); err != nil {
			return nil, err
		}
		out := make([]Publication, 0, len(items))
		for _, item := range items {
			p, err := DecodeStreamMessage(item)
			if err != nil {
				return nil, err
			}
			out = append(out, *p)
		}
		return out, nil
	}
	p, err := DecodeStreamMessage(data)
	if err != nil {
		return nil, err
	}
	return []Publication{*p}, nil
}
