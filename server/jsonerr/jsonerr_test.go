package jsonerr_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cablehub/cablehub/server/jsonerr"
)

// The body's bytes are the contract's: compact, no trailing newline, HTML
// characters as they are, with its exact length.
func TestWriteBytes(t *testing.T) {
	w := httptest.NewRecorder()
	w.Header().Set("Connection", "close")
	jsonerr.Write(w, http.StatusUnprocessableEntity, codes.InvalidArgument, `a "<b>" & c`)
	want := `{"code":3,"message":"a \"<b>\" & c"}`
	if w.Code != 422 || w.Body.String() != want {
		t.Fatalf("got %d %s, want 422 %s", w.Code, w.Body, want)
	}
	h := w.Header()
	if h.Get("Content-Type") != "application/json" || h.Get("Content-Length") != "36" || h.Get("Connection") != "close" {
		t.Fatalf("headers %v", h)
	}
}

func TestWriteStatusMapsCodes(t *testing.T) {
	for _, c := range []struct {
		err        error
		httpStatus int
		body       string
		bearer     bool
	}{
		{status.Error(codes.InvalidArgument, "bad"), 422, `{"code":3,"message":"bad"}`, false},
		{status.Error(codes.Unauthenticated, "who"), 401, `{"code":16,"message":"who"}`, true},
		{status.Error(codes.NotFound, "gone"), 404, `{"code":5,"message":"gone"}`, false},
		{status.Error(codes.Unimplemented, "no"), 501, `{"code":12,"message":"no"}`, false},
		{status.Error(codes.Unavailable, "down"), 501, `{"code":14,"message":"down"}`, false},
		{status.Error(codes.ResourceExhausted, "big"), 413, `{"code":8,"message":"big"}`, false},
		{status.Error(codes.DeadlineExceeded, "slow"), 504, `{"code":4,"message":"slow"}`, false},
		{status.Error(codes.Internal, "internal error"), 500, `{"code":13,"message":"internal error"}`, false},
		{errors.New("plain"), 500, `{"code":2,"message":"plain"}`, false},
	} {
		w := httptest.NewRecorder()
		jsonerr.WriteStatus(w, c.err)
		if w.Code != c.httpStatus || w.Body.String() != c.body {
			t.Errorf("%v: got %d %s, want %d %s", c.err, w.Code, w.Body, c.httpStatus, c.body)
		}
		if got := w.Header().Get("WWW-Authenticate") == "Bearer"; got != c.bearer {
			t.Errorf("%v: WWW-Authenticate: Bearer %t, want %t", c.err, got, c.bearer)
		}
	}
}
