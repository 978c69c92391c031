package main

import (
	"bytes"
	"encoding/json"
)

// The OpenAPI 3.1 objects this generator writes, only the fields it uses.
// Struct field order is the order of the keys in the output; maps (paths,
// responses, components) come out sorted by key, so the output is stable.

type document struct {
	OpenAPI    string               `json:"openapi"`
	Info       info                 `json:"info"`
	Servers    []server             `json:"servers"`
	Security   []secReq             `json:"security"`
	Tags       []tag                `json:"tags"`
	Paths      map[string]*pathItem `json:"paths"`
	Components components           `json:"components"`
}

type info struct {
	Title       string   `json:"title"`
	Version     string   `json:"version"`
	Description string   `json:"description,omitempty"`
	License     *license `json:"license,omitempty"`
}

type license struct {
	Name       string `json:"name"`
	Identifier string `json:"identifier,omitempty"`
}

type server struct {
	URL         string `json:"url"`
	Description string `json:"description,omitempty"`
}

// secReq is a security requirement: scheme name to scopes.
type secReq map[string][]string

type tag struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

type pathItem struct {
	Get     *operation `json:"get,omitempty"`
	Post    *operation `json:"post,omitempty"`
	Options *operation `json:"options,omitempty"`
}

type operation struct {
	OperationID string   `json:"operationId"`
	Tags        []string `json:"tags,omitempty"`
	Summary     string   `json:"summary,omitempty"`
	Description string   `json:"description,omitempty"`
	// Security is nil for the global requirement; an empty slice means
	// that the operation needs no token.
	Security    *[]secReq            `json:"security,omitempty"`
	Parameters  []parameter          `json:"parameters,omitempty"`
	RequestBody *requestBody         `json:"requestBody,omitempty"`
	Responses   map[string]*response `json:"responses"`
}

type parameter struct {
	Name        string  `json:"name"`
	In          string  `json:"in"`
	Description string  `json:"description,omitempty"`
	Required    bool    `json:"required"`
	Schema      *schema `json:"schema"`
}

type requestBody struct {
	Description string               `json:"description,omitempty"`
	Required    bool                 `json:"required"`
	Content     map[string]mediaType `json:"content"`
}

type response struct {
	Description string               `json:"description"`
	Headers     map[string]header    `json:"headers,omitempty"`
	Content     map[string]mediaType `json:"content,omitempty"`
}

type header struct {
	Description string  `json:"description,omitempty"`
	Schema      *schema `json:"schema"`
}

type mediaType struct {
	Schema *schema `json:"schema"`
}

type components struct {
	Schemas         map[string]*schema        `json:"schemas"`
	SecuritySchemes map[string]securityScheme `json:"securitySchemes"`
}

type securityScheme struct {
	Type        string `json:"type"`
	Scheme      string `json:"scheme"`
	Description string `json:"description,omitempty"`
}

// schema is a JSON Schema 2020-12 object, as OpenAPI 3.1 uses.
type schema struct {
	Ref                  string      `json:"$ref,omitempty"`
	Description          string      `json:"description,omitempty"`
	Type                 string      `json:"type,omitempty"`
	Format               string      `json:"format,omitempty"`
	Const                any         `json:"const,omitempty"`
	Enum                 []any       `json:"enum,omitempty"`
	MinLength            *int        `json:"minLength,omitempty"`
	Minimum              *int        `json:"minimum,omitempty"`
	MinItems             *int        `json:"minItems,omitempty"`
	Items                *schema     `json:"items,omitempty"`
	Properties           *properties `json:"properties,omitempty"`
	Required             []string    `json:"required,omitempty"`
	AdditionalProperties any         `json:"additionalProperties,omitempty"`
	OneOf                []*schema   `json:"oneOf,omitempty"`
	AllOf                []*schema   `json:"allOf,omitempty"`
}

// properties keeps an object's properties in proto field order.
type properties []property

type property struct {
	name   string
	schema *schema
}

func (ps *properties) add(name string, s *schema) { *ps = append(*ps, property{name, s}) }

func (ps *properties) get(name string) *schema {
	for _, p := range *ps {
		if p.name == name {
			return p.schema
		}
	}
	return nil
}

func (ps *properties) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, p := range *ps {
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := encodeTo(&buf, p.name); err != nil {
			return nil, err
		}
		buf.WriteByte(':')
		if err := encodeTo(&buf, p.schema); err != nil {
			return nil, err
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// encodeTo writes v as JSON without HTML escaping: descriptions quote
// things like "Bearer <secret>", which should stay readable.
func encodeTo(buf *bytes.Buffer, v any) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	buf.Truncate(buf.Len() - 1) // the encoder's newline
	return nil
}

func intPtr(n int) *int { return &n }

func ref(name string) *schema { return &schema{Ref: "#/components/schemas/" + name} }
