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

	// rsv1 marks a compressed message (RFC 7692 §6) in its first frame's
	// first byte, beside the opcode.
	rsv1 = 0x40
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

// appendFrame appends one final, unmasked server frame; op may carry rsv1.
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
	// inflate is set when the client agreed permessage-deflate: a data
	// message whose first frame has RSV1 set is compressed and inflated
	// (within limit) before it is validated and emitted.
	inflate *deflateCodec
	// compressed marks the fragmented message in progress as compressed.
	compressed bool
}

func invalidText() *closeError {
	return &closeError{code: closeInvalidData, reason: "text message is not UTF-8"}
}

// feed parses data (which it may modify: payloads are unmasked in place)
// and calls emit for each complete message (opText or opBinary, with a
// payload emit may keep) and control frame (opPing, opPong, opClose, with a
// payload valid only during the call). It stops at the first protocol
// violation, returning the close to send, or when emit returns false;
// after either, the rest of data is unparsed and the reader must not be fed
// again. An incomplete frame at the end of data is kept for the next call.
func (r *frameReader) feed(data []byte, emit func(op byte, payload []byte) bool) *closeError {
	if len(r.partial) > 0 {
		// Appended in place (amortized), so a large frame arriving in many
		// reads is not copied again on each one.
		r.partial = append(r.partial, data...)
		data = r.partial
	}
	for len(data) >= 2 {
		h, whole, err := parseHeader(data)
		if err != nil {
			return err
		}
		if !whole {
			break
		}
		if err := r.checkFrame(h); err != nil {
			return err
		}
		if uint64(len(data)) < uint64(h.size)+h.length {
			break
		}
		end := h.size + int(h.length)
		payload := data[h.size:end]
		unmask(payload, data[h.size-4:h.size])
		data = data[end:]
		r.frames++
		more, err := r.deliver(h, payload, emit)
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
	r.keep(data)
	return nil
}

// frameHeader is what a client frame's header says.
type frameHeader struct {
	fin bool
	op  byte
	// compressed is RSV1: set on the first frame of a compressed message.
	compressed bool
	// size is the header's length in bytes, masking key included: the
	// payload starts there, the key is the 4 bytes before it.
	size int
	// length is the payload's length, below 1<<63.
	length uint64
}

// parseHeader reads the header of the frame data starts with (len(data) ≥
// 2). whole is false, with no error, while data does not hold the length
// bytes yet. It fails with the close to send on what no later byte can
// make right: RSV2 or RSV3 set (no extension uses them), an unmasked
// frame, a 64-bit length with its top bit set. Whether the opcode is
// known and allowed, and RSV1 with it, is checkFrame's question.
func parseHeader(data []byte) (h frameHeader, whole bool, err *closeError) {
	b0, b1 := data[0], data[1]
	if b0&0x30 != 0 {
		return h, false, protocolError("reserved bits set without an extension")
	}
	if b1&0x80 == 0 {
		return h, false, protocolError("client frames must be masked")
	}
	h.fin, h.op, h.compressed = b0&0x80 != 0, b0&0x0f, b0&rsv1 != 0
	h.size, h.length = 2, uint64(b1&0x7f)
	switch h.length {
	case 126:
		if len(data) < 4 {
			return h, false, nil
		}
		h.size, h.length = 4, uint64(binary.BigEndian.Uint16(data[2:]))
	case 127:
		if len(data) < 10 {
			return h, false, nil
		}
		h.size, h.length = 10, binary.BigEndian.Uint64(data[2:])
		if h.length>>63 != 0 {
			return h, false, protocolError("invalid frame length")
		}
	}
	h.size += 4 // masking key
	return h, true, nil
}

// checkFrame applies the rules that a frame's opcode and the message in
// progress place on it, before its payload has arrived: a control frame is
// final and at most 125 bytes; a continuation frame continues a fragmented
// message, which no other data frame may interrupt; a data frame keeps its
// message within the limit (closeTooBig, with no reason; a compressed
// message is held to it before and after inflating); other opcodes are
// reserved. RSV1 (compressed) may be set only on the first frame of a
// data message, and only when permessage-deflate was agreed.
func (r *frameReader) checkFrame(h frameHeader) *closeError {
	if h.compressed && (r.inflate == nil || (h.op != opText && h.op != opBinary)) {
		return protocolError("reserved bits set without an extension")
	}
	switch h.op {
	case opClose, opPing, opPong:
		if !h.fin {
			return protocolError("fragmented control frame")
		}
		if h.length > 125 {
			return protocolError("control frame longer than 125 bytes")
		}
	case opText, opBinary, opContinuation:
		if h.op == opContinuation && !r.fragmented {
			return protocolError("continuation frame without a message to continue")
		}
		if h.op != opContinuation && r.fragmented {
			return protocolError("new message before the fragmented one ended")
		}
		if r.limit > 0 && uint64(len(r.message))+h.length > uint64(r.limit) {
			return &closeError{code: closeTooBig}
		}
	default:
		return protocolError("unknown opcode")
	}
	return nil
}

// unmask undoes the client's masking of payload in place: byte i was
// XORed with mask[i%4] (RFC 6455 §5.3).
func unmask(payload, mask []byte) {
	for i := range payload {
		payload[i] ^= mask[i&3]
	}
}

// deliver takes one complete, unmasked frame that checkFrame accepted. A
// control frame goes to emit with payload itself; a non-final data frame
// is added to the fragmented message; a final one completes it, or is a
// whole message, and goes to emit in a buffer of its own. Text is
// validated as UTF-8 as it arrives, failing with closeInvalidData at the
// first frame that makes it invalid. more is emit's answer (true when emit
// was not called).
func (r *frameReader) deliver(h frameHeader, payload []byte, emit func(op byte, payload []byte) bool) (more bool, err *closeError) {
	switch {
	case h.op >= opClose:
		return emit(h.op, payload), nil
	case !h.fin:
		if h.op != opContinuation {
			r.messageOp = h.op
			r.compressed = h.compressed
			r.starts++
		}
		r.fragmented = true
		r.message = append(r.message, payload...)
		if r.messageOp == opText && !r.compressed && !r.checkText() {
			return false, invalidText()
		}
		return true, nil
	case r.fragmented:
		msg := append(r.message, payload...)
		compressed, from := r.compressed, r.checked
		r.message, r.fragmented, r.checked, r.compressed = nil, false, 0, false
		return r.complete(r.messageOp, msg, from, compressed, emit)
	case h.compressed:
		return r.complete(h.op, payload, 0, true, emit)
	default:
		return r.complete(h.op, append([]byte(nil), payload...), 0, false, emit)
	}
}

// complete emits a whole data message, inflated first when it is
// compressed (payload is then only read), after checking that text is
// UTF-8 from byte checked on (the bytes before it were checked as they
// arrived).
func (r *frameReader) complete(op byte, msg []byte, checked int, compressed bool, emit func(op byte, payload []byte) bool) (bool, *closeError) {
	if compressed {
		limit := r.limit
		if limit <= 0 {
			limit = maxInflated
		}
		var err *closeError
		if msg, err = r.inflate.inflate(msg, limit); err != nil {
			return false, err
		}
		checked = 0
	}
	if op == opText && !utf8.Valid(msg[checked:]) {
		return false, invalidText()
	}
	return emit(op, msg), nil
}

// maxInflated bounds a compressed message when no message limit is set,
// so a small compressed frame can never inflate without bound.
const maxInflated = 16 << 20

// keep saves rest, the start of a frame not yet complete at the end of a
// feed, for the next one. An idle connection (nothing left) holds no
// buffer; a rest that is the tail of partial is moved to its front, which
// moves nothing in the common case of a frame still arriving (nothing of
// partial was consumed).
func (r *frameReader) keep(rest []byte) {
	switch {
	case len(rest) == 0:
		r.partial = nil
	case len(r.partial) > 0:
		r.partial = r.partial[:copy(r.partial, rest)]
	default:
		r.partial = append([]byte(nil), rest...)
	}
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
