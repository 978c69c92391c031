package broadcast

import (
	"errors"
	"log/slog"
)

// newRedisX builds the redisx adapter: Redis Streams with a consumer group.
// Not built yet.
func newRedisX(Options, *Handler, *slog.Logger) (Adapter, error) {
	return nil, errors.New("the redisx broadcast adapter is not built yet")
}
