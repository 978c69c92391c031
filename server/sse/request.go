package sse

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/cablehub/cablehub/server/protocol"
)

// MaxBody bounds a POST's subscribe commands (AnyCable's limit).
const MaxBody = 65536

// maxCommands bounds the subscribe commands of one POST: each is a
// subscription, and the node's --max_subscriptions (when set) bounds them
// too.
const maxCommands = 1024

// errNoChannel is a GET that names no subscription.
var errNoChannel = errors.New("no channel provided")

// queryCommand builds the subscribe command of a GET: its identifier from
// the first of identifier, channel, stream, signed_stream and
// turbo_signed_stream_name given, and its history request from
// history_since (unix seconds) and a Last-Event-ID
// "<offset>/<epoch>/<stream>" (fewer than three parts: ignored, as
// AnyCable does). An error is a 400.
func queryCommand(q url.Values, lastEventID string) (*protocol.Command, error) {
	id := queryIdentifier(q)
	if id == "" {
		return nil, errNoChannel
	}
	cmd := &protocol.Command{Command: "subscribe", Identifier: id}
	var h history
	if v := q.Get("history_since"); v != "" {
		since, err := strconv.ParseInt(v, 10, 64)
		if err != nil || since < 0 {
			return nil, fmt.Errorf("failed to parse history since value: %q", v)
		}
		h.Since = since
	}
	if parts := strings.SplitN(lastEventID, "/", 3); len(parts) == 3 {
		offset, err := strconv.ParseUint(parts[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("failed to parse last event id: %q", lastEventID)
		}
		h.Streams = map[string]position{parts[2]: {Epoch: parts[1], Offset: offset}}
	}
	if h.Since != 0 || h.Streams != nil {
		cmd.History, _ = json.Marshal(h)
	}
	return cmd, nil
}

// history is a subscribe command's history request.
type history struct {
	Since   int64               `json:"since,omitempty"`
	Streams map[string]position `json:"streams,omitempty"`
}

type position struct {
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
}

// queryIdentifier is the identifier a GET's query names, "" for none.
func queryIdentifier(q url.Values) string {
	if v := q.Get("identifier"); v != "" {
		return v
	}
	var id map[string]string
	switch {
	case q.Get("channel") != "":
		id = map[string]string{"channel": q.Get("channel")}
	case q.Get("stream") != "":
		id = map[string]string{"channel": "$pubsub", "stream_name": q.Get("stream")}
	case q.Get("signed_stream") != "":
		id = map[string]string{"channel": "$pubsub", "signed_stream_name": q.Get("signed_stream")}
	case q.Get("turbo_signed_stream_name") != "":
		id = map[string]string{"channel": "Turbo::StreamsChannel", "signed_stream_name": q.Get("turbo_signed_stream_name")}
	default:
		return ""
	}
	return identifier(id)
}

// identifier encodes id as Action Cable does: "channel" first, then the
// other key, no HTML escaping.
func identifier(id map[string]string) string {
	var b bytes.Buffer
	b.WriteString(`{"channel":`)
	writeJSONString(&b, id["channel"])
	for k, v := range id {
		if k == "channel" {
			continue
		}
		b.WriteByte(',')
		writeJSONString(&b, k)
		b.WriteByte(':')
		writeJSONString(&b, v)
	}
	b.WriteByte('}')
	return b.String()
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	b.Truncate(b.Len() - 1) // Encode's newline
}

// bodyCommands reads a POST body: one subscribe command per non-empty
// line. An empty body is a connection without subscriptions. Any line that
// is not a JSON command is an error (a 400). A command repeating an
// earlier one's identifier is dropped: the session would ignore it, and
// the answer waits for one confirmation per command.
func bodyCommands(body []byte) ([]*protocol.Command, error) {
	var cmds []*protocol.Command
	seen := map[string]bool{}
	for line := range bytes.SplitSeq(body, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		cmd, err := protocol.ParseCommand(line)
		if err != nil {
			return nil, fmt.Errorf("bad command: %w", err)
		}
		if cmd.Command == "" || cmd.Identifier == "" {
			return nil, errors.New("bad command: command and identifier are required")
		}
		if seen[cmd.Identifier] {
			continue
		}
		if len(cmds) == maxCommands {
			return nil, fmt.Errorf("more than %d commands", maxCommands)
		}
		seen[cmd.Identifier] = true
		cmds = append(cmds, cmd)
	}
	return cmds, nil
}

// isRaw reports whether a GET asks for data events only (raw=1/true/t/y).
func isRaw(r *http.Request) bool {
	switch strings.ToLower(r.URL.Query().Get("raw")) {
	case "1", "true", "t", "y":
		return true
	}
	return false
}
