// Package jsonerr writes the error answers of Cablehub's HTTP endpoints
// that follow the REST API's contract (the REST API itself and the http
// broadcast adapter): a JSON body {"code":<gRPC code>,"message":"…"},
// like google.rpc.Status without details, and an HTTP status the contract
// maps from the gRPC code. The OpenAPI description documents this body
// (cmd/protoc-gen-cablehub-openapi); clients parse it, so its bytes are
// part of the contract.
package jsonerr

import (
	"bytes"
	"encoding/json"
	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
	"net/http"
	"strconv"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// body is the JSON of every error answer. An answer whose status carries
// a stream's position (cablehub.v1.StreamPosition, FAILED_PRECONDITION of
// a history read or watch) has it as epoch and offset too.
type body struct {
	Code    codes.Code `json:"code"`
	Message string     `json:"message"`
	Epoch   *string    `json:"epoch,omitempty"`
	Offset  *uint64    `json:"offset,omitempty"`
}

// Write answers with httpStatus and the body {"code":code,"message":msg},
// compact, without a trailing newline and with HTML characters left
// unescaped, under Content-Type application/json and an exact
// Content-Length. Headers set on w before the call (WWW-Authenticate,
// Connection) are sent with it.
func Write(w http.ResponseWriter, httpStatus int, code codes.Code, msg string) {
	write(w, httpStatus, body{Code: code, Message: msg})
}

func write(w http.ResponseWriter, httpStatus int, b0 body) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(b0) // cannot fail for this type
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(httpStatus)
	w.Write(b)
}

// WriteStatus answers with a service error: err's gRPC status (see
// status.Convert; a non-status error is UNKNOWN) with its code mapped onto
// the HTTP status the contract gives it (httpStatus) and Write's body. An
// UNAUTHENTICATED answer carries WWW-Authenticate: Bearer, as RFC 6750
// asks of a 401.
func WriteStatus(w http.ResponseWriter, err error) {
	st := status.Convert(err)
	code := httpStatus(st.Code())
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	b := body{Code: st.Code(), Message: st.Message()}
	for _, d := range st.Details() {
		if pos, ok := d.(*cablehubv1.StreamPosition); ok {
			epoch, offset := pos.GetEpoch(), pos.GetOffset()
			b.Epoch, b.Offset = &epoch, &offset
		}
	}
	write(w, code, b)
}

// httpStatus is the HTTP status the contract answers a gRPC code with.
// It departs from grpc-gateway's mapping where AnyCable's REST API answers
// otherwise: INVALID_ARGUMENT is 422, UNIMPLEMENTED and UNAVAILABLE are
// 501 and RESOURCE_EXHAUSTED is 413 (a body over the size limit); and
// FAILED_PRECONDITION, a stream position that cannot be served, is 409
// (grpc-gateway: 400), as the position is the stream's state; the other
// codes map as grpc-gateway maps them.
func httpStatus(c codes.Code) int {
	switch c {
	case codes.InvalidArgument:
		return http.StatusUnprocessableEntity
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.NotFound:
		return http.StatusNotFound
	case codes.Unimplemented, codes.Unavailable:
		return http.StatusNotImplemented
	case codes.ResourceExhausted:
		return http.StatusRequestEntityTooLarge
	case codes.FailedPrecondition:
		return http.StatusConflict
	}
	return runtime.HTTPStatusFromCode(c)
}
