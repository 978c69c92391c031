package gateway

import (
	"bytes"
	"encoding/json"
	"github.com/cablehub/cablehub/server/publication"
	"io"

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
// Input for the publish body (the repeated publications field) accepts a
// single object as well as an array; see publication.Decode.
type jsonMarshaler struct{}

var _ runtime.Marshaler = jsonMarshaler{}

var protoOut = protojson.MarshalOptions{UseProtoNames: true}

func (jsonMarshaler) ContentType(any) string { return "application/json" }

func (jsonMarshaler) Marshal(v any) ([]byte, error) {
	var raw []byte
	var err error
	if m, ok := v.(proto.Message); ok {
		if proto.Size(m) == 0 {
			// An empty message (a publish's answer) needs no encoder.
			return []byte("{}"), nil
		}
		raw, err = protoOut.Marshal(m)
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
	return buf.Bytes(), nil
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
		return protojson.Unmarshal(data, t)
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
