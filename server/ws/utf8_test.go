package ws

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestFrameReaderUTF8 asserts text messages are validated as UTF-8 (RFC
// 6455 §8.1), whole or reassembled from fragments, however the input is
// split: a fragment boundary inside a character is fine, invalid or
// unfinished UTF-8 fails with 1007, as soon as a fragment makes it
// certain. Binary messages are not checked.
func TestFrameReaderUTF8(t *testing.T) {
	const euro, smile = "\u20ac", "\U0001F600" // 3 and 4 bytes
	tests := []struct {
		name   string
		frags  []string // one message: its fragments, the last final
		op     byte
		valid  bool
		failAt int // for invalid messages, the fragment that fails it
	}{
		{"ASCII", []string{"hello"}, opText, true, 0},
		{"multi-byte runes", []string{"κόσμε " + euro + smile}, opText, true, 0},
		{"empty fragments", []string{"", "a", "", ""}, opText, true, 0},
		{"rune split 1+2", []string{euro[:1], euro[1:]}, opText, true, 0},
		{"rune split 2+1", []string{euro[:2], euro[2:]}, opText, true, 0},
		{"rune split 1+1+1+1", []string{smile[:1], smile[1:2], smile[2:3], smile[3:]}, opText, true, 0},
		{"rune split with empty fragments", []string{"x" + smile[:2], "", smile[2:], ""}, opText, true, 0},
		{"max code point", []string{"\U0010FFFF"}, opText, true, 0},
		{"lone continuation byte", []string{"a\x80b"}, opText, false, 0},
		{"0xFF", []string{"\xff"}, opText, false, 0},
		{"overlong slash", []string{"\xc0\xaf"}, opText, false, 0},
		{"overlong 3-byte", []string{"\xe0\x80\xaf"}, opText, false, 0},
		{"surrogate", []string{"\xed\xa0\x80"}, opText, false, 0},
		{"above U+10FFFF", []string{"\xf4\x90\x80\x80"}, opText, false, 0},
		{"truncated at the end", []string{"ok" + euro[:2]}, opText, false, 0},
		{"truncated in the last fragment", []string{"ok", euro[:2]}, opText, false, 1},
		{"truncated rune before an empty last fragment", []string{"ok" + smile[:3], ""}, opText, false, 1},
		{"invalid in the first fragment", []string{"a\xffb", "more", "end"}, opText, false, 0},
		{"invalid in a middle fragment", []string{"start", "a\xc3\x28", "end"}, opText, false, 1},
		{"surrogate split across fragments", []string{"\xed", "\xa0\x80"}, opText, false, 1},
		{"invalid continuation after a split", []string{euro[:2], "x"}, opText, false, 1},
		{"invalid binary", []string{"\xff\xfe"}, opBinary, true, 0},
		{"invalid binary fragments", []string{"\xed", "\xa0\x80", "\xc0"}, opBinary, true, 0},
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var frames [][]byte
			for i, f := range tt.frags {
				op, fin := byte(opContinuation), i == len(tt.frags)-1
				if i == 0 {
					op = tt.op
				}
				if fin {
					op |= 0x80
				}
				frames = append(frames, encodeFrame(op, []byte(f), true, testMask))
			}
			stream := cat(append(frames, cframe(opText, "next"))...)
			for _, chunks := range [][][]byte{{stream}, byteByByte(stream), randomChunks(rng, stream, 7)} {
				var r frameReader
				got, err := feedChunks(&r, chunks)
				if tt.valid {
					want := []msg{{tt.op, []byte(strings.Join(tt.frags, ""))}, {opText, []byte("next")}}
					if err != nil || !sameMsgs(got, want) {
						t.Fatalf("got %v, %v; want %v", got, err, want)
					}
					continue
				}
				if err == nil || err.code != 1007 || len(got) != 0 {
					t.Fatalf("got %v, %v; want close 1007 and nothing emitted", got, err)
				}
			}
			if tt.valid {
				return
			}
			// Fails as soon as the failing fragment is in, with the
			// fragments after it still to come.
			var r frameReader
			_, err := feedChunks(&r, [][]byte{cat(frames[:tt.failAt+1]...)})
			if err == nil || err.code != 1007 {
				t.Fatalf("after fragment %d: got %v, want close 1007", tt.failAt, err)
			}
			if tt.failAt > 0 {
				r = frameReader{}
				if _, err := feedChunks(&r, [][]byte{cat(frames[:tt.failAt]...)}); err != nil {
					t.Fatalf("failed before fragment %d: %v", tt.failAt, err)
				}
			}
		})
	}
}
