package protocol

import (
	"encoding/json"
	"testing"
)

// plainCommandCases are frames parsePlainCommand must take (true) or
// leave to encoding/json (false).
var plainCommandCases = []struct {
	frame string
	plain bool
}{
	{`{"command":"subscribe","identifier":"{\"channel\":\"$pubsub\",\"signed_stream_name\":\"abc--def\"}"}`, true},
	{` { "identifier" : "{\"channel\":\"Chat\"}" , "command" : "unsubscribe" } ` + "\n", true},
	{`{"command":"subscribe"}`, true},
	{`{"command":"x","identifier":"a\\b\/c\n\t\r\b\f"}`, true},
	{`{"command":"subscribe","identifier":"\u0041"}`, false},
	{`{"command":"subscribe","identifier":"é"}`, false},
	{`{"Command":"subscribe"}`, false},
	{`{"command":"subscribe","command":"unsubscribe"}`, false},
	{`{"command":"message","identifier":"x","data":"{}"}`, false},
	{`{"identifier":"x"}`, false},
	{`{"command":"subscribe"}x`, false},
	{`{"command":"subscribe",}`, false},
	{`{"command":"subscribe"`, false},
	{`{"command":"sub` + "\x01" + `"}`, false},
	{`{"command":null}`, false},
	{`{"command":"a\x"}`, false},
	{`{}`, false},
	{``, false},
}

func TestParsePlainCommand(t *testing.T) {
	for _, tc := range plainCommandCases {
		c, ok := parsePlainCommand([]byte(tc.frame))
		if ok != tc.plain {
			t.Errorf("%q: plain %v, want %v", tc.frame, ok, tc.plain)
		}
		if ok {
			requireSameAsJSON(t, []byte(tc.frame), c)
		}
	}
}

// requireSameAsJSON fails unless encoding/json decodes frame into c.
func requireSameAsJSON(t *testing.T, frame []byte, c *Command) {
	t.Helper()
	var want Command
	if err := json.Unmarshal(frame, &want); err != nil {
		t.Fatalf("%q: plain path took a frame encoding/json refuses: %v", frame, err)
	}
	if c.Command != want.Command || c.Identifier != want.Identifier || c.Data != nil || c.History != nil || c.Presence != nil ||
		want.Data != nil || want.History != nil || want.Presence != nil {
		t.Fatalf("%q: plain path gave %+v, encoding/json %+v", frame, *c, want)
	}
}

// FuzzParsePlainCommand: whatever the plain path takes, encoding/json
// decodes to the same command.
func FuzzParsePlainCommand(f *testing.F) {
	for _, tc := range plainCommandCases {
		f.Add([]byte(tc.frame))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		if c, ok := parsePlainCommand(frame); ok {
			requireSameAsJSON(t, frame, c)
		}
	})
}

func BenchmarkParseCommand(b *testing.B) {
	frame := []byte(`{"command":"subscribe","identifier":"{\"channel\":\"$pubsub\",\"signed_stream_name\":\"ImJlbmNoIg==--4b1c5e5b7e2c0c7f0fd7b5a1e5c2b8a0d2a3c4f5e6d7c8b9a0f1e2d3c4b5a697\"}"}`)
	b.Run("plain", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ParseCommand(frame); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var c Command
			if err := json.Unmarshal(frame, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
}
