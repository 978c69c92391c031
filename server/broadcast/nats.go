package broadcast

import (
	"errors"
	"log/slog"
)

// newNATS builds the nats adapter: a NATS subject. Not built yet.
func newNATS(Options, *Handler, *slog.Logger) (Adapter, error) {
	return nil, errors.New("the nats broadcast adapter is not built yet")
}
