package sse

import (
	"encoding/json"
	"net/url"
	"testing"

	"github.com/cablehub/cablehub/server/protocol"
)

// FuzzRequest holds the parsers of a client's request to their promises
// on any input: a GET's query and Last-Event-ID give one subscribe command
// whose identifier and history request are valid JSON, or an error; a
// POST body gives subscribe commands with a command and an identifier, or
// an error; and the codec writes any message as whole events (no line
// break outside the data lines' own). Nothing panics.
func FuzzRequest(f *testing.F) {
	f.Add("stream=chat_42", "", []byte(""))
	f.Add("stream=s&history_since=1796523370", "2/tXps/chat/room", []byte("{\"command\":\"subscribe\",\"identifier\":\"a\"}\n"))
	f.Add("signed_stream=abc--def&raw=1", "x/y/z", []byte("not json"))
	f.Add("identifier=%7B%22channel%22%3A%22X%22%7D", "1//", []byte("{\"command\":\"subscribe\",\"identifier\":\"a\",\"history\":{\"since\":1}}\r\n\n"))
	f.Add("turbo_signed_stream_name=%0A%0D", "18446744073709551616/e/s", []byte("\n\n\n"))
	f.Fuzz(func(t *testing.T, query, lastEventID string, body []byte) {
		q, err := url.ParseQuery(query)
		if err == nil {
			if cmd, err := queryCommand(q, lastEventID); err == nil {
				if cmd.Command != "subscribe" || cmd.Identifier == "" {
					t.Fatalf("command %+v", cmd)
				}
				if q.Get("identifier") == "" && !json.Valid([]byte(cmd.Identifier)) {
					t.Fatalf("identifier %q is not JSON", cmd.Identifier)
				}
				if len(cmd.History) > 0 && !json.Valid(cmd.History) {
					t.Fatalf("history %q is not JSON", cmd.History)
				}
			}
		}
		if cmds, err := bodyCommands(body); err == nil {
			for _, c := range cmds {
				if c.Command == "" || c.Identifier == "" {
					t.Fatalf("command %+v", c)
				}
			}
		}
		for _, c := range []Codec{{}, {Envelope: true}} {
			checkEvent(t, c.Encode(body))
			p := &protocol.Publication{Stream: lastEventID, Data: string(body), Epoch: "e", Offset: 1}
			checkEvent(t, c.AppendBroadcast(nil, query, p, protocol.EncodeMessage(p.Data)))
		}
	})
}

// checkEvent fails unless ev is one event: field lines ("event:", "data:",
// "id:", "retry:") ending with a blank line, no bare CR.
func checkEvent(t *testing.T, ev []byte) {
	t.Helper()
	if len(ev) < 2 || string(ev[len(ev)-2:]) != "\n\n" {
		t.Fatalf("event %q does not end with a blank line", ev)
	}
	lines := ev[:len(ev)-1]
	start := 0
	for i, b := range lines {
		switch b {
		case '\r':
			t.Fatalf("event %q holds a CR", ev)
		case '\n':
			line := string(lines[start:i])
			ok := false
			for _, field := range []string{"event: ", "data: ", "id: ", "retry: "} {
				if len(line) >= len(field) && line[:len(field)] == field {
					ok = true
				}
			}
			if !ok {
				t.Fatalf("event %q has a line %q that is no field", ev, line)
			}
			start = i + 1
		}
	}
}
