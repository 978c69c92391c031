package main

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// schemaSet builds components.schemas from proto messages, on demand: only
// the messages the REST API reads or writes become schemas, each named by
// its proto name (they share one package).
type schemaSet struct {
	schemas map[string]*schema
	err     error
}

// message returns a reference to msg's schema, building it (and those it
// refers to) on first use. JSON property names are the proto field names,
// as the gateway reads and writes them (protojson UseProtoNames), and the
// proto comments are the descriptions. What the proto cannot say (required
// fields, the REST-only alias meta.idempotency_key, ...) is added from
// messageFacts.
func (ss *schemaSet) message(msg *protogen.Message) *schema {
	name := string(msg.Desc.Name())
	if _, ok := ss.schemas[name]; ok {
		return ref(name)
	}
	s := &schema{Type: "object", Description: comment(msg.Comments.Leading), Properties: &properties{}}
	ss.schemas[name] = s // before the fields: a message may refer to itself
	for _, f := range msg.Fields {
		fs := ss.field(f)
		if d := comment(f.Comments.Leading); d != "" {
			fs = withDescription(fs, d)
		}
		s.Properties.add(string(f.Desc.Name()), fs)
	}
	if facts, ok := messageFacts[name]; ok {
		ss.apply(s, name, facts)
	}
	return ref(name)
}

// withDescription describes s. A bare reference gets the description beside
// "$ref", which JSON Schema 2020-12 (and so OpenAPI 3.1) allows.
func withDescription(s *schema, d string) *schema {
	c := *s
	c.Description = d
	return &c
}

func (ss *schemaSet) apply(s *schema, name string, f restFacts) {
	for _, req := range f.required {
		if s.Properties.get(req) == nil {
			ss.fail(fmt.Errorf("messageFacts: %s has no field %q", name, req))
		}
	}
	s.Required = f.required
	for field, change := range f.fields {
		p := s.Properties.get(field)
		if p == nil {
			ss.fail(fmt.Errorf("messageFacts: %s has no field %q", name, field))
			continue
		}
		change(p)
	}
	for _, extra := range f.extra {
		s.Properties.add(extra.name, extra.schema)
	}
	if f.closed {
		s.AdditionalProperties = false
	}
}

func (ss *schemaSet) fail(err error) {
	if ss.err == nil {
		ss.err = err
	}
}

// field is the schema of a field's JSON value as protojson writes it.
func (ss *schemaSet) field(f *protogen.Field) *schema {
	switch {
	case f.Desc.IsMap():
		return &schema{Type: "object", AdditionalProperties: ss.value(f.Message.Fields[1])}
	case f.Desc.IsList():
		return &schema{Type: "array", Items: ss.value(f)}
	}
	return ss.value(f)
}

// value is the schema of one value of f (an item, for a repeated field).
func (ss *schemaSet) value(f *protogen.Field) *schema {
	switch f.Desc.Kind() {
	case protoreflect.StringKind:
		return &schema{Type: "string"}
	case protoreflect.BoolKind:
		return &schema{Type: "boolean"}
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return &schema{Type: "integer", Format: "int32"}
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return &schema{Type: "integer", Format: "uint32"}
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		// protojson writes 64-bit integers as strings.
		return &schema{Type: "string", Format: "int64"}
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		// The gateway writes these (offsets and NodeInfo's counters, the
		// only ones) as JSON numbers (gateway.jsonMarshaler).
		return &schema{Type: "integer", Format: "uint64", Minimum: intPtr(0)}
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return &schema{Type: "number"}
	case protoreflect.BytesKind:
		return &schema{Type: "string", Format: "byte"}
	case protoreflect.EnumKind:
		var names []any
		for _, v := range f.Enum.Values {
			names = append(names, string(v.Desc.Name()))
		}
		return &schema{Type: "string", Enum: names}
	case protoreflect.MessageKind:
		return ss.messageValue(f.Message)
	}
	ss.fail(fmt.Errorf("field %s: kind %s is not supported", f.Desc.FullName(), f.Desc.Kind()))
	return &schema{}
}

// messageValue maps the well-known types the API uses onto their JSON
// forms; any other google.protobuf type fails generation, so a new one is
// mapped on purpose rather than described wrongly.
func (ss *schemaSet) messageValue(m *protogen.Message) *schema {
	full := string(m.Desc.FullName())
	switch full {
	case "google.protobuf.Value":
		return &schema{} // any JSON value
	case "google.protobuf.Struct":
		return &schema{Type: "object"}
	case "google.protobuf.ListValue":
		return &schema{Type: "array"}
	}
	if strings.HasPrefix(full, "google.protobuf.") {
		ss.fail(fmt.Errorf("well-known type %s has no JSON mapping here", full))
		return &schema{}
	}
	return ss.message(m)
}

// comment turns a proto comment into description text: the one space
// after "//" and the trailing newline are dropped, blank lines kept.
func comment(c protogen.Comments) string {
	text := strings.TrimSuffix(string(c), "\n")
	if text == "" {
		return ""
	}
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimPrefix(l, " ")
		if strings.HasPrefix(l, "buf:lint:") {
			continue // an instruction to buf, not documentation
		}
		lines = append(lines, l)
	}
	return strings.TrimRight(strings.Join(lines, "\n"), "\n")
}
