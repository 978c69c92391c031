package ws

import (
	"bytes"
	"testing"
	"unicode/utf8"
)

// fuzzResult is what a frame reader made of some input: what it emitted,
// how it stopped, and what it kept for the next read.
type fuzzResult struct {
	msgs       []msg
	err        *closeError
	closed     bool // emitted a close frame, after which a connection reads no more
	partial    []byte
	message    []byte
	fragmented bool
}

// fuzzFeed feeds chunks to a reader with limit as a connection does: it
// stops at an error or after a close frame. It fails t if the reader
// emits what it never may: a message over the limit, a text message that
// is not UTF-8, a control frame over 125 bytes, or if it keeps more than
// a message's and one frame's worth of input between reads.
func fuzzFeed(t *testing.T, limit int64, chunks [][]byte) fuzzResult {
	return fuzzFeedReader(t, frameReader{limit: limit}, chunks)
}

// fuzzFeedReader is fuzzFeed with a reader set up by the caller (one that
// inflates, say).
func fuzzFeedReader(t *testing.T, r frameReader, chunks [][]byte) fuzzResult {
	limit := r.limit
	var res fuzzResult
	emit := func(op byte, p []byte) bool {
		switch {
		case op >= opClose && len(p) > 125:
			t.Fatalf("control frame %#x of %d bytes", op, len(p))
		case op < opClose && limit > 0 && int64(len(p)) > limit:
			t.Fatalf("message of %d bytes over the limit of %d", len(p), limit)
		case op == opText && !utf8.Valid(p):
			t.Fatalf("text message is not UTF-8: %q", p)
		}
		res.msgs = append(res.msgs, msg{op, bytes.Clone(p)})
		res.closed = op == opClose
		return !res.closed
	}
	buf := []byte{}
	for _, c := range chunks {
		buf = append(buf[:0], c...)
		res.err = r.feed(buf, emit)
		for i := range buf {
			buf[i] = 0xEE // a reader keeping its input would be caught
		}
		if res.err != nil || res.closed {
			return res
		}
		// One frame: a 14-byte header, then a message's payload or a
		// control frame's, which the limit does not apply to.
		if limit > 0 && (int64(len(r.message)) > limit || int64(len(r.partial)) > 14+max(limit, 125)) {
			t.Fatalf("kept %d bytes of message and %d of partial frame with a limit of %d", len(r.message), len(r.partial), limit)
		}
	}
	res.partial, res.message, res.fragmented = r.partial, r.message, r.fragmented
	return res
}

func sameResult(a, b fuzzResult) bool {
	sameErr := (a.err == nil) == (b.err == nil) && (a.err == nil || *a.err == *b.err)
	return sameErr && sameMsgs(a.msgs, b.msgs) && a.closed == b.closed &&
		bytes.Equal(a.partial, b.partial) && bytes.Equal(a.message, b.message) && a.fragmented == b.fragmented
}

// FuzzFrameReader feeds arbitrary input to a frame reader whole, in two
// pieces cut at split, and (when short) a byte at a time: it must never
// panic nor emit what it may not (see fuzzFeed), and however the input is
// cut it must emit the same messages and stop the same way. limit is the
// message limit, 0 for none.
func FuzzFrameReader(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, split uint16, limit uint16) {
		whole := fuzzFeed(t, int64(limit), [][]byte{data})
		cut := int(split) % (len(data) + 1)
		two := fuzzFeed(t, int64(limit), [][]byte{data[:cut], data[cut:]})
		if !sameResult(whole, two) {
			t.Fatalf("whole and cut at %d differ:\n%+v\n%+v", cut, whole, two)
		}
		if len(data) <= 512 {
			if bytewise := fuzzFeed(t, int64(limit), byteByByte(data)); !sameResult(whole, bytewise) {
				t.Fatalf("whole and byte by byte differ:\n%+v\n%+v", whole, bytewise)
			}
		}
	})
}

// FuzzInflatingReader is FuzzFrameReader for a connection that agreed
// permessage-deflate: compressed messages (RSV1) are inflated within the
// limit, whatever their bytes, and however the input is cut the result is
// the same. A zero limit stands for the reader's own bound on inflating.
func FuzzInflatingReader(f *testing.F) {
	codec := &deflateCodec{}
	f.Fuzz(func(t *testing.T, data []byte, split uint16, limit uint16) {
		r := frameReader{limit: int64(limit), inflate: codec}
		whole := fuzzFeedReader(t, r, [][]byte{data})
		cut := int(split) % (len(data) + 1)
		two := fuzzFeedReader(t, r, [][]byte{data[:cut], data[cut:]})
		if !sameResult(whole, two) {
			t.Fatalf("whole and cut at %d differ:\n%+v\n%+v", cut, whole, two)
		}
	})
}

// FuzzInflate gives the inflater arbitrary bytes: it must never panic nor
// return more than limit bytes, and what the server's own compressor
// makes of data must inflate back to data.
func FuzzInflate(f *testing.F) {
	codec := &deflateCodec{}
	f.Fuzz(func(t *testing.T, data []byte, limit uint16) {
		if out, err := codec.inflate(data, int64(limit)); err == nil && len(out) > int(limit) {
			t.Fatalf("inflated %d bytes over the limit of %d", len(out), limit)
		}
		for _, bits := range []uint8{15, 9} {
			back, err := codec.inflate(codec.compress(data, bits), int64(len(data)))
			if err != nil || !bytes.Equal(back, data) {
				t.Fatalf("round trip with window bits %d: %v, %q", bits, err, preview(back))
			}
		}
	})
}
