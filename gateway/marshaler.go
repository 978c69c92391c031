package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"github.com/cablehub/cablehub/server/publication"
	"io"
	"regexp"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
)

// jsonMarshaler is the gateway's only marshaler, used whatever the request's
// Content-Type (AnyCable ignores it, and SDKs send form or text types).
//
// Output is protojson with proto field names, compacted: protojson inserts
// randomised whitespace to stop callers depending on its exact bytes, and
// the REST contract promises stable compact JSON.
//
// Offsets and GetInfo's counters (the only 64-bit integers of the API)
// are written as JSON numbers, as the Action Cable protocol writes
// offsets, not as the strings protojson makes of 64-bit integers: a
// JavaScript number holds them up to 2^53 exactly. The v2 answers (history, stats, streams, info,
// watch) carry every field, zero values included, so callers need no
// defaults.
//
// Input for the publish body (the repeated publications field) accepts a
// single object as well as an array; see publication.Decode. Unknown
// fields are ignored in every body, as the publish body always ignored
// them (and AnyCable does); a field of the wrong type is refused with a
// message naming it, without protojson's "proto:" and position prefix.
type jsonMarshaler struct{}

var _ runtime.Marshaler = jsonMarshaler{}

var (
	protoOut  = protojson.MarshalOptions{UseProtoNames: true}
	protoFull = protojson.MarshalOptions{UseProtoNames: true, EmitDefaultValues: true}
	protoIn   = protojson.UnmarshalOptions{DiscardUnknown: true}
)

// full reports whether m's JSON carries its zero values too.
func full(m proto.Message) bool {
	switch m.(type) {
	case *cablehubv1.GetHistoryResponse, *cablehubv1.GetPresenceStatsResponse, *cablehubv1.ListStreamsResponse,
		*cablehubv1.GetInfoResponse, *cablehubv1.StreamPublication:
		return true
	}
	return false
}

// quotedUint64 is an offset or a counter as protojson writes it. In
// compact JSON a key is preceded by '{' or ',' and a '"' inside a string
// is escaped, so the pattern matches keys only.
var quotedUint64 = regexp.MustCompile(`([{,])"(offset|published_total|deliveries_total|rpc_calls_total)":"([0-9]+)"`)

func (jsonMarshaler) ContentType(any) string { return "application/json" }

func (jsonMarshaler) Marshal(v any) ([]byte, error) {
	var raw []byte
	var err error
	if m, ok := v.(proto.Message); ok {
		switch {
		case full(m):
			raw, err = protoFull.Marshal(m)
		case proto.Size(m) == 0:
			// An empty message (a publish's answer) needs no encoder.
			return []byte("{}"), nil
		default:
			raw, err = protoOut.Marshal(m)
		}
	} else {
		raw, err = json.Marshal(v)
	}
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, err
	}
	out := buf.Bytes()
	if bytes.Contains(out, []byte(`"offset":"`)) || bytes.Contains(out, []byte(`_total":"`)) {
		out = quotedUint64.ReplaceAll(out, []byte(`$1"$2":$3`))
	}
	return out, nil
}

func (jsonMarshaler) Unmarshal(data []byte, v any) error {
	switch t := v.(type) {
	case *[]*cablehubv1.Publication:
		pubs, err := publication.Decode(data)
		if err != nil {
			return err
		}
		*t = pubs
		return nil
	case proto.Message:
		if err := protoIn.Unmarshal(data, t); err != nil {
			return errors.New(protojsonMessage(err))
		}
		return nil
	default:
		return json.Unmarshal(data, v)
	}
}

func (m jsonMarshaler) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		data, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		return m.Unmarshal(data, v)
	})
}

func (m jsonMarshaler) NewEncoder(w io.Writer) runtime.Encoder {
	return runtime.EncoderFunc(func(v any) error {
		b, err := m.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	})
}

// protojsonPrefix is what protojson puts before the problem: "proto: ",
// and "(line 1:19): " when it knows the position.
var protojsonPrefix = regexp.MustCompile(`^proto:\s*(\(line \d+:\d+\):\s*)?`)

// protojsonMessage is err's message without protojson's prefix.
func protojsonMessage(err error) string {
	return protojsonPrefix.ReplaceAllString(err.Error(), "")
}
