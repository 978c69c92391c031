package ws

import (
	"encoding/binary"
	"unicode/utf8"
)

// WebSocket opcodes (RFC 6455 §5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// Close codes the transport sends itself.
const (
	closeNormal          = 1000
	closeProtocolError   = 1002
	closeInvalidData     = 1007 // a text message or close reason that is not UTF-8
	closePolicyViolation = 1008 // a client that owes a frame too long (see watcher)
	closeTooBig          = 1009
	closeNoStatus        = 1005 // never sent: the code a close without a payload means
)

// appendFrame appends one final, unmasked server frame.
func appendFrame(dst []byte, op byte, payload []byte) []byte {
	dst = append(dst, 0x80|op)
	switch n := len(payload); {
	case n <= 125:
		dst = append(dst, byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, payload...)
}

// closePayload is a close frame's payload: the code, then the reason cut to
// fit a control frame.
func closePayload(code int, reason string) []byte {
	if code == closeNoStatus {
		return []byte{}
	}
	if len(reason) > 123 {
		cut := 123
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	b := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(code))
	return append(b, reason...)
}

// closeError is a reason to close the connection from the read side: the
// code and reason to send.
type closeError struct {
	code   int
	reason string
}

func (e *closeError) Error() string { return e.reason }

func protocolError(reason string) *closeError {
	return &closeError{code: closeProtocolError, reason: reason}
}

// frameReader parses client frames from bytes as they arrive, however the
// network splits them. It keeps only what an incomplete frame or a
// fragmented message needs between reads, so an idle connection holds no
// buffer at all.
type frameReader struct {
	// limit is the largest message in bytes; 0 is unlimited.
	limit int64
	// partial holds the bytes of a frame not yet complete.
	partial []byte
	// message collects the frames of a fragmented message.
	message    []byte
	fragmented bool
	messageOp  byte
	// frames counts complete frames and starts fragmented messages begun,
	// so a caller can tell whether a read made progress.
	frames, starts uint64
	// checked is how many bytes of a fragmented text message are known to
	// be whole, valid UTF-8 runes, so each byte is validated once.
	checked int
}

func invalidText() *closeError {
	return &closeError{code: closeInvalidData, reason: "text message is not UTF-8"}
}

// feed parses data (which it may modify: payloads are unmasked in place)
// and calls emit for each complete message (opText or opBinary, with a
// payload emit may keep) and control frame (opPing, opPong, opClose, with a
// payload valid only during the call). It stops at the first protocol
// violation, returning the close to send, or when emit returns false.
func (r *frameReader) feed(data []byte, emit func(op byte, payload []byte) bool) *closeError {
	if len(r.partial) > 0 {
		// Appended in place (amortized), so a large frame arriving in many
		// reads is not copied again on each one.
		r.partial = append(r.partial, data...)
		data = r.partial
	}
	for len(data) >= 2 {
		b0, b1 := data[0], data[1]
		if b0&0x70 != 0 {
			return protocolError("reserved bits set without an extension")
		}
		if b1&0x80 == 0 {
			return protocolError("client frames must be masked")
		}
		fin, op := b0&0x80 != 0, b0&0x0f
		header, length := 2, uint64(b1&0x7f)
		switch length {
		case 126:
			if len(data) < 4 {
				goto incomplete
			}
			header, length = 4, uint64(binary.BigEndian.Uint16(data[2:]))
		case 127:
			if len(data) < 10 {
				goto incomplete
			}
			header, length = 10, binary.BigEndian.Uint64(data[2:])
			if length>>63 != 0 {
				return protocolError("invalid frame length")
			}
		}
		header += 4 // masking key
		switch op {
		case opClose, opPing, opPong:
			if !fin {
				return protocolError("fragmented control frame")
			}
			if length > 125 {
				return protocolError("control frame longer than 125 bytes")
			}
		case opText, opBinary, opContinuation:
			if op == opContinuation && !r.fragmented {
				return protocolError("continuation frame without a message to continue")
			}
			if op != opContinuation && r.fragmented {
				return protocolError("new message before the fragmented one ended")
			}
			if r.limit > 0 && uint64(len(r.message))+length > uint64(r.limit) {
				return &closeError{code: closeTooBig}
			}
		default:
			return protocolError("unknown opcode")
		}
		if uint64(len(data)) < uint64(header)+length {
			goto incomplete
		}
		payload := data[header : header+int(length)]
		mask := data[header-4 : header]
		for i := range payload {
			payload[i] ^= mask[i&3]
		}
		data = data[header+int(length):]
		r.frames++

		var ok bool
		switch {
		case op >= opClose:
			ok = emit(op, payload)
		case !fin:
			if op != opContinuation {
				r.messageOp = op
				r.starts++
			}
			r.fragmented = true
			r.message = append(r.message, payload...)
			if r.messageOp == opText && !r.checkText() {
				return invalidText()
			}
			ok = true
		case r.fragmented:
			msg := append(r.message, payload...)
			if r.messageOp == opText && !utf8.Valid(msg[r.checked:]) {
				return invalidText()
			}
			r.message, r.fragmented, r.checked = nil, false, 0
			ok = emit(r.messageOp, msg)
		default:
			if op == opText && !utf8.Valid(payload) {
				return invalidText()
			}
			ok = emit(op, append([]byte(nil), payload...))
		}
		if !ok {
			return nil
		}
	}
incomplete:
	switch {
	case len(data) == 0:
		r.partial = nil // an idle connection holds no buffer
	case len(r.partial) > 0:
		// The rest of partial, moved to its front: nothing was consumed
		// in the common case of a frame still arriving.
		r.partial = r.partial[:copy(r.partial, data)]
	default:
		r.partial = append([]byte(nil), data...)
	}
	return nil
}

// checkText validates the fragmented text message received so far,
// failing as soon as it holds a sequence no continuation can make valid
// (RFC 6455 §8.1), but accepting a rune cut short at its end: a fragment
// boundary may fall inside a character.
func (r *frameReader) checkText() bool {
	rest := r.message[r.checked:]
	whole := len(rest) - incompleteRune(rest)
	if !utf8.Valid(rest[:whole]) {
		return false
	}
	r.checked += whole
	return true
}

// incompleteRune returns the length of the rune p ends with if that rune is
// the valid beginning of an encoding cut short, else 0 (p ends with a
// complete rune, or with bytes that are invalid whatever follows).
func incompleteRune(p []byte) int {
	for i := len(p) - 1; i >= 0 && i > len(p)-utf8.UTFMax; i-- {
		if utf8.RuneStart(p[i]) {
			if utf8.FullRune(p[i:]) {
				return 0
			}
			return len(p) - i
		}
	}
	return 0
}

// parseClose reads a client's close payload: its code (closeNoStatus for an
// empty payload), or the protocol error it commits.
func parseClose(payload []byte) (int, *closeError) {
	switch {
	case len(payload) == 0:
		return closeNoStatus, nil
	case len(payload) == 1:
		return 0, protocolError("close payload of one byte")
	}
	code := int(binary.BigEndian.Uint16(payload))
	if !validCloseCode(code) {
		return 0, protocolError("invalid close code")
	}
	if !utf8.Valid(payload[2:]) {
		return 0, &closeError{code: closeInvalidData, reason: "close reason is not UTF-8"}
	}
	return code, nil
}

// validCloseCode reports whether a peer may send code (RFC 6455 §7.4).
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014, code >= 3000 && code <= 4999:
		return true
	}
	return false
}
