// Package ds serves the Durable Streams read API (AnyCable's --ds): a
// stream's history as a JSON array read from an offset, its tail through
// HEAD, and live data by long-poll or Server-Sent Events. Streams are the
// broker's: their offsets are the broker's per-stream sequence in its
// epoch, so any node of a cluster answers the same; publishing goes
// through the usual broadcast paths, never through this API.
package ds

import (
	"errors"
	"strconv"
	"strings"
)

// offsetWidth is how many digits an offset's sequence number is padded
// to: the protocol compares offsets as strings, and unpadded numbers sort
// wrongly ("10" < "9"). 20 digits hold every uint64.
const offsetWidth = 20

// maxEpochLen bounds the epoch part of an offset a client sends; brokers'
// epochs are far shorter.
const maxEpochLen = 64

// offsetKind tells what an offset a client sends asks for.
type offsetKind int

const (
	// fromStart (-1, 0 or none) reads every retained publication.
	fromStart offsetKind = iota
	// fromNow reads nothing and reports the tail.
	fromNow
	// fromPosition reads what follows a position in an epoch.
	fromPosition
)

// offset is an offset a client sent: a kind and, for fromPosition, the
// position "<seq>::<epoch>".
type offset struct {
	kind  offsetKind
	seq   uint64
	epoch string
}

// Errors of parseOffset; both are the client's fault (400).
var (
	errBadOffset = errors.New("malformed offset")
	errNoEpoch   = errors.New("offset without an epoch")
)

// parseOffset reads an offset: "", "-1" and "0" are the start, "now" the
// tail, else "<seq>::<epoch>" with a decimal seq (padded or not, at most
// 20 digits) and an epoch of letters, digits, "-" and "_" (as brokers
// make them). A bare number other than 0 names no epoch and is refused:
// its position cannot be checked against the stream's epoch.
func parseOffset(s string) (offset, error) {
	switch s {
	case "", "-1", "0":
		return offset{kind: fromStart}, nil
	case "now":
		return offset{kind: fromNow}, nil
	}
	num, epoch, ok := strings.Cut(s, "::")
	if !ok {
		if isDigits(s) && len(s) <= offsetWidth {
			return offset{}, errNoEpoch
		}
		return offset{}, errBadOffset
	}
	if !isDigits(num) || len(num) > offsetWidth || !validEpoch(epoch) {
		return offset{}, errBadOffset
	}
	seq, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return offset{}, errBadOffset
	}
	return offset{kind: fromPosition, seq: seq, epoch: epoch}, nil
}

// isDigits reports whether s is one or more ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validEpoch reports whether s can be a broker's epoch.
func validEpoch(s string) bool {
	if s == "" || len(s) > maxEpochLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// formatOffset is the offset of position seq in epoch as sent to clients:
// seq zero-padded to offsetWidth digits, "::", the epoch. A stream the
// broker does not know (epoch "") is at "0", which reads from the start
// and sorts before every other offset.
func formatOffset(epoch string, seq uint64) string {
	if epoch == "" {
		return "0"
	}
	return string(appendOffset(make([]byte, 0, offsetWidth+2+len(epoch)), epoch, seq))
}

// appendOffset appends formatOffset(epoch, seq) for a known epoch.
func appendOffset(dst []byte, epoch string, seq uint64) []byte {
	var digits [offsetWidth]byte
	n := strconv.AppendUint(digits[:0], seq, 10)
	for i := len(n); i < offsetWidth; i++ {
		dst = append(dst, '0')
	}
	dst = append(dst, n...)
	dst = append(dst, "::"...)
	return append(dst, epoch...)
}
