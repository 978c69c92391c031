package ws

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// testMask is the masking key of hand-crafted client frames; its zero byte
// makes sure a reader that skips unmasking some bytes is still caught.
var testMask = [4]byte{0xa1, 0x00, 0x5c, 0xff}

// encodeFrame encodes a client frame with first byte b0 (FIN, RSV bits and
// opcode as given); masked frames use key.
func encodeFrame(b0 byte, payload []byte, masked bool, key [4]byte) []byte {
	var mbit byte
	if masked {
		mbit = 0x80
	}
	out := []byte{b0}
	switch n := len(payload); {
	case n <= 125:
		out = append(out, mbit|byte(n))
	case n <= 0xFFFF:
		out = append(out, mbit|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, mbit|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if !masked {
		return append(out, payload...)
	}
	out = append(out, key[:]...)
	for i, b := range payload {
		out = append(out, b^key[i&3])
	}
	return out
}

// cframe is a final, masked client frame.
func cframe(op byte, payload string) []byte {
	return encodeFrame(0x80|op, []byte(payload), true, testMask)
}

// cfrag is a non-final, masked client frame.
func cfrag(op byte, payload string) []byte {
	return encodeFrame(op, []byte(payload), true, testMask)
}

// closeBody is a close frame's payload: code, then reason.
func closeBody(code int, reason string) string {
	return string(binary.BigEndian.AppendUint16(nil, uint16(code))) + reason
}

func cat(frames ...[]byte) []byte { return bytes.Join(frames, nil) }

// serverFrame is a frame as a client reads it off the wire.
type serverFrame struct {
	fin     bool
	rsv     byte
	op      byte
	payload []byte
}

func (f serverFrame) String() string {
	return fmt.Sprintf("{fin=%v op=%#x len=%d %q}", f.fin, f.op, len(f.payload), preview(f.payload))
}

// preview is the start of a payload, for failure messages.
func preview(p []byte) []byte {
	if len(p) > 40 {
		return p[:40]
	}
	return p
}

// closeCode returns a close frame's code and reason (1005 when empty).
func (f serverFrame) closeCode() (int, string) {
	if len(f.payload) < 2 {
		return closeNoStatus, ""
	}
	return int(binary.BigEndian.Uint16(f.payload)), string(f.payload[2:])
}

// readServerFrame reads one server frame; a masked server frame is an error.
func readServerFrame(br *bufio.Reader) (serverFrame, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return serverFrame{}, err
	}
	f := serverFrame{fin: h[0]&0x80 != 0, rsv: h[0] & 0x70, op: h[0] & 0x0f}
	if h[1]&0x80 != 0 {
		return f, errors.New("server frame is masked")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 64<<20 {
		return f, fmt.Errorf("frame of %d bytes", n)
	}
	f.payload = make([]byte, n)
	_, err := io.ReadFull(br, f.payload)
	return f, err
}

// msg is what frameReader emitted.
type msg struct {
	op      byte
	payload []byte
}

func (m msg) String() string {
	return fmt.Sprintf("{op=%#x len=%d %q}", m.op, len(m.payload), preview(m.payload))
}

// feedChunks feeds chunks to r the way a connection does: each chunk is
// read into a reused buffer that is overwritten after feed returns, so a
// reader keeping a reference to its input would be caught. It returns what
// was emitted (text and binary payloads as kept by the reader, control
// payloads copied) and the first error, after which it stops.
func feedChunks(r *frameReader, chunks [][]byte) ([]msg, *closeError) {
	var got []msg
	emit := func(op byte, p []byte) bool {
		if op >= opClose {
			p = bytes.Clone(p)
			if p == nil {
				p = []byte{}
			}
		}
		got = append(got, msg{op, p})
		return true
	}
	var buf []byte
	for _, c := range chunks {
		buf = append(buf[:0], c...)
		err := r.feed(buf, emit)
		for i := range buf {
			buf[i] = 0xEE
		}
		if err != nil {
			return got, err
		}
	}
	return got, nil
}

func sameMsgs(got, want []msg) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i].op != want[i].op || !bytes.Equal(got[i].payload, want[i].payload) {
			return false
		}
	}
	return true
}

func byteByByte(b []byte) [][]byte {
	out := make([][]byte, len(b))
	for i := range b {
		out[i] = b[i : i+1]
	}
	return out
}

func randomChunks(rng *rand.Rand, b []byte, max int) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		n := min(1+rng.IntN(max), len(b))
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

// payloadOf is n deterministic, distinguishable bytes, most of them not
// UTF-8: for binary messages and server frames.
func payloadOf(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7) + seed
	}
	return p
}

// textOf is n deterministic, distinguishable ASCII bytes: for client text
// messages, which must be UTF-8.
func textOf(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = ' ' + byte((i*7+int(seed))%95)
	}
	return p
}

// smallStream is a sequence of frames of every kind (7-bit and 16-bit
// lengths, empty payloads, a fragmented message with control frames
// between its fragments) and the messages it must yield.
func smallStream() ([]byte, []msg) {
	p126 := textOf(126, 1)
	p300 := textOf(300, 2)
	stream := cat(
		cframe(opText, "hello"),
		cframe(opText, ""),
		cframe(opBinary, "\x00\x01\xff"),
		encodeFrame(0x80|opText, p126, true, [4]byte{1, 2, 3, 4}),
		cfrag(opText, "frag-"),
		cframe(opPing, "ping!"),
		encodeFrame(opContinuation, p300, true, [4]byte{0, 0, 0, 0}),
		cframe(opPong, ""),
		cframe(opContinuation, "-end"),
		cfrag(opBinary, "b1"),
		cframe(opContinuation, "b2"),
		cframe(opPing, ""),
		cframe(opClose, closeBody(1000, "done")),
	)
	want := []msg{
		{opText, []byte("hello")},
		{opText, []byte{}},
		{opBinary, []byte("\x00\x01\xff")},
		{opText, p126},
		{opPing, []byte("ping!")},
		{opPong, []byte{}},
		{opText, cat([]byte("frag-"), p300, []byte("-end"))},
		{opBinary, []byte("b1b2")},
		{opPing, []byte{}},
		{opClose, []byte(closeBody(1000, "done"))},
	}
	return stream, want
}

// TestFrameReaderSplits asserts that however the network splits a stream
// (whole, byte by byte, at every single boundary, in random chunks), the
// reader yields the same messages.
func TestFrameReaderSplits(t *testing.T) {
	stream, want := smallStream()
	check := func(t *testing.T, name string, chunks [][]byte) {
		t.Helper()
		var r frameReader
		got, err := feedChunks(&r, chunks)
		if err != nil {
			t.Fatalf("%s: error %d %q", name, err.code, err.reason)
		}
		if !sameMsgs(got, want) {
			t.Fatalf("%s:\n got %v\nwant %v", name, got, want)
		}
		if len(r.partial) != 0 || r.fragmented || len(r.message) != 0 {
			t.Fatalf("%s: reader holds state after a complete stream: partial %d, message %d", name, len(r.partial), len(r.message))
		}
	}
	check(t, "whole", [][]byte{stream})
	check(t, "byte by byte", byteByByte(stream))
	for i := 0; i <= len(stream); i++ {
		check(t, fmt.Sprintf("split at %d", i), [][]byte{stream[:i], stream[i:]})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		check(t, fmt.Sprintf("random %d", i), randomChunks(rng, stream, 1+rng.IntN(64)))
	}
}

// TestFrameReaderLengths asserts 7-, 16- and 64-bit payload lengths at
// their boundaries (125, 126, 65535, 65536 bytes and beyond) are read
// correctly, whole and in random chunks.
func TestFrameReaderLengths(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 125, 126, 127, 4096, 65535, 65536, 70000, 200_000} {
		p := payloadOf(n, byte(n))
		key := [4]byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())}
		frame := encodeFrame(0x80|opBinary, p, true, key)
		wantHeader := 2 + 4
		switch {
		case n > 0xFFFF:
			wantHeader += 8
		case n > 125:
			wantHeader += 2
		}
		if len(frame) != wantHeader+n {
			t.Fatalf("test frame of %d bytes has %d bytes", n, len(frame))
		}
		want := []msg{{opBinary, p}, {opText, []byte("next")}}
		stream := cat(frame, cframe(opText, "next"))
		splits := [][][]byte{{stream}, randomChunks(rng, stream, 5000)}
		if n <= 4096 {
			// Small chunks of a large frame cost quadratic copying (see
			// BenchmarkFrameReaderLarge); keep them to small frames.
			splits = append(splits, randomChunks(rng, stream, 20))
		}
		for _, chunks := range splits {
			var r frameReader
			got, err := feedChunks(&r, chunks)
			if err != nil || !sameMsgs(got, want) {
				t.Fatalf("%d bytes in %d chunks: got %v, %v", n, len(chunks), got, err)
			}
		}
		// A split right after every header byte.
		for i := 1; i <= wantHeader; i++ {
			var r frameReader
			got, err := feedChunks(&r, [][]byte{stream[:i], stream[i:]})
			if err != nil || !sameMsgs(got, want) {
				t.Fatalf("%d bytes split at %d: got %v, %v", n, i, got, err)
			}
		}
	}
}

// TestFrameReaderFragmentedWithPing asserts a ping between the fragments of
// a text message is emitted at once and the message after its last
// fragment, whole.
func TestFrameReaderFragmentedWithPing(t *testing.T) {
	stream := cat(
		cfrag(opText, "Hel"),
		cframe(opPing, "are you there"),
		encodeFrame(opContinuation, []byte("lo, "), true, [4]byte{9, 8, 7, 6}),
		cframe(opContinuation, "world"),
	)
	var order []string
	var r frameReader
	err := r.feed(stream, func(op byte, p []byte) bool {
		order = append(order, fmt.Sprintf("%#x:%s", op, p))
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"0x9:are you there", "0x1:Hello, world"}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("got %q, want %q", order, want)
	}
}

// TestFrameReaderKeepsNoInput asserts the reader neither keeps a reference
// to the buffer it was fed (a pooled read buffer, reused at once) nor
// hands out a message that aliases it.
func TestFrameReaderKeepsNoInput(t *testing.T) {
	stream := cat(cframe(opText, "first message"), cframe(opText, "second message"))
	split := len(cframe(opText, "first message")) + 3 // into the second frame's header
	var kept [][]byte
	var r frameReader
	buf := bytes.Clone(stream[:split])
	if err := r.feed(buf, func(op byte, p []byte) bool { kept = append(kept, p); return true }); err != nil {
		t.Fatal(err)
	}
	for i := range buf {
		buf[i] = 'X'
	}
	buf = bytes.Clone(stream[split:])
	if err := r.feed(buf, func(op byte, p []byte) bool { kept = append(kept, p); return true }); err != nil {
		t.Fatal(err)
	}
	for i := range buf {
		buf[i] = 'Y'
	}
	if len(kept) != 2 || string(kept[0]) != "first message" || string(kept[1]) != "second message" {
		t.Fatalf("got %q", kept)
	}
}

// TestFrameReaderStopsWhenEmitDeclines asserts that feed stops at the
// message for which emit returns false, emitting nothing after it.
func TestFrameReaderStopsWhenEmitDeclines(t *testing.T) {
	stream := cat(cframe(opText, "a"), cframe(opClose, closeBody(1000, "")), cframe(opText, "b"))
	var got []string
	var r frameReader
	err := r.feed(stream, func(op byte, p []byte) bool {
		got = append(got, fmt.Sprintf("%#x", op))
		return op != opClose
	})
	if err != nil || fmt.Sprint(got) != "[0x1 0x8]" {
		t.Fatalf("got %v, %v", got, err)
	}
}

// TestFrameReaderErrors asserts each protocol violation is reported with
// its close code (1002, or 1009 for a message over the limit) however the
// input is split, after the messages that preceded it.
func TestFrameReaderErrors(t *testing.T) {
	ok := cframe(opText, "ok")
	okMsg := []msg{{opText, []byte("ok")}}
	huge64 := []byte{0x80 | opBinary, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0}
	tests := []struct {
		name   string
		limit  int64
		stream []byte
		want   []msg // emitted before the error
		code   int
	}{
		{"unmasked frame", 0, cat(ok, encodeFrame(0x80|opText, []byte("plain"), false, testMask)), okMsg, 1002},
		{"unmasked control frame", 0, encodeFrame(0x80|opPing, nil, false, testMask), nil, 1002},
		{"RSV1", 0, encodeFrame(0x80|0x40|opText, []byte("x"), true, testMask), nil, 1002},
		{"RSV2", 0, cat(ok, encodeFrame(0x80|0x20|opText, []byte("x"), true, testMask)), okMsg, 1002},
		{"RSV3", 0, encodeFrame(0x80|0x10|opPing, nil, true, testMask), nil, 1002},
		{"opcode 3", 0, cframe(0x3, "x"), nil, 1002},
		{"opcode 7", 0, cframe(0x7, "x"), nil, 1002},
		{"opcode 0xB", 0, cat(ok, cframe(0xB, "")), okMsg, 1002},
		{"opcode 0xF", 0, cframe(0xF, "x"), nil, 1002},
		{"fragmented ping", 0, cfrag(opPing, "x"), nil, 1002},
		{"fragmented close", 0, cfrag(opClose, closeBody(1000, "")), nil, 1002},
		{"fragmented pong", 0, cat(cfrag(opText, "a"), cfrag(opPong, "x")), nil, 1002},
		{"ping of 126 bytes", 0, cat(ok, cframe(opPing, strings.Repeat("p", 126))), okMsg, 1002},
		{"close of 126 bytes", 0, cframe(opClose, closeBody(1000, strings.Repeat("r", 124))), nil, 1002},
		{"continuation without a start", 0, cat(ok, cframe(opContinuation, "x")), okMsg, 1002},
		{"non-final continuation without a start", 0, cfrag(opContinuation, "x"), nil, 1002},
		{"continuation after a complete fragmented message", 0, cat(cfrag(opText, "a"), cframe(opContinuation, "b"), cframe(opContinuation, "c")), []msg{{opText, []byte("ab")}}, 1002},
		{"text while fragmented", 0, cat(cfrag(opText, "a"), cframe(opText, "b")), nil, 1002},
		{"binary while fragmented", 0, cat(cfrag(opText, "a"), cfrag(opBinary, "b")), nil, 1002},
		{"64-bit length with the top bit set", 0, huge64, nil, 1002},
		{"single frame over the limit", 10, cat(cframe(opText, "0123456789"), cframe(opText, "0123456789A")), []msg{{opText, []byte("0123456789")}}, 1009},
		{"fragments over the limit", 10, cat(cfrag(opText, "012345"), cframe(opContinuation, "6789A")), nil, 1009},
		{"many fragments over the limit", 10, cat(cfrag(opText, "0123"), cfrag(opContinuation, "4567"), cfrag(opContinuation, "89"), cframe(opContinuation, "A")), nil, 1009},
		{"16-bit length over the limit", 1000, encodeFrame(0x80|opText, payloadOf(1001, 0), true, testMask), nil, 1009},
		{"64-bit length over the limit", 1 << 20, []byte{0x80 | opBinary, 0x80 | 127, 0, 0, 0x10, 0, 0, 0, 0, 0}, nil, 1009},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			splits := map[string][][]byte{"whole": {tt.stream}, "byte by byte": byteByByte(tt.stream)}
			for i := 1; i < len(tt.stream); i++ {
				splits[fmt.Sprintf("split at %d", i)] = [][]byte{tt.stream[:i], tt.stream[i:]}
			}
			for name, chunks := range splits {
				r := frameReader{limit: tt.limit}
				got, err := feedChunks(&r, chunks)
				if err == nil {
					t.Fatalf("%s: no error; emitted %v", name, got)
				}
				if err.code != tt.code {
					t.Fatalf("%s: code %d (%q), want %d", name, err.code, err.reason, tt.code)
				}
				if !sameMsgs(got, tt.want) {
					t.Fatalf("%s: emitted %v, want %v", name, got, tt.want)
				}
			}
		})
	}
}

// TestFrameReaderLimit asserts messages of exactly the limit pass, single
// or fragmented, with control frames not counted, and that the limit
// applies per message, not per connection.
func TestFrameReaderLimit(t *testing.T) {
	stream := cat(
		cframe(opText, "0123456789"),
		cfrag(opText, "01234"),
		cframe(opPing, strings.Repeat("p", 125)),
		cframe(opContinuation, "56789"),
		cframe(opBinary, "0123456789"),
	)
	want := []msg{
		{opText, []byte("0123456789")},
		{opPing, []byte(strings.Repeat("p", 125))},
		{opText, []byte("0123456789")},
		{opBinary, []byte("0123456789")},
	}
	for _, chunks := range [][][]byte{{stream}, byteByByte(stream)} {
		r := frameReader{limit: 10}
		got, err := feedChunks(&r, chunks)
		if err != nil || !sameMsgs(got, want) {
			t.Fatalf("got %v, %v", got, err)
		}
	}
}

// TestFrameReaderRejectsHugeHeaderEarly asserts a frame announcing more
// than the limit is refused from its header alone, before its payload
// arrives (so it is never buffered).
func TestFrameReaderRejectsHugeHeaderEarly(t *testing.T) {
	r := frameReader{limit: 1 << 20}
	header := []byte{0x80 | opText, 0x80 | 127, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4} // 4 GiB
	err := r.feed(header, func(byte, []byte) bool { return true })
	if err == nil || err.code != 1009 {
		t.Fatalf("got %v", err)
	}
}

// TestParseClose asserts close payloads are validated as RFC 6455 §7.4
// and §5.5.1 require: empty is 1005, one byte and invalid codes are 1002,
// a reason that is not UTF-8 is 1007.
func TestParseClose(t *testing.T) {
	tests := []struct {
		payload  string
		wantCode int // the code parsed
		errCode  int // the close to send instead, 0 for none
	}{
		{"", 1005, 0},
		{"\x03", 0, 1002},
		{closeBody(1000, ""), 1000, 0},
		{closeBody(1000, "bye"), 1000, 0},
		{closeBody(1001, ""), 1001, 0},
		{closeBody(1002, ""), 1002, 0},
		{closeBody(1003, ""), 1003, 0},
		{closeBody(1007, ""), 1007, 0},
		{closeBody(1011, ""), 1011, 0},
		{closeBody(1012, ""), 1012, 0},
		{closeBody(1014, "bad gateway"), 1014, 0},
		{closeBody(3000, ""), 3000, 0},
		{closeBody(4000, "é ✓"), 4000, 0},
		{closeBody(4999, ""), 4999, 0},
		{closeBody(0, ""), 0, 1002},
		{closeBody(999, ""), 0, 1002},
		{closeBody(1004, ""), 0, 1002},
		{closeBody(1005, ""), 0, 1002},
		{closeBody(1006, ""), 0, 1002},
		{closeBody(1015, ""), 0, 1002},
		{closeBody(1016, ""), 0, 1002},
		{closeBody(2000, ""), 0, 1002},
		{closeBody(2999, ""), 0, 1002},
		{closeBody(5000, ""), 0, 1002},
		{closeBody(65535, ""), 0, 1002},
		{closeBody(1000, "\xff"), 0, 1007},
		{closeBody(1000, "ok\xc3"), 0, 1007},
		{closeBody(4000, "\xed\xa0\x80"), 0, 1007}, // a UTF-16 surrogate
	}
	for _, tt := range tests {
		code, err := parseClose([]byte(tt.payload))
		switch {
		case tt.errCode == 0 && err != nil:
			t.Errorf("%q: error %d %q", tt.payload, err.code, err.reason)
		case tt.errCode == 0 && code != tt.wantCode:
			t.Errorf("%q: code %d, want %d", tt.payload, code, tt.wantCode)
		case tt.errCode != 0 && err == nil:
			t.Errorf("%q: accepted as %d, want close %d", tt.payload, code, tt.errCode)
		case tt.errCode != 0 && err.code != tt.errCode:
			t.Errorf("%q: close %d, want %d", tt.payload, err.code, tt.errCode)
		}
	}
}

// TestAppendFrame asserts server frames are final, unmasked, and use the
// shortest length encoding at 125/126/65535/65536 bytes, and that a client
// reads back what was written.
func TestAppendFrame(t *testing.T) {
	tests := []struct {
		n      int
		header []byte
	}{
		{0, []byte{0x81, 0}},
		{1, []byte{0x81, 1}},
		{125, []byte{0x81, 125}},
		{126, []byte{0x81, 126, 0, 126}},
		{65535, []byte{0x81, 126, 0xff, 0xff}},
		{65536, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
		{1 << 20, []byte{0x81, 127, 0, 0, 0, 0, 0, 0x10, 0, 0}},
	}
	for _, tt := range tests {
		p := payloadOf(tt.n, 5)
		prefix := []byte("prefix")
		out := appendFrame(bytes.Clone(prefix), opText, p)
		if !bytes.HasPrefix(out, prefix) {
			t.Fatalf("%d: dst not kept", tt.n)
		}
		out = out[len(prefix):]
		if !bytes.Equal(out[:len(tt.header)], tt.header) {
			t.Fatalf("%d: header % x, want % x", tt.n, out[:len(tt.header)], tt.header)
		}
		if len(out) != len(tt.header)+tt.n || !bytes.Equal(out[len(tt.header):], p) {
			t.Fatalf("%d: %d bytes, payload differs", tt.n, len(out))
		}
		f, err := readServerFrame(bufio.NewReader(bytes.NewReader(out)))
		if err != nil || !f.fin || f.rsv != 0 || f.op != opText || !bytes.Equal(f.payload, p) {
			t.Fatalf("%d: read back %v, %v", tt.n, f, err)
		}
	}
	for _, op := range []byte{opPong, opClose} {
		if out := appendFrame(nil, op, []byte("ab")); !bytes.Equal(out, []byte{0x80 | op, 2, 'a', 'b'}) {
			t.Fatalf("op %#x: % x", op, out)
		}
	}
}

// TestClosePayload asserts the close payload is the big-endian code then
// the reason, cut to fit a 125-byte control frame, and empty for 1005.
func TestClosePayload(t *testing.T) {
	if got := closePayload(4000, "bye"); string(got) != "\x0f\xa0bye" {
		t.Fatalf("got %q", got)
	}
	if got := closePayload(1000, ""); string(got) != "\x03\xe8" {
		t.Fatalf("got %q", got)
	}
	if got := closePayload(closeNoStatus, "ignored"); got == nil || len(got) != 0 {
		t.Fatalf("1005: got %#v, want empty and non-nil (nil means no close frame)", got)
	}
	long := strings.Repeat("r", 300)
	got := closePayload(1000, long)
	if len(got) != 125 || string(got[2:]) != long[:123] {
		t.Fatalf("long reason: %d bytes", len(got))
	}
	if len(appendFrame(nil, opClose, got)) != 127 {
		t.Fatal("close frame with a long reason does not fit a control frame")
	}
}

// TestClosePayloadCutsOnRuneBoundary asserts a long reason is cut without
// splitting a UTF-8 character: clients fail a close frame whose reason is
// not UTF-8 (gorilla/websocket and browsers alike).
func TestClosePayloadCutsOnRuneBoundary(t *testing.T) {
	got := closePayload(1000, strings.Repeat("é", 100)) // 200 bytes
	if !utf8.Valid(got[2:]) {
		t.Fatalf("reason %q is not UTF-8", got[2:])
	}
	if len(got) > 125 {
		t.Fatalf("%d bytes", len(got))
	}
}

// BenchmarkFrameReader measures parsing a stream of small masked text
// frames in 4 KiB reads, as a connection reads them.
func BenchmarkFrameReader(b *testing.B) {
	var one []byte
	for i := range 64 {
		one = append(one, cframe(opText, fmt.Sprintf(`{"command":"message","identifier":"x","data":"%d"}`, i))...)
	}
	stream := bytes.Repeat(one, 16)
	chunks := randomChunks(rand.New(rand.NewPCG(5, 6)), stream, readBufSize)
	buf := make([]byte, readBufSize)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		var r frameReader
		for _, c := range chunks {
			n := copy(buf, c)
			if err := r.feed(buf[:n], func(byte, []byte) bool { return true }); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkFrameReaderLarge measures reading one 1 MiB message in 4 KiB
// reads; the reader copies the incomplete frame again on every read, so
// its cost grows with the square of the frame size.
func BenchmarkFrameReaderLarge(b *testing.B) {
	stream := encodeFrame(0x80|opBinary, payloadOf(1<<20, 0), true, testMask)
	buf := make([]byte, readBufSize)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		var r frameReader
		for rest := stream; len(rest) > 0; {
			n := copy(buf, rest)
			rest = rest[n:]
			if err := r.feed(buf[:n], func(byte, []byte) bool { return true }); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkAppendFrame measures encoding a typical broadcast frame.
func BenchmarkAppendFrame(b *testing.B) {
	payload := []byte(`{"identifier":"{\"channel\":\"ChatChannel\",\"id\":42}","message":{"text":"hello, world"}}`)
	dst := make([]byte, 0, 4096)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		dst = appendFrame(dst[:0], opText, payload)
	}
}

// BenchmarkSendAndEncode measures a connection's share of one delivery:
// queueing a shared frame and encoding it for the socket write. It does not
// allocate.
func BenchmarkSendAndEncode(b *testing.B) {
	c := &Conn{t: NewTransport(Options{}), writer: writerDeferred}
	frame := []byte(`{"identifier":"{\"channel\":\"$pubsub\",\"stream_name\":\"chat/1\"}","message":{"text":"hello"}}`)
	buf := make([]byte, 0, 4096)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		c.Send(frame, nil)
		c.mu.Lock()
		buf, _, _, _ = c.encode(buf[:0])
		c.mu.Unlock()
	}
}
