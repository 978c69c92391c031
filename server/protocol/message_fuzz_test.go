package protocol

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzParseCommand feeds arbitrary client frames to ParseCommand. Whatever
// it accepts must be JSON whose parsed fields survive a round trip, and the
// replies the server builds from a parsed identifier must carry it back
// intact. The seed corpus is in testdata/fuzz/FuzzParseCommand.
func FuzzParseCommand(f *testing.F) {
	f.Fuzz(func(t *testing.T, frame []byte) {
		c, err := ParseCommand(frame)
		if err != nil {
			if c != nil {
				t.Fatalf("error %v with a command %+v", err, c)
			}
			return
		}
		if c == nil {
			t.Fatal("no error and no command")
		}
		if !json.Valid(frame) {
			t.Fatalf("accepted a frame that is not JSON: %q", frame)
		}
		// Strings come out of the decoder as valid UTF-8 (invalid bytes
		// become U+FFFD), so they can be echoed to clients as they are.
		if !utf8.ValidString(c.Command) || !utf8.ValidString(c.Identifier) {
			t.Fatalf("invalid UTF-8 in %q / %q", c.Command, c.Identifier)
		}
		for name, raw := range map[string]json.RawMessage{"data": c.Data, "history": c.History, "presence": c.Presence} {
			if raw != nil && !json.Valid(raw) {
				t.Fatalf("%s is not JSON: %q", name, raw)
			}
		}
		checkRoundTrip(t, c)
		checkReplies(t, c.Identifier)
	})
}

// checkRoundTrip re-encodes a parsed command, parses it again and requires
// the same command (raw fields may only lose insignificant whitespace).
func checkRoundTrip(t *testing.T, c *Command) {
	t.Helper()
	enc, err := json.Marshal(c)
	if err != nil {
		t.Fatalf("cannot re-encode %+v: %v", c, err)
	}
	again, err := ParseCommand(enc)
	if err != nil {
		t.Fatalf("re-encoded command %s does not parse: %v", enc, err)
	}
	if again.Command != c.Command || again.Identifier != c.Identifier {
		t.Fatalf("round trip changed %q/%q into %q/%q", c.Command, c.Identifier, again.Command, again.Identifier)
	}
	enc2, err := json.Marshal(again)
	if err != nil || !bytes.Equal(enc, enc2) {
		t.Fatalf("round trip is not stable: %s then %s (%v)", enc, enc2, err)
	}
}

// checkReplies requires the replies quoting an identifier to be JSON that
// gives the identifier back unchanged.
func checkReplies(t *testing.T, identifier string) {
	t.Helper()
	for _, reply := range [][]byte{
		Confirm(identifier),
		Reject(identifier),
		Transmission(identifier, []byte(`{}`)),
		Presence(identifier, []byte(`{}`)),
	} {
		var msg struct {
			Identifier *string `json:"identifier"`
		}
		if err := json.Unmarshal(reply, &msg); err != nil || msg.Identifier == nil || *msg.Identifier != identifier {
			t.Fatalf("reply %s does not carry identifier %q (%v)", reply, identifier, err)
		}
	}
}
