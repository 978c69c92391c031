package sse

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func TestQueryCommand(t *testing.T) {
	cases := []struct {
		query, lastEventID string
		identifier         string
		history            string // "" for none
		err                bool
	}{
		{"stream=chat_42", "", `{"channel":"$pubsub","stream_name":"chat_42"}`, "", false},
		{"signed_stream=abc--def", "", `{"channel":"$pubsub","signed_stream_name":"abc--def"}`, "", false},
		{"turbo_signed_stream_name=t--s", "", `{"channel":"Turbo::StreamsChannel","signed_stream_name":"t--s"}`, "", false},
		{"channel=ChatChannel", "", `{"channel":"ChatChannel"}`, "", false},
		{"identifier=" + url.QueryEscape(`{"channel":"X"}`) + "&stream=y", "", `{"channel":"X"}`, "", false},
		{"stream=%3C%26%3E", "", `{"channel":"$pubsub","stream_name":"<&>"}`, "", false},
		{"stream=s&history_since=1796523370", "", `{"channel":"$pubsub","stream_name":"s"}`, `{"since":1796523370}`, false},
		{"stream=s", "2/tXps/chat/room", `{"channel":"$pubsub","stream_name":"s"}`, `{"streams":{"chat/room":{"epoch":"tXps","offset":2}}}`, false},
		{"stream=s", "garbage", `{"channel":"$pubsub","stream_name":"s"}`, "", false},
		{"stream=s", "x/tXps/chat", "", "", true},
		{"stream=s&history_since=abc", "", "", "", true},
		{"stream=s&history_since=-1", "", "", "", true},
		{"", "", "", "", true},
		{"stream=", "", "", "", true},
	}
	for _, c := range cases {
		q, _ := url.ParseQuery(c.query)
		cmd, err := queryCommand(q, c.lastEventID)
		if c.err {
			if err == nil {
				t.Errorf("%s %q: no error", c.query, c.lastEventID)
			}
			continue
		}
		if err != nil || cmd.Command != "subscribe" || cmd.Identifier != c.identifier || string(cmd.History) != c.history {
			t.Errorf("%s %q: %+v (history %s) %v", c.query, c.lastEventID, cmd, cmd.History, err)
		}
	}
}

func TestBodyCommands(t *testing.T) {
	body := "{\"command\":\"subscribe\",\"identifier\":\"a\"}\n\n  \r\n{\"command\":\"subscribe\",\"identifier\":\"b\",\"history\":{\"since\":1}}\n"
	cmds, err := bodyCommands([]byte(body))
	if err != nil || len(cmds) != 2 || cmds[0].Identifier != "a" || string(cmds[1].History) != `{"since":1}` {
		t.Fatalf("%+v %v", cmds, err)
	}
	if cmds, err := bodyCommands([]byte(body + body)); err != nil || len(cmds) != 2 {
		t.Errorf("repeated identifiers: %d commands, %v", len(cmds), err)
	}
	if cmds, err := bodyCommands(nil); err != nil || len(cmds) != 0 {
		t.Errorf("empty body: %v %v", cmds, err)
	}
	for _, bad := range []string{"not json", `{"command":"subscribe"}`, `{"identifier":"a"}`, `{"command":1}`} {
		if _, err := bodyCommands([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	var many strings.Builder
	for i := 0; i <= maxCommands; i++ {
		fmt.Fprintf(&many, "{\"command\":\"subscribe\",\"identifier\":\"%d\"}\n", i)
	}
	if _, err := bodyCommands([]byte(many.String())); err == nil {
		t.Error("more than maxCommands taken")
	}
}
