package client

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cablehubv1 "github.com/cablehub/cablehub/gen/cablehub/v1"
)

// Sentinels for errors.Is: a *Error matches the ones its code belongs to.
// They are never returned themselves.
var (
	// ErrAuth matches codes.Unauthenticated and codes.PermissionDenied: a
	// wrong or missing secret.
	ErrAuth = errors.New("cablehub: not authorized")
	// ErrUnavailable matches codes.Unavailable: the server could not be
	// reached, or its broker could not confirm a publish in time (which may
	// still have been delivered: retry with an idempotency key).
	ErrUnavailable = errors.New("cablehub: unavailable")
	// ErrInvalidArgument matches codes.InvalidArgument: the request (or the
	// client's options, from New) was refused as it is; nothing of it was
	// delivered.
	ErrInvalidArgument = errors.New("cablehub: invalid argument")
	// ErrTimeout matches codes.DeadlineExceeded: the call's deadline
	// passed; its outcome is unknown.
	ErrTimeout = errors.New("cablehub: timeout")
	// ErrPosition matches codes.FailedPrecondition: a History or Watch
	// position that the stream's history cannot serve (another epoch, or
	// publications no longer retained). The *Error's Position is the
	// stream's current one, from which a reader starts over.
	ErrPosition = errors.New("cablehub: position lost")
	// ErrClosed matches the error of every call made after Close, and of a
	// Watch that Close ended.
	ErrClosed = errors.New("cablehub: client is closed")
)

// Error is the error of every failed call: the gRPC status code and the
// server's message, plus the stream's position for codes.FailedPrecondition.
// Match it with errors.As, or with errors.Is against ErrAuth,
// ErrUnavailable, ErrInvalidArgument, ErrTimeout, ErrPosition or ErrClosed.
// Other codes a caller may meet: Unimplemented (presence or history on a
// broker that keeps none), ResourceExhausted (a watcher that did not keep
// up), Canceled (the caller's context).
type Error struct {
	// Code is the gRPC status code; Code.String() is its name.
	Code codes.Code
	// Message is the server's message (or the client's, for errors it
	// raises itself).
	Message string
	// Position is the stream's current position sent with a
	// codes.FailedPrecondition answer to History or Watch; nil otherwise.
	// Its Epoch is "" for a stream without history (never published to, or
	// expired): start over without a position then.
	Position *Position
	closed   bool
	cause    error
}

// Position is a place in a stream: the epoch its offsets count in and an
// offset within it.
type Position struct {
	Epoch  string
	Offset uint64
}

func (e *Error) Error() string {
	return fmt.Sprintf("cablehub: %s: %s", e.Code, e.Message)
}

// Is reports whether e belongs to the sentinel target.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrAuth:
		return e.Code == codes.Unauthenticated || e.Code == codes.PermissionDenied
	case ErrUnavailable:
		return e.Code == codes.Unavailable && !e.closed
	case ErrInvalidArgument:
		return e.Code == codes.InvalidArgument
	case ErrTimeout:
		return e.Code == codes.DeadlineExceeded
	case ErrPosition:
		return e.Code == codes.FailedPrecondition
	case ErrClosed:
		return e.closed
	}
	return false
}

// Unwrap returns the error e was made from (a context's error, for one),
// or nil.
func (e *Error) Unwrap() error { return e.cause }

// closedError is the error of a call made after Close.
func closedError() *Error {
	return &Error{Code: codes.Canceled, Message: "client is closed", closed: true}
}

// argError is an error the client raises itself on a bad argument.
func argError(format string, args ...any) *Error {
	return &Error{Code: codes.InvalidArgument, Message: fmt.Sprintf(format, args...)}
}

// wrap turns a call's error into *Error, reading the StreamPosition detail
// of a FailedPrecondition status.
func wrap(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		st = status.FromContextError(err)
	}
	e = &Error{Code: st.Code(), Message: st.Message(), cause: err}
	for _, d := range st.Details() {
		if p, ok := d.(*cablehubv1.StreamPosition); ok {
			e.Position = &Position{Epoch: p.GetEpoch(), Offset: p.GetOffset()}
		}
	}
	return e
}
