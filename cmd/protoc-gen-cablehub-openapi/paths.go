package main

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cablehub/cablehub/gateway/routes"
)

func newEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc
}

// build assembles the document from the plugin's files (the service the
// rules select must be among the files to generate), the HTTP rules and
// the gateway's route table, which must agree with the rules.
func build(p *protogen.Plugin, rules []rule, table routes.Table) (*document, error) {
	methods := map[string]*protogen.Method{}
	var file *protogen.File
	var service *protogen.Service
	for _, f := range p.Files {
		if !f.Generate {
			continue
		}
		for _, s := range f.Services {
			for _, m := range s.Methods {
				methods[string(m.Desc.FullName())] = m
			}
			if file != nil {
				return nil, fmt.Errorf("more than one service (%s, %s): not handled", service.Desc.FullName(), s.Desc.FullName())
			}
			file, service = f, s
		}
	}
	if service == nil {
		return nil, fmt.Errorf("no service to describe")
	}
	ss := &schemaSet{schemas: map[string]*schema{"Error": errorSchema}}
	doc := &document{
		OpenAPI: "3.1.0",
		Info: info{
			Title:       "Cablehub server API",
			Version:     string(file.Desc.Package().Name()),
			Description: comment(protogen.Comments(file.Desc.SourceLocations().ByPath(protoreflect.SourcePath{2}).LeadingComments)) + apiDescription,
			License:     &license{Name: "MIT", Identifier: "MIT"},
		},
		Servers: []server{{URL: "/api", Description: "The default --api_path. The document served at " +
			"{api_path}/openapi.json names the --api_path in use instead."}},
		Security: []secReq{{"bearer": {}}},
		Tags:     []tag{{Name: string(service.Desc.Name()), Description: comment(service.Comments.Leading)}},
		Paths:    map[string]*pathItem{},
		Components: components{
			Schemas:         ss.schemas,
			SecuritySchemes: map[string]securityScheme{"bearer": {Type: "http", Scheme: "bearer", Description: bearerDescription}},
		},
	}
	if err := sameRoutes(rules, table); err != nil {
		return nil, err
	}
	for _, r := range rules {
		m, ok := methods[r.Selector]
		if !ok {
			return nil, fmt.Errorf("rule %s: no such method in the generated files", r.Selector)
		}
		verb, path, err := r.method()
		if err != nil {
			return nil, err
		}
		route, _ := table.Lookup(path)
		if route.Operation != m.GoName {
			return nil, fmt.Errorf("rule %s: the route table names the operation %s", r.Selector, route.Operation)
		}
		op, err := rpcOperation(ss, service, m, r, path)
		if err != nil {
			return nil, err
		}
		op.Security = security(route)
		item := doc.Paths[path]
		if item == nil {
			item = &pathItem{Options: preflight(m.GoName)}
			item.Options.Parameters = pathParameters(op)
			doc.Paths[path] = item
		}
		if verb == "get" {
			item.Get = op
		} else {
			item.Post = op
		}
	}
	desc, ok := table.Find(routes.GetOpenAPI)
	if !ok {
		return nil, fmt.Errorf("the route table has no %s route", routes.GetOpenAPI)
	}
	doc.Paths[desc.Path] = &pathItem{Get: openAPIOperation(desc), Options: preflight(desc.Operation)}
	if ss.err != nil {
		return nil, ss.err
	}
	return doc, nil
}

var pathParam = regexp.MustCompile(`\{([^}=]+)\}`)

// rpcOperation describes one RPC's REST route.
func rpcOperation(ss *schemaSet, svc *protogen.Service, m *protogen.Method, r rule, path string) (*operation, error) {
	facts, ok := operationFacts[r.Selector]
	if !ok {
		return nil, fmt.Errorf("rule %s: no operationFacts (REST statuses) for it", r.Selector)
	}
	desc := comment(m.Comments.Leading)
	op := &operation{
		OperationID: m.GoName,
		Tags:        []string{string(svc.Desc.Name())},
		Summary:     firstSentence(desc),
		Description: desc,
		Responses: map[string]*response{
			strconv.Itoa(facts.success): {
				Description: fmt.Sprintf("The call succeeded (gRPC OK): %d.", facts.success),
				Content:     jsonContent(ss.message(m.Output)),
			},
			"default": defaultResponse,
		},
	}
	for _, e := range facts.errors {
		op.Responses[strconv.Itoa(e.status)] = errorResponse(e)
	}
	used := map[string]bool{}
	for _, match := range pathParam.FindAllStringSubmatch(path, -1) {
		f := fieldNamed(m.Input, match[1])
		if f == nil || f.Desc.Kind() != protoreflect.StringKind || f.Desc.IsList() {
			return nil, fmt.Errorf("rule %s: path parameter %q is not a string field of %s", r.Selector, match[1], m.Input.Desc.Name())
		}
		used[match[1]] = true
		op.Parameters = append(op.Parameters, parameter{
			Name: match[1], In: "path", Required: true, Schema: &schema{Type: "string", MinLength: intPtr(1)},
			Description: comment(f.Comments.Leading) + "\nA \"/\" in the value is sent percent-encoded, as %2F.",
		})
	}
	body, err := requestBodyOf(ss, m, r, used)
	if err != nil {
		return nil, err
	}
	op.RequestBody = body
	for _, f := range m.Input.Fields {
		if used[string(f.Desc.Name())] {
			continue
		}
		if r.Body != "" || f.Message != nil || f.Desc.IsList() {
			return nil, fmt.Errorf("rule %s: field %s is neither in the path nor the body, nor a scalar query parameter", r.Selector, f.Desc.Name())
		}
		op.Parameters = append(op.Parameters, parameter{
			Name: string(f.Desc.Name()), In: "query", Schema: ss.value(f),
			Description: comment(f.Comments.Leading),
		})
	}
	if m.Desc.IsStreamingServer() {
		ok := op.Responses[strconv.Itoa(facts.success)]
		ok.Description = fmt.Sprintf("The call is live (gRPC headers sent): %d, then newline-delimited JSON, "+
			"one object per message as it happens; an error ends the answer with a line "+
			"{\"error\":{\"code\":<gRPC code>,\"message\":\"...\"}}.", facts.success)
		ok.Content = map[string]mediaType{"application/x-ndjson": {Schema: ss.message(m.Output)}}
	}
	return op, nil
}

// pathParameters are op's path parameters, which its route's preflight
// takes too.
func pathParameters(op *operation) []parameter {
	var params []parameter
	for _, p := range op.Parameters {
		if p.In == "path" {
			params = append(params, p)
		}
	}
	return params
}

// requestBodyOf describes the rule's body and marks the fields it carries.
// A repeated message field as the body is read as one object or a
// non-empty array (gateway.decodePublications); the publish route also
// takes AnyCable's remote disconnect command (gateway.routeCommand).
func requestBodyOf(ss *schemaSet, m *protogen.Method, r rule, used map[string]bool) (*requestBody, error) {
	switch r.Body {
	case "":
		return nil, nil
	case "*":
		for _, f := range m.Input.Fields {
			used[string(f.Desc.Name())] = true
		}
		return &requestBody{Required: true, Content: jsonContent(ss.message(m.Input)),
			Description: comment(m.Input.Comments.Leading) + "\nRead as JSON whatever the Content-Type."}, nil
	}
	f := fieldNamed(m.Input, r.Body)
	if f == nil || f.Message == nil || !f.Desc.IsList() {
		return nil, fmt.Errorf("rule %s: body %q is not a repeated message field", r.Selector, r.Body)
	}
	used[r.Body] = true
	item := ss.message(f.Message)
	forms := []*schema{
		withDescription(item, "A single "+string(f.Message.Desc.Name())+"."),
		{Type: "array", MinItems: intPtr(1), Items: item, Description: comment(f.Comments.Leading)},
	}
	desc := comment(m.Input.Comments.Leading)
	if r.Selector == "cablehub.v1.CableService.Publish" {
		forms = append(forms, remoteCommand(ss, m))
		desc += "\nAlso AnyCable's remote command {\"command\":\"disconnect\",\"payload\":{...}}: any " +
			"object with a \"command\" key is read as one. Read as JSON whatever the Content-Type."
	}
	return &requestBody{Required: true, Description: desc, Content: jsonContent(&schema{OneOf: forms})}, nil
}

// remoteCommand is AnyCable's {"command":"disconnect","payload":{...}},
// answered as the Disconnect RPC (201).
func remoteCommand(ss *schemaSet, publish *protogen.Method) *schema {
	var disconnect *protogen.Method
	for _, m := range publish.Parent.Methods {
		if m.Desc.Name() == "Disconnect" {
			disconnect = m
		}
	}
	return &schema{
		Type: "object",
		Description: "AnyCable's remote disconnect command, handled as POST {api_path}/disconnect " +
			"with the payload as its body (an absent payload is {}).",
		Properties: &properties{
			{"command", &schema{Const: "disconnect", Description: "Any other command is answered 422."}},
			{"payload", ss.message(disconnect.Input)},
		},
		Required: []string{"command"},
	}
}

func fieldNamed(m *protogen.Message, name string) *protogen.Field {
	for _, f := range m.Fields {
		if string(f.Desc.Name()) == name {
			return f
		}
	}
	return nil
}

// preflight is the OPTIONS operation every API route has.
func preflight(id string) *operation {
	return &operation{
		OperationID: id + "Preflight",
		Summary:     "CORS preflight",
		Description: "With --api_cors_headers: 200, an empty body and the CORS headers, no token needed. " +
			"Without it: 405, like any method the route does not take.",
		Security: &[]secReq{},
		Responses: map[string]*response{
			"200": {Description: "The preflight answer (CORS on).", Headers: map[string]header{
				"Access-Control-Allow-Methods": {Description: "The route's method, then OPTIONS.", Schema: &schema{Type: "string"}},
			}},
			"405": errorResponse(errMethod),
		},
	}
}

// security is an operation's security requirement: nil (the document's,
// the bearer token) for a route that needs the token, none otherwise.
func security(route routes.Route) *[]secReq {
	if route.Auth {
		return nil
	}
	return &[]secReq{}
}

// openAPIOperation is the route that serves this document.
func openAPIOperation(route routes.Route) *operation {
	return &operation{
		OperationID: route.Operation,
		Summary:     "This description",
		Description: "This OpenAPI document, with servers naming the --api_path in use. No token is needed. " +
			"HEAD is answered too.",
		Security: security(route),
		Responses: map[string]*response{
			"200": {Description: "The document.", Content: jsonContent(&schema{Type: "object",
				Properties: &properties{
					{"openapi", &schema{Type: "string", Description: "The OpenAPI version, 3.1.0."}},
					{"info", &schema{Type: "object"}},
					{"servers", &schema{Type: "array", Description: "One server: the --api_path in use."}},
					{"paths", &schema{Type: "object"}},
				},
				Required: []string{"openapi", "info", "servers", "paths"}})},
			"406": errorResponse(errNotAcceptable),
		},
	}
}

// firstSentence is the text up to the first full stop that ends a
// sentence, on one line.
func firstSentence(s string) string {
	flat := strings.Join(strings.Fields(s), " ")
	if i := strings.Index(flat, ". "); i >= 0 {
		return flat[:i+1]
	}
	return flat
}
