package protocol

import "strings"

// parsePlainCommand reads the commands clients send most, a subscribe or
// unsubscribe such as {"command":"subscribe","identifier":"{\"channel\":…}"},
// without encoding/json: reflection, the validity scan and the decoder's
// recursion (which grows a fresh reader goroutine's stack) made up most of
// a connection's command parsing.
//
// It takes only a frame that is one JSON object whose members are exactly
// "command" and, at most once each, "identifier", every value a string of
// printable ASCII with no escape but \" \\ \/ \b \f \n \r \t. For such a
// frame encoding/json yields the same Command (it is tested against it);
// anything else (other keys, a key spelled in another case, a duplicate,
// \u escapes, bytes outside printable ASCII, other value types) reports
// false and goes to encoding/json, so errors and the decoder's rules for
// unusual input are unchanged.
func parsePlainCommand(frame []byte) (c *Command, ok bool) {
	var cmd Command
	var seenCommand, seenIdentifier bool
	i := skipSpace(frame, 0)
	if i >= len(frame) || frame[i] != '{' {
		return nil, false
	}
	i = skipSpace(frame, i+1)
	for {
		key, next, ok := plainRaw(frame, i)
		if !ok {
			return nil, false
		}
		i = skipSpace(frame, next)
		if i >= len(frame) || frame[i] != ':' {
			return nil, false
		}
		val, next, ok := plainRaw(frame, skipSpace(frame, i+1))
		if !ok {
			return nil, false
		}
		switch {
		case string(key) == "command" && !seenCommand:
			seenCommand = true
			cmd.Command = commandName(val)
		case string(key) == "identifier" && !seenIdentifier:
			seenIdentifier = true
			cmd.Identifier = plainValue(val)
		default:
			return nil, false
		}
		i = skipSpace(frame, next)
		if i >= len(frame) {
			return nil, false
		}
		if frame[i] == '}' {
			break
		}
		if frame[i] != ',' {
			return nil, false
		}
		i = skipSpace(frame, i+1)
	}
	if !seenCommand || skipSpace(frame, i+1) != len(frame) {
		return nil, false
	}
	return &cmd, true
}

// commandName returns the value of raw (plainRaw's) as a string, the
// shared one for the usual command names, so parsing one allocates nothing.
func commandName(raw []byte) string {
	switch string(raw) {
	case "subscribe":
		return "subscribe"
	case "unsubscribe":
		return "unsubscribe"
	case "message":
		return "message"
	}
	return plainValue(raw)
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainRaw reads the JSON string starting at b[i] (its opening quote)
// and returns its bytes between the quotes, escapes still in (plainValue
// decodes them), and the index after its closing quote. ok is false for
// anything parsePlainCommand leaves to encoding/json: no string there,
// bytes outside printable ASCII, a \u escape or an invalid one.
func plainRaw(b []byte, i int) (raw []byte, next int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	start := i + 1
	for j := start; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[start:j], j + 1, true
		case c == '\\':
			if j+1 >= len(b) || unescapeByte(b[j+1]) == 0 {
				return nil, 0, false
			}
			j++
		case c < 0x20 || c >= 0x7f:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// plainValue is the string plainRaw's raw bytes stand for.
func plainValue(raw []byte) string {
	for _, c := range raw {
		if c == '\\' {
			return unescapePlain(raw)
		}
	}
	return string(raw)
}

// unescapePlain decodes the escapes of a string plainRaw accepted.
func unescapePlain(b []byte) string {
	var out strings.Builder
	out.Grow(len(b))
	for j := 0; j < len(b); j++ {
		if b[j] == '\\' {
			j++
			out.WriteByte(unescapeByte(b[j]))
			continue
		}
		out.WriteByte(b[j])
	}
	return out.String()
}

// unescapeByte is the byte a one-letter JSON escape stands for, 0 for a
// letter that is not one (or is \u, which is left to encoding/json).
func unescapeByte(c byte) byte {
	switch c {
	case '"', '\\', '/':
		return c
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	}
	return 0
}
