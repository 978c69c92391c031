// Package plainjson reads the one shape of JSON that client commands and
// stream identifiers nearly always have, an object of plain strings, without
// encoding/json: its reflection, validity scan and recursion (which grows
// a fresh goroutine's stack) cost a connection more than the rest of its
// command handling.
//
// A plain object is one JSON object, surrounded by optional whitespace,
// whose every value is a string of printable ASCII (0x20–0x7e) with no
// escape but \" \\ \/ \b \f \n \r \t. For such input encoding/json decodes
// the same strings (callers test this against it); callers hand anything
// else to encoding/json, so its errors and its rules for unusual input
// (case-insensitive keys, \u escapes, invalid UTF-8, null) stay in force.
package plainjson

import "strings"

// Object calls member for each member of the plain object b, in order,
// with its key and its value's raw bytes (between the quotes, escapes
// still in: String decodes them). It reports false when b is not a plain
// object, or as soon as member does.
func Object(b []byte, member func(key, raw []byte) bool) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	for {
		key, next, ok := rawString(b, i)
		if !ok {
			return false
		}
		i = skipSpace(b, next)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		val, next, ok := rawString(b, skipSpace(b, i+1))
		if !ok || !member(key, val) {
			return false
		}
		i = skipSpace(b, next)
		if i >= len(b) {
			return false
		}
		if b[i] == '}' {
			return skipSpace(b, i+1) == len(b)
		}
		if b[i] != ',' {
			return false
		}
		i = skipSpace(b, i+1)
	}
}

// String is the string a raw value given by Object stands for.
func String(raw []byte) string {
	for _, c := range raw {
		if c == '\\' {
			return unescape(raw)
		}
	}
	return string(raw)
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// rawString reads the plain JSON string starting at b[i] (its opening
// quote) and returns the bytes between its quotes and the index after
// the closing one; ok is false when there is none or it is not plain.
func rawString(b []byte, i int) (raw []byte, next int, ok bool) {
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

// unescape decodes the escapes of a string rawString accepted.
func unescape(b []byte) string {
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
