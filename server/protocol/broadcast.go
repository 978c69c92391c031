package protocol

import "strconv"

// AppendBroadcast appends the Action Cable frame that delivers p to a
// subscription with the given identifier:
//
//	{"type":..,"identifier":..,"message":..,"stream_id":..,"epoch":..,"offset":..}
//
// Keys come in AnyCable's order; "type" only with a broadcast type and
// stream_id/epoch/offset only when a broker stamped the publication.
// message is EncodeMessage(p.Data), computed once per publication by the
// caller. The result does not depend on the subscriber, so a caller encodes
// it once per identifier and shares the bytes.
func AppendBroadcast(dst []byte, identifier string, p *Publication, message []byte) []byte {
	dst = append(dst, '{')
	if p.BroadcastType != "" {
		dst = append(dst, `"type":`...)
		dst = appendString(dst, p.BroadcastType)
		dst = append(dst, ',')
	}
	dst = append(dst, `"identifier":`...)
	dst = appendString(dst, identifier)
	dst = append(dst, `,"message":`...)
	dst = append(dst, message...)
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
