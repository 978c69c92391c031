package ws

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// conformanceCase is one row of the conformance table, modelled on a case
// of the Autobahn test suite (its number in id; "x" marks a case of our
// own in that group): the bytes a client sends and what it must see.
//
// Every row ends with the server's close frame and end of stream: rows
// whose input leaves the connection open are followed by a client close
// with 1000, which the server echoes.
type conformanceCase struct {
	id, name string
	input    []byte
	// chop writes the input in pieces of this many bytes (0: at once).
	chop int
	// msgs are the messages handle must get, exactly.
	msgs []string
	// pongs are the payloads of the pings the server reads. It may skip
	// a pong for a ping followed by another (RFC 6455 §5.5.3), so it must
	// answer with a subsequence of them ending with the last.
	pongs []string
	// close is the code of the server's close frame (1005: empty); 0
	// means the input leaves the connection open.
	close int
}

// conformanceLimit is the server's MaxMessageSize in the table.
const conformanceLimit = 1 << 20

// Frame builders for the table: final, masked client frames unless named
// otherwise.
func ctext(s string) []byte         { return cframe(opText, s) }
func cbinary(b []byte) []byte       { return encodeFrame(0x80|opBinary, b, true, testMask) }
func cping(s string) []byte         { return cframe(opPing, s) }
func cpong(s string) []byte         { return cframe(opPong, s) }
func cclose(c int, r string) []byte { return cframe(opClose, closeBody(c, r)) }

// withRSV is a frame with reserved bits rsv (0x10, 0x20, 0x40) set.
func withRSV(rsv, op byte, s string) []byte {
	return encodeFrame(0x80|rsv|op, []byte(s), true, testMask)
}

// fragments is one message of opcode op in the given fragments.
func fragments(op byte, frags ...string) []byte {
	var out []byte
	for i, f := range frags {
		b0 := byte(opContinuation)
		if i == 0 {
			b0 = op
		}
		if i == len(frags)-1 {
			b0 |= 0x80
		}
		out = append(out, encodeFrame(b0, []byte(f), true, testMask)...)
	}
	return out
}

// splitEvery cuts s into pieces of n bytes.
func splitEvery(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}

// times is n copies of s.
func times(n int, s string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func conformanceCases() []conformanceCase {
	t64k, t256k, t1m := string(textOf(64<<10, 1)), string(textOf(256<<10, 2)), string(textOf(conformanceLimit, 3))
	b64k, b1m := payloadOf(64<<10, 4), payloadOf(conformanceLimit, 5)
	bin := "\x00\xff\xfe\xfd\xfc\xfb\x00\xff"
	kosme := "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
	var pings []byte
	var pingPayloads []string
	for i := range 10 {
		p := fmt.Sprintf("payload-%d", i)
		pings, pingPayloads = append(pings, cping(p)...), append(pingPayloads, p)
	}
	cases := []conformanceCase{
		// 1: framing, the three length encodings at their boundaries.
		{id: "1.1.1", name: "empty text", input: ctext(""), msgs: []string{""}},
		{id: "1.1.2", name: "text of 125 bytes", input: ctext(strings.Repeat("*", 125)), msgs: []string{strings.Repeat("*", 125)}},
		{id: "1.1.3", name: "text of 126 bytes", input: ctext(strings.Repeat("*", 126)), msgs: []string{strings.Repeat("*", 126)}},
		{id: "1.1.6", name: "text of 65535 bytes", input: ctext(t64k[:65535]), msgs: []string{t64k[:65535]}},
		{id: "1.1.7", name: "text of 65536 bytes", input: ctext(t64k), msgs: []string{t64k}},
		{id: "1.1.8", name: "text of 65536 bytes in 997-byte writes", input: ctext(t64k), chop: 997, msgs: []string{t64k}},
		{id: "1.2.1", name: "empty binary", input: cbinary(nil), msgs: []string{""}},
		{id: "1.2.8", name: "binary of 65536 bytes in 997-byte writes", input: cbinary(b64k), chop: 997, msgs: []string{string(b64k)}},

		// 2: pings and pongs.
		{id: "2.1", name: "empty ping", input: cping(""), pongs: []string{""}},
		{id: "2.2", name: "ping with text", input: cping("Hello, world!"), pongs: []string{"Hello, world!"}},
		{id: "2.3", name: "ping with binary", input: cping(bin), pongs: []string{bin}},
		{id: "2.4", name: "ping of 125 bytes", input: cping(strings.Repeat("\xfe", 125)), pongs: []string{strings.Repeat("\xfe", 125)}},
		{id: "2.5", name: "ping of 126 bytes", input: cping(strings.Repeat("\xfe", 126)), close: 1002},
		{id: "2.6", name: "ping of 125 bytes a byte at a time", input: cping(strings.Repeat("\xfe", 125)), chop: 1, pongs: []string{strings.Repeat("\xfe", 125)}},
		{id: "2.7", name: "unsolicited empty pong", input: cpong("")},
		{id: "2.8", name: "unsolicited pong with payload", input: cpong("unsolicited")},
		{id: "2.9", name: "unsolicited pong, then ping", input: cat(cpong("unsolicited"), cping("solicited")), pongs: []string{"solicited"}},
		{id: "2.10", name: "ten pings", input: pings, pongs: pingPayloads},
		{id: "2.11", name: "ten pings a byte at a time", input: pings, chop: 1, pongs: pingPayloads},

		// 3: reserved bits, with no extension negotiated.
		{id: "3.1", name: "RSV1 text", input: withRSV(0x40, opText, "x"), close: 1002},
		{id: "3.2", name: "text, RSV2 text, ping", input: cat(ctext("ok"), withRSV(0x20, opText, "x"), cping("")), msgs: []string{"ok"}, close: 1002},
		{id: "3.3", name: "text, RSV3 text, ping, a byte at a time", input: cat(ctext("ok"), withRSV(0x10, opText, "x"), cping("")), chop: 1, msgs: []string{"ok"}, close: 1002},
		{id: "3.5", name: "RSV1|RSV3 binary", input: encodeFrame(0x80|0x50|opBinary, []byte(bin), true, testMask), close: 1002},
		{id: "3.6", name: "RSV2|RSV3 ping", input: withRSV(0x30, opPing, ""), close: 1002},
		{id: "3.7", name: "all RSV bits on a close", input: withRSV(0x70, opClose, closeBody(1000, "")), close: 1002},

		// 4: reserved opcodes.
		{id: "4.1.1", name: "opcode 3", input: cframe(3, ""), close: 1002},
		{id: "4.1.3", name: "text, opcode 5, ping", input: cat(ctext("ok"), cframe(5, ""), cping("")), msgs: []string{"ok"}, close: 1002},
		{id: "4.1.5", name: "text, opcode 7 with payload, ping, a byte at a time", input: cat(ctext("ok"), cframe(7, "data"), cping("")), chop: 1, msgs: []string{"ok"}, close: 1002},
		{id: "4.2.1", name: "opcode 11", input: cframe(0xB, ""), close: 1002},
		{id: "4.2.3", name: "text, opcode 13, ping", input: cat(ctext("ok"), cframe(0xD, ""), cping("")), msgs: []string{"ok"}, close: 1002},
		{id: "4.2.5", name: "text, opcode 15 with payload, ping", input: cat(ctext("ok"), cframe(0xF, "data"), cping("")), msgs: []string{"ok"}, close: 1002},

		// 5: fragmentation.
		{id: "5.1", name: "ping in two fragments", input: cat(cfrag(opPing, "frag1"), cframe(opContinuation, "frag2")), close: 1002},
		{id: "5.2", name: "pong in two fragments", input: cat(cfrag(opPong, "frag1"), cframe(opContinuation, "frag2")), close: 1002},
		{id: "5.3", name: "text in two fragments", input: fragments(opText, "frag1", "frag2"), msgs: []string{"frag1frag2"}},
		{id: "5.5", name: "text in two fragments, a byte at a time", input: fragments(opText, "frag1", "frag2"), chop: 1, msgs: []string{"frag1frag2"}},
		{id: "5.6", name: "text in two fragments, a ping between", input: cat(cfrag(opText, "frag1"), cping("pongme!"), cframe(opContinuation, "frag2")), pongs: []string{"pongme!"}, msgs: []string{"frag1frag2"}},
		{id: "5.8", name: "text in two fragments, a ping between, a byte at a time", input: cat(cfrag(opText, "frag1"), cping("pongme!"), cframe(opContinuation, "frag2")), chop: 1, pongs: []string{"pongme!"}, msgs: []string{"frag1frag2"}},
		{id: "5.9", name: "final continuation with nothing to continue", input: cat(cframe(opContinuation, "x"), ctext("never")), close: 1002},
		{id: "5.12", name: "non-final continuation with nothing to continue", input: cat(cfrag(opContinuation, "x"), ctext("never")), close: 1002},
		{id: "5.15", name: "a message, then continuations of nothing", input: cat(fragments(opText, "frag1", "frag2"), cfrag(opContinuation, "frag3"), ctext("frag4")), msgs: []string{"frag1frag2"}, close: 1002},
		{id: "5.18", name: "text, then text before it ended", input: cat(cfrag(opText, "frag1"), ctext("frag2")), close: 1002},
		{id: "5.19", name: "five fragments, pings between", input: cat(cfrag(opText, "f1"), cfrag(opContinuation, "f2"), cping("p1"), cfrag(opContinuation, "f3"), cfrag(opContinuation, "f4"), cping("p2"), cframe(opContinuation, "f5")), pongs: []string{"p1", "p2"}, msgs: []string{"f1f2f3f4f5"}},
		{id: "5.x", name: "binary in fragments with an empty one", input: fragments(opBinary, "\x00", "", "\xff"), msgs: []string{"\x00\xff"}},

		// 6: UTF-8 in text messages.
		{id: "6.1.2", name: "text in three empty fragments", input: fragments(opText, "", "", ""), msgs: []string{""}},
		{id: "6.1.3", name: "text of empty, non-empty, empty fragments", input: fragments(opText, "", "middle", ""), msgs: []string{"middle"}},
		{id: "6.2.1", name: "valid UTF-8", input: ctext("Hello-µ@ßöäüàá-UTF-8!!"), msgs: []string{"Hello-µ@ßöäüàá-UTF-8!!"}},
		{id: "6.2.3", name: "valid UTF-8 a byte per fragment", input: fragments(opText, splitEvery("Hello-µ@ßöäüàá-UTF-8!!", 1)...), msgs: []string{"Hello-µ@ßöäüàá-UTF-8!!"}},
		{id: "6.5.1", name: "κόσμε", input: ctext(kosme), msgs: []string{kosme}},
		{id: "6.6.x", name: "κόσμε in fragments of 3 bytes, splitting runes", input: fragments(opText, splitEvery(kosme, 3)...), msgs: []string{kosme}},
		{id: "6.7.x", name: "first sequence of each length", input: ctext("\x00\xc2\x80\xe0\xa0\x80\xf0\x90\x80\x80"), msgs: []string{"\x00\xc2\x80\xe0\xa0\x80\xf0\x90\x80\x80"}},
		{id: "6.8.x", name: "last sequence of each length", input: ctext("\x7f\xdf\xbf\xef\xbf\xbf\xf4\x8f\xbf\xbf"), msgs: []string{"\x7f\xdf\xbf\xef\xbf\xbf\xf4\x8f\xbf\xbf"}},
		{id: "6.22.x", name: "noncharacters and U+FFFD are valid", input: ctext("\xef\xbf\xbe\xef\xbf\xbd"), msgs: []string{"\xef\xbf\xbe\xef\xbf\xbd"}},
		{id: "6.3.1", name: "surrogate in κόσμε", input: ctext(kosme + "\xed\xa0\x80edited"), close: 1007},
		{id: "6.3.2", name: "surrogate in κόσμε, a byte per fragment", input: fragments(opText, splitEvery(kosme+"\xed\xa0\x80edited", 1)...), close: 1007},
		{id: "6.4.1", name: "fails at the invalid fragment, before the message ends", input: cat(cfrag(opText, kosme), cfrag(opContinuation, "\xf4\x90\x80\x80")), close: 1007},
		{id: "6.10.x", name: "5-byte sequence", input: ctext("\xf8\x88\x80\x80\x80"), close: 1007},
		{id: "6.12.x", name: "lone continuation byte", input: ctext("a\x80b"), close: 1007},
		{id: "6.14.x", name: "last continuation byte missing", input: ctext("ok\xe0\xa0"), close: 1007},
		{id: "6.14.x", name: "rune cut short by the last fragment", input: fragments(opText, "ok\xf0\x90", "\x80"), close: 1007},
		{id: "6.16.x", name: "impossible bytes", input: ctext("\xfe\xff"), close: 1007},
		{id: "6.17.x", name: "overlong slash", input: ctext("\xc0\xaf"), close: 1007},
		{id: "6.21.x", name: "paired surrogates", input: ctext("\xed\xa0\x80\xed\xb0\x80"), close: 1007},
		{id: "6.x", name: "binary is not checked", input: cbinary([]byte("\xed\xa0\x80\xff")), msgs: []string{"\xed\xa0\x80\xff"}},

		// 7: the close handshake.
		{id: "7.1.1", name: "text, then close", input: cat(ctext("Hello World!"), cclose(1000, "")), msgs: []string{"Hello World!"}, close: 1000},
		{id: "7.1.2", name: "close twice", input: cat(cclose(1000, ""), cclose(1000, "")), close: 1000},
		{id: "7.1.3", name: "ping after close", input: cat(cclose(1000, ""), cping("late")), close: 1000},
		{id: "7.1.4", name: "text after close", input: cat(cclose(1000, ""), ctext("late")), close: 1000},
		{id: "7.1.5", name: "close between fragments", input: cat(cfrag(opText, "frag1"), cclose(1000, ""), cframe(opContinuation, "frag2")), close: 1000},
		{id: "7.1.6", name: "256 KiB text, close, ping", input: cat(ctext(t256k), cclose(1000, ""), cping("late")), msgs: []string{t256k}, close: 1000},
		{id: "7.3.1", name: "empty close", input: cframe(opClose, ""), close: 1005},
		{id: "7.3.2", name: "close of one byte", input: cframe(opClose, "\x03"), close: 1002},
		{id: "7.3.4", name: "close 1000 with a reason", input: cclose(1000, "Hello World!"), close: 1000},
		{id: "7.3.5", name: "close with a 123-byte reason", input: cclose(1000, strings.Repeat("*", 123)), close: 1000},
		{id: "7.3.6", name: "close with a 124-byte reason", input: cclose(1000, strings.Repeat("*", 124)), close: 1002},
		{id: "7.5.1", name: "close reason not UTF-8", input: cclose(1000, kosme+"\xed\xa0\x80edited"), close: 1007},
	}
	// Close codes a client may send are echoed; others are a protocol
	// error (RFC 6455 §7.4). 1012-1014 were registered after the RFC.
	for i, code := range []int{1001, 1002, 1003, 1007, 1008, 1011, 1014, 3000, 4999} {
		cases = append(cases, conformanceCase{id: fmt.Sprintf("7.7.%d", i+1), name: fmt.Sprintf("close %d", code), input: cclose(code, ""), close: code})
	}
	for i, code := range []int{0, 999, 1004, 1005, 1006, 1015, 2999, 5000, 65535} {
		cases = append(cases, conformanceCase{id: fmt.Sprintf("7.9.%d", i+1), name: fmt.Sprintf("close %d", code), input: cclose(code, ""), close: 1002})
	}
	return append(cases, []conformanceCase{
		// 9: sizes up to the limit, and over it.
		{id: "9.1.1", name: "text of 64 KiB", input: ctext(t64k), msgs: []string{t64k}},
		{id: "9.1.3", name: "text of 1 MiB (the limit)", input: ctext(t1m), msgs: []string{t1m}},
		{id: "9.2.3", name: "binary of 1 MiB", input: cbinary(b1m), msgs: []string{string(b1m)}},
		{id: "9.3.1", name: "1 MiB text in 64-byte fragments", input: fragments(opText, splitEvery(t1m, 64)...), msgs: []string{t1m}},
		{id: "9.3.5", name: "1 MiB text in 4 KiB fragments", input: fragments(opText, splitEvery(t1m, 4<<10)...), msgs: []string{t1m}},
		{id: "9.4.3", name: "1 MiB binary in 256-byte fragments", input: fragments(opBinary, splitEvery(string(b1m), 256)...), msgs: []string{string(b1m)}},
		{id: "9.5.x", name: "1 MiB text in 1 KiB writes", input: ctext(t1m), chop: 1 << 10, msgs: []string{t1m}},
		{id: "9.7.x", name: "1000 small text messages", input: bytes.Repeat(ctext("Hello, world!"), 1000), msgs: times(1000, "Hello, world!")},
		{id: "9.x", name: "text over the limit", input: ctext(t1m + "!")[:1000], close: 1009}, // refused from its header
		{id: "9.x", name: "fragments over the limit", input: fragments(opText, t1m, "!"), close: 1009},
	}...)
}

// TestConformance runs the conformance table on both read paths.
func TestConformance(t *testing.T) {
	cases := conformanceCases()
	bothPaths(t, func(t *testing.T, p path) {
		s := newTestServer(t, p, serverConfig{opts: Options{MaxMessageSize: conformanceLimit}})
		for _, tc := range cases {
			t.Run(tc.id+" "+tc.name, func(t *testing.T) { runConformance(t, s, tc) })
		}
	})
}

func runConformance(t *testing.T, s *testServer, tc conformanceCase) {
	rc, sc := s.dialRaw(t)
	input := tc.input
	if tc.close == 0 {
		input = cat(input, cclose(1000, ""))
	}
	// Written on a goroutine: a server that fails the connection stops
	// reading, and the rest of a large input may never be taken.
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		rc.nc.SetWriteDeadline(time.Now().Add(testTimeout))
		step := len(input)
		if tc.chop > 0 {
			step = tc.chop
		}
		for rest := input; len(rest) > 0; {
			n := min(step, len(rest))
			if _, err := rc.nc.Write(rest[:n]); err != nil {
				return
			}
			rest = rest[n:]
		}
	}()
	var pongs []string
	f := rc.read()
	for f.op == opPong {
		pongs = append(pongs, string(f.payload))
		f = rc.read()
	}
	wantClose := tc.close
	if wantClose == 0 {
		wantClose = 1000
	}
	if code, _ := f.closeCode(); f.op != opClose || code != wantClose {
		t.Fatalf("got %v, want close %d", f, wantClose)
	}
	if !pongsAnswer(pongs, tc.pongs) {
		t.Fatalf("pongs %q for pings %q", pongs, tc.pongs)
	}
	rc.expectFIN()
	waitEnded(t, sc)
	rc.nc.Close()
	<-wrote
	var got []string
	for len(sc.msgs) > 0 {
		got = append(got, string(<-sc.msgs))
	}
	if len(got) != len(tc.msgs) {
		t.Fatalf("handled %d messages, want %d", len(got), len(tc.msgs))
	}
	for i := range got {
		if got[i] != tc.msgs[i] {
			t.Fatalf("message %d: got %d bytes %.20q, want %d bytes %.20q", i, len(got[i]), got[i], len(tc.msgs[i]), tc.msgs[i])
		}
	}
}

// pongsAnswer reports whether pongs answer pings: in order, each for one
// of them, and the last for the last.
func pongsAnswer(pongs, pings []string) bool {
	if len(pings) == 0 || len(pongs) == 0 {
		return len(pings) == len(pongs)
	}
	if pongs[len(pongs)-1] != pings[len(pings)-1] {
		return false
	}
	i := 0
	for _, p := range pongs {
		for i < len(pings) && pings[i] != p {
			i++
		}
		if i == len(pings) {
			return false
		}
		i++
	}
	return true
}
