package main

import (
	"fmt"
	"strings"
)

// The gateway's facts: what the REST API adds to the proto, written once
// here. Each is checked against the gateway's code by reading it and
// against the running server by e2e/openapi_test.go, which exercises every
// status documented below.

// restFacts add to a message's schema what proto3 cannot say.
type restFacts struct {
	// required fields, as the gateway or the service rejects a body
	// without them (or as the response always carries them).
	required []string
	// fields changes the schema of named proto fields.
	fields map[string]func(*schema)
	// extra properties that only the REST form of the message has.
	extra []property
	// closed: other properties are refused (protojson's unknown-field
	// check), not ignored.
	closed bool
}

var messageFacts = map[string]restFacts{
	"Publication": {
		required: []string{"stream", "data"},
		fields:   map[string]func(*schema){"stream": func(s *schema) { s.MinLength = intPtr(1) }},
	},
	"PublicationMeta": {
		extra: []property{{"idempotency_key", &schema{Type: "string",
			Description: "REST only: the publication's idempotency_key given among the delivery options, " +
				"as AnyCable's SDKs send it. When both are given they must be equal."}}},
	},
	"GetPresenceResponse": {
		required: []string{"type", "total"},
		fields:   map[string]func(*schema){"type": func(s *schema) { s.Const = "info" }},
	},
	"PresenceRecord":           {required: []string{"id"}},
	"GetHistoryResponse":       {required: []string{"epoch", "offset", "publications", "truncated"}},
	"HistoryPublication":       {required: []string{"offset", "data"}},
	"GetPresenceStatsResponse": {required: []string{"users", "sessions"}},
	"ListStreamsResponse":      {required: []string{"streams", "unavailable_nodes", "truncated"}},
	"StreamInfo":               {required: []string{"name", "subscribers"}},
	"GetInfoResponse":          {required: []string{"nodes", "unavailable_nodes"}},
	"NodeInfo": {required: []string{"id", "version", "uptime_seconds", "connections", "subscriptions", "streams",
		"published_total", "deliveries_total", "rpc_calls_total"}},
	"StreamPublication": {required: []string{"stream", "epoch", "offset", "data"}},
}

// grpcCode is a gRPC status code as the error body's "code" carries it.
type grpcCode struct {
	number int
	name   string
}

var (
	codeInvalidArgument    = grpcCode{3, "INVALID_ARGUMENT"}
	codeDeadlineExceeded   = grpcCode{4, "DEADLINE_EXCEEDED"}
	codeNotFound           = grpcCode{5, "NOT_FOUND"}
	codeFailedPrecondition = grpcCode{9, "FAILED_PRECONDITION"}
	codeResourceExhausted  = grpcCode{8, "RESOURCE_EXHAUSTED"}
	codeUnimplemented      = grpcCode{12, "UNIMPLEMENTED"}
	codeInternal           = grpcCode{13, "INTERNAL"}
	codeUnavailable        = grpcCode{14, "UNAVAILABLE"}
	codeUnauthenticated    = grpcCode{16, "UNAUTHENTICATED"}
)

// errorStatus is one documented error answer of an operation.
type errorStatus struct {
	status      int
	codes       []grpcCode
	description string
	// wwwAuthenticate: the answer carries "WWW-Authenticate: Bearer".
	wwwAuthenticate bool
	// allow: the answer carries an Allow header naming the route's methods.
	allow bool
	// position: the body also carries the stream's "epoch" and "offset".
	position bool
}

var (
	errUnauthorized = errorStatus{status: 401, codes: []grpcCode{codeUnauthenticated}, wwwAuthenticate: true,
		description: "An API secret is in effect and the request lacks \"Authorization: Bearer <token>\" " +
			"or carries another token or scheme. Checked before the body is read."}
	errBodyTimeout = errorStatus{status: 408, codes: []grpcCode{codeDeadlineExceeded},
		description: "The request body did not fully arrive within 10 s of the start of handling; " +
			"an HTTP/1 connection is closed after this answer."}
	errTooLarge = errorStatus{status: 413, codes: []grpcCode{codeResourceExhausted},
		description: "The body is larger than --api_max_body_size (1 MiB by default)."}
	errInvalidPublish = errorStatus{status: 422, codes: []grpcCode{codeInvalidArgument},
		description: "The body is empty, not JSON, an empty array, or a publication lacks stream or data, " +
			"has an empty stream, a field of the wrong type or an idempotency key over 128 bytes; or " +
			"the body is a remote command other than \"disconnect\". The message names the problem and, " +
			"in a batch, the index (publications[i]). Nothing of a rejected batch is published."}
	errInvalidDisconnect = errorStatus{status: 422, codes: []grpcCode{codeInvalidArgument},
		description: "The body is empty or not a JSON object, or a field has the wrong type. Unknown fields are ignored."}
	errPresencePath = errorStatus{status: 404, codes: []grpcCode{codeNotFound},
		description: "The path is not {api_path}/presence/<one non-empty segment>/users (an empty " +
			"stream segment, a raw \"/\" in it: send %2F) or has a malformed percent-escape."}
	errPublishUnavailable = errorStatus{status: 501, codes: []grpcCode{codeUnavailable},
		description: "The broker or pub/sub (Redis, NATS) failed or did not confirm within " +
			"--publish_timeout (2 s by default). The publications may still have been stored and " +
			"delivered: retry with an idempotency_key."}
	errDisconnectUnavailable = errorStatus{status: 501, codes: []grpcCode{codeUnavailable},
		description: "The pub/sub or broker failed to take the command, or did not within --publish_timeout."}
	errPresenceUnavailable = errorStatus{status: 501, codes: []grpcCode{codeUnimplemented, codeUnavailable},
		description: "UNIMPLEMENTED: the configured broker keeps no presence (--broker none or nats). " +
			"UNAVAILABLE: the broker failed or did not answer within --publish_timeout."}
	errMethod = errorStatus{status: 405, codes: []grpcCode{codeUnimplemented}, allow: true,
		description: "CORS is off (no --api_cors_headers), so OPTIONS is a method this route does not " +
			"take; answered before the token is checked."}
	errNotAcceptable = errorStatus{status: 406, codes: []grpcCode{codeInvalidArgument},
		description: "The Accept header admits neither application/json nor any type that covers it."}
	errStreamPath = errorStatus{status: 404, codes: []grpcCode{codeNotFound},
		description: "The stream segment of the path is empty, holds a raw \"/\" (send %2F) or a malformed percent-escape."}
	errInvalidQuery = errorStatus{status: 422, codes: []grpcCode{codeInvalidArgument},
		description: "A query parameter is malformed (not a number where one is expected), since is given " +
			"without epoch, or limit is out of range."}
	errPosition = errorStatus{status: 409, codes: []grpcCode{codeFailedPrecondition}, position: true,
		description: "since names a position the stream's history cannot serve: another epoch, an offset " +
			"past the latest, or publications no longer retained. The body carries the stream's current " +
			"epoch and offset, from which to start over."}
	errHistoryUnavailable = errorStatus{status: 501, codes: []grpcCode{codeUnimplemented, codeUnavailable},
		description: "UNIMPLEMENTED: the configured broker keeps no history (--broker none). " +
			"UNAVAILABLE: the broker failed or did not answer within --publish_timeout."}
	errWatchUnavailable = errorStatus{status: 501, codes: []grpcCode{codeUnimplemented, codeUnavailable},
		description: "UNIMPLEMENTED: since was given and the broker keeps no history. UNAVAILABLE: the " +
			"pub/sub could not subscribe the node to the stream, or the broker failed."}
)

// operationFacts are the REST answers of each RPC, by selector.
var operationFacts = map[string]struct {
	success int
	errors  []errorStatus
}{
	"cablehub.v1.CableService.Publish": {201, []errorStatus{
		errUnauthorized, errBodyTimeout, errTooLarge, errInvalidPublish, errPublishUnavailable}},
	"cablehub.v1.CableService.GetPresence": {200, []errorStatus{
		errUnauthorized, errPresencePath, errPresenceUnavailable}},
	"cablehub.v1.CableService.Disconnect": {201, []errorStatus{
		errUnauthorized, errBodyTimeout, errTooLarge, errInvalidDisconnect, errDisconnectUnavailable}},
	"cablehub.v1.CableService.GetHistory": {200, []errorStatus{
		errUnauthorized, errStreamPath, errInvalidQuery, errPosition, errHistoryUnavailable}},
	"cablehub.v1.CableService.GetPresenceStats": {200, []errorStatus{
		errUnauthorized, errPresencePath, errPresenceUnavailable}},
	"cablehub.v1.CableService.ListStreams": {200, []errorStatus{
		errUnauthorized, errInvalidQuery}},
	"cablehub.v1.CableService.GetInfo": {200, []errorStatus{
		errUnauthorized}},
	"cablehub.v1.CableService.Watch": {200, []errorStatus{
		errUnauthorized, errStreamPath, errInvalidQuery, errPosition, errWatchUnavailable}},
}

// errorSchema is the body of every REST error, jsonerr.Write's.
var errorSchema = &schema{
	Type: "object",
	Description: "The body of every REST error: the gRPC status code of the failure and a message " +
		"naming the problem (google.rpc.Status without details), and for a stream position that cannot be served " +
		"the stream's current one.",
	Properties: &properties{
		{"code", &schema{Type: "integer", Format: "int32", Description: "gRPC status code number: " +
			"3 INVALID_ARGUMENT (422), 4 DEADLINE_EXCEEDED (408), 5 NOT_FOUND (404), 8 RESOURCE_EXHAUSTED (413), " +
			"9 FAILED_PRECONDITION (409), 12 UNIMPLEMENTED (501; 405 for a method a route does not take), " +
			"14 UNAVAILABLE (501), 13 INTERNAL (500), 16 UNAUTHENTICATED (401)."}},
		{"message", &schema{Type: "string", Description: "What went wrong, for people; not a stable interface."}},
		{"epoch", &schema{Type: "string", Description: "FAILED_PRECONDITION (409) of a history read or watch only: " +
			"the stream's current epoch, from which to start over."}},
		{"offset", &schema{Type: "integer", Format: "uint64", Minimum: intPtr(0), Description: "With epoch: the " +
			"offset of the stream's latest publication."}},
	},
	Required:             []string{"code", "message"},
	AdditionalProperties: false,
}

// errorResponse documents one error answer: the Error schema with "code"
// narrowed to the codes this status carries here.
func errorResponse(e errorStatus) *response {
	var names []string
	var values []any
	for _, c := range e.codes {
		names = append(names, fmt.Sprintf("%d %s", c.number, c.name))
		values = append(values, c.number)
	}
	code := &schema{Const: values[0]}
	if len(values) > 1 {
		code = &schema{Enum: values}
	}
	r := &response{
		Description: fmt.Sprintf("%s (code %s)", e.description, strings.Join(names, " or ")),
		Content: jsonContent(&schema{AllOf: []*schema{
			ref("Error"),
			{Properties: &properties{{"code", code}}},
		}}),
	}
	if e.wwwAuthenticate {
		r.Headers = map[string]header{"WWW-Authenticate": {Schema: &schema{Type: "string", Const: "Bearer"}}}
	}
	if e.allow {
		r.Headers = map[string]header{"Allow": {Description: "The route's method (and OPTIONS with CORS on).", Schema: &schema{Type: "string"}}}
	}
	if e.position {
		r.Content = jsonContent(&schema{AllOf: []*schema{
			ref("Error"),
			{Properties: &properties{{"code", code}}, Required: []string{"epoch", "offset"}},
		}})
	}
	return r
}

// defaultResponse covers what no test can provoke on purpose.
var defaultResponse = &response{
	Description: fmt.Sprintf("Any other failure, with the same error body: 500 (code %d %s, message "+
		"\"internal error\") when a call fails unexpectedly (the server logs it and goes on).", codeInternal.number, codeInternal.name),
	Content: jsonContent(ref("Error")),
}

func jsonContent(s *schema) map[string]mediaType {
	return map[string]mediaType{"application/json": {Schema: s}}
}

const bearerDescription = "The API token: --api_secret, or when that is unset and --secret is set, " +
	"the lower-case hex HMAC-SHA256 of \"api-cable\" keyed with --secret " +
	"(printf %s api-cable | openssl dgst -sha256 -hmac SECRET | awk '{print $NF}': OpenSSL 3 prints \"SHA2-256(stdin)= <hex>\", older versions \"(stdin)= <hex>\", and the token is the hex). " +
	"The scheme must be exactly \"Bearer \". " +
	"When no API secret is in effect (--public, or a dedicated --api_port without a secret) no token is " +
	"needed and any Authorization header is ignored."

const apiDescription = "\n\nThe REST API, served under --api_path (/api by default; the document served at " +
	"{api_path}/openapi.json names the one in use in servers). Every error has a JSON body " +
	"{\"code\": <gRPC code>, \"message\": \"...\"} (schema Error). On every route a method the route does " +
	"not take is answered 405 (code 12) with an Allow header, before the token is checked, and a path under --api_path that " +
	"is no route 404 (code 5). Request bodies are read as JSON whatever their Content-Type. With " +
	"--api_cors_headers every answer carries CORS headers and OPTIONS is a preflight (200)."
