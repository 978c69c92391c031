package protocol

import "github.com/cablehub/cablehub/server/internal/plainjson"

// parsePlainCommand reads the commands clients send most, a subscribe or
// unsubscribe such as {"command":"subscribe","identifier":"{\"channel\":…}"},
// without encoding/json (see plainjson for why, and for what a plain
// object is). It takes only a plain object whose members are exactly
// "command" and, at most once each, "identifier"; for such a frame
// encoding/json yields the same Command (tested against it). Anything
// else (other keys, a key spelled in another case, a duplicate) reports
// false and goes to encoding/json, so errors are unchanged.
func parsePlainCommand(frame []byte) (c *Command, ok bool) {
	var cmd Command
	var seenCommand, seenIdentifier bool
	ok = plainjson.Object(frame, func(key, raw []byte) bool {
		switch {
		case string(key) == "command" && !seenCommand:
			seenCommand = true
			cmd.Command = commandName(raw)
		case string(key) == "identifier" && !seenIdentifier:
			seenIdentifier = true
			cmd.Identifier = plainjson.String(raw)
		default:
			return false
		}
		return true
	})
	if !ok || !seenCommand {
		return nil, false
	}
	return &cmd, true
}

// commandName is the command a raw value stands for, the shared string
// for the usual names, so parsing one allocates nothing.
func commandName(raw []byte) string {
	switch string(raw) {
	case "subscribe":
		return "subscribe"
	case "unsubscribe":
		return "unsubscribe"
	case "message":
		return "message"
	}
	return plainjson.String(raw)
}
