package api

import (
	"math"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
)

// MaxPresenceAnswer bounds a GetPresence answer, 1 MiB both as a gRPC
// message and as the REST gateway's JSON body: what every client takes
// (gRPC's own default is 4 MiB) whatever the stream holds.
const MaxPresenceAnswer = 1 << 20

// presenceBudget tracks a GetPresence answer's size as records are added,
// in both encodings, so that the answer can stop at the first record that
// would take either over MaxPresenceAnswer. The JSON size is that of the
// gateway's output (protojson with proto field names, compacted).
type presenceBudget struct {
	protoSize, jsonSize int
	records             int
}

// newPresenceBudget starts with what resp (no records yet) takes, plus the
// truncated field and the records' brackets, which it may yet need.
func newPresenceBudget(resp *cablehubv1.GetPresenceResponse) *presenceBudget {
	return &presenceBudget{
		protoSize: proto.Size(resp) + protowire.SizeTag(4) + protowire.SizeVarint(1),
		// {"type":"info","total":N,"records":[],"truncated":true}
		jsonSize: len(`{"type":`) + jsonStringSize(resp.GetType()) + len(`,"total":`) + len(strconv.Itoa(int(resp.GetTotal()))) +
			len(`,"records":[]`) + len(`,"truncated":true`) + len(`}`),
	}
}

// add counts rec in and reports whether the answer still fits; a record
// that does not fit is not counted.
func (b *presenceBudget) add(rec *cablehubv1.PresenceRecord) bool {
	j, p := presenceRecordSizes(rec)
	p = b.protoSize + protowire.SizeTag(3) + protowire.SizeBytes(p)
	j += b.jsonSize
	if b.records > 0 {
		j++ // the comma
	}
	if p > MaxPresenceAnswer || j > MaxPresenceAnswer {
		return false
	}
	b.protoSize, b.jsonSize = p, j
	b.records++
	return true
}

// presenceRecordSizes returns the size of rec as the gateway writes it,
// {"id":..,"info":..} with unset fields left out (see jsonValueSize), and
// its protobuf size, counted in one walk: proto.Size would walk it again
// through reflection, which costs as much as the rest of the answer.
func presenceRecordSizes(rec *cablehubv1.PresenceRecord) (jsonSize, protoSize int) {
	jsonSize = len(`{}`)
	if id := rec.GetId(); id != "" {
		jsonSize += len(`"id":`) + jsonStringSize(id)
		protoSize += protowire.SizeTag(1) + protowire.SizeBytes(len(id))
	}
	if info := rec.GetInfo(); info != nil {
		if rec.GetId() != "" {
			jsonSize++
		}
		j, p := valueSizes(info)
		jsonSize += len(`"info":`) + j
		protoSize += protowire.SizeTag(2) + protowire.SizeBytes(p)
	}
	return jsonSize, protoSize
}

// valueSizes returns v's size in protojson's compact output (exact but for
// numbers, whose "e-07" protojson shortens: never less) and its protobuf
// size. In protobuf the kind is a oneof, written even when zero; a map
// entry writes its key and value always.
func valueSizes(v *structpb.Value) (jsonSize, protoSize int) {
	const kindTag = 1 // every kind's field number fits one byte of tag
	switch k := v.GetKind().(type) {
	case *structpb.Value_NumberValue:
		return jsonNumberSize(k.NumberValue), kindTag + protowire.SizeFixed64()
	case *structpb.Value_StringValue:
		return jsonStringSize(k.StringValue), kindTag + protowire.SizeBytes(len(k.StringValue))
	case *structpb.Value_BoolValue:
		if k.BoolValue {
			return len("true"), kindTag + 1
		}
		return len("false"), kindTag + 1
	case *structpb.Value_StructValue:
		fields := k.StructValue.GetFields()
		jsonSize = len(`{}`) + max(len(fields)-1, 0) // braces, commas
		inner := 0
		for key, field := range fields {
			j, p := valueSizes(field)
			jsonSize += jsonStringSize(key) + len(`:`) + j
			entry := protowire.SizeTag(1) + protowire.SizeBytes(len(key)) + protowire.SizeTag(2) + protowire.SizeBytes(p)
			inner += protowire.SizeTag(1) + protowire.SizeBytes(entry)
		}
		return jsonSize, kindTag + protowire.SizeBytes(inner)
	case *structpb.Value_ListValue:
		values := k.ListValue.GetValues()
		jsonSize = len(`[]`) + max(len(values)-1, 0)
		inner := 0
		for _, item := range values {
			j, p := valueSizes(item)
			jsonSize += j
			inner += protowire.SizeTag(1) + protowire.SizeBytes(p)
		}
		return jsonSize, kindTag + protowire.SizeBytes(inner)
	default: // null
		return len("null"), kindTag + 1
	}
}

// jsonNumberSize formats f as protojson (and encoding/json) do, exponent
// form only for the very small and the very large.
func jsonNumberSize(f float64) int {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return len(`"-Infinity"`)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	var buf [32]byte
	return len(strconv.AppendFloat(buf[:0], f, format, -1, 64))
}

// jsonStringSize is the size of s quoted as protojson quotes it: '"' and
// '\' and control characters escaped, everything else as it is.
func jsonStringSize(s string) int {
	n := len(`""`)
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t':
			n += 2
			i++
		case c < ' ':
			n += len(`\u0000`)
			i++
		case c < utf8.RuneSelf:
			n++
			i++
		default:
			_, size := utf8.DecodeRuneInString(s[i:])
			n += size
			i += size
		}
	}
	return n
}
