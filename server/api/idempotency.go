package api

import (
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cablehub/cablehub/server/protocol"
)

// checkIdempotencyKey refuses a key over protocol.MaxIdempotencyKeySize
// with INVALID_ARGUMENT naming the field (and the batch index when the
// batch has more than one publication), so gRPC callers get what the REST
// decoder tells REST callers. The bound keeps what a remembered key costs
// small.
func checkIdempotencyKey(key string, i, n int) error {
	if len(key) <= protocol.MaxIdempotencyKeySize {
		return nil
	}
	msg := fmt.Sprintf("idempotency_key is longer than %d bytes", protocol.MaxIdempotencyKeySize)
	if n > 1 {
		msg = fmt.Sprintf("publications[%d].%s", i, msg)
	}
	return status.Error(codes.InvalidArgument, msg)
}
