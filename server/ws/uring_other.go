//go:build !linux

package ws

import (
	"errors"
	"syscall"
)

const ringEntries = 256

// ringSender is io_uring's batched sender, Linux only.
type ringSender struct{ broken bool }

type ringSend struct {
	raw syscall.RawConn
	buf []byte
	n   int
	err error
}

func newRingSender() (*ringSender, error) { return nil, errors.New("io_uring: Linux only") }
func (s *ringSender) close()              {}
func (s *ringSender) send([]ringSend)     {}
