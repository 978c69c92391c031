package protocol

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// AppendBroadcast appends the Action Cable frame that delivers p to a
// subscription with the given identifier:
//
//	{"type":..,"identifier":..,"message":..,"stream_id":..,"epoch":..,"offset":..}
//
// Keys come in AnyCable's order; "type" only with a broadcast type and
// stream_id/epoch/offset only when a broker stamped the publication. The
// message is the data itself when it is valid JSON other than null, else the
// data as a JSON string. The result does not depend on the subscriber, so a
// caller encodes it once per identifier and shares the bytes.
func AppendBroadcast(dst []byte, identifier string, p *Publication) []byte {
	dst = append(dst, '{')
	if p.BroadcastType != "" {
		dst = append(dst, `"type":`...)
		dst = appendString(dst, p.BroadcastType)
		dst = append(dst, ',')
	}
	dst = append(dst, `"identifier":`...)
	dst = appendString(dst, identifier)
	dst = append(dst, `,"message":`...)
	dst = appendPayload(dst, p.Data)
	if p.Epoch != "" {
		dst = append(dst, `,"stream_id":`...)
		dst = appendString(dst, p.Stream)
		dst = append(dst, `,"epoch":`...)
		dst = appendString(dst, p.Epoch)
		dst = append(dst, `,"offset":`...)
		dst = strconv.AppendUint(dst, p.Offset, 10)
	}
	return append(dst, '}')
}

// appendPayload writes data as raw JSON when it is a valid JSON value other
// than null (compacted, so frames carry no insignificant whitespace), and as
// a JSON string otherwise.
func appendPayload(dst []byte, data string) []byte {
	raw := []byte(data)
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) > 0 && !bytes.Equal(trimmed, []byte("null")) && json.Valid(trimmed) {
		var buf bytes.Buffer
		if err := json.Compact(&buf, trimmed); err == nil {
			return append(dst, buf.Bytes()...)
		}
	}
	return appendString(dst, data)
}

// appendString appends s as a JSON string literal.
func appendString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // marshalling a string cannot fail
	return append(dst, b...)
}
