package ws

import (
	"net/http"
	"strconv"
	"strings"
)

// deflateParams are the permessage-deflate parameters (RFC 7692) agreed
// with one client. The server never keeps a compression context between
// messages and asks the client not to either (server_no_context_takeover
// and client_no_context_takeover in every response), so no connection
// holds a deflate or inflate state while idle, and the compressed form of
// a message depends only on the message and windowBits: one compression
// serves every subscriber that agreed the same window (deflateCache).
type deflateParams struct {
	// windowBits is the LZ77 window the server compresses with: 15
	// (32 KiB) unless the client's offer set server_max_window_bits.
	windowBits uint8
	// response is the Sec-WebSocket-Extensions value to answer with.
	response string
}

// extensionsHeader is how the 101 response names the agreed extension.
const extensionsHeader = "Sec-WebSocket-Extensions"

// negotiateDeflate picks the first permessage-deflate offer in h's
// Sec-WebSocket-Extensions fields that the server can accept, as RFC 7692
// §5 asks: an offer with a parameter the server does not know, a
// parameter given twice or a value out of range is declined, and the next
// offer is considered. ok is false when no offer is acceptable: the
// connection then goes uncompressed.
//
// Unlike AnyCable, which accepts any offer and ignores
// server_max_window_bits, an accepted server_max_window_bits is echoed and
// honoured (§7.1.2.1).
func negotiateDeflate(h http.Header) (p deflateParams, ok bool) {
	for _, field := range h.Values(extensionsHeader) {
		for _, offer := range splitOffers(field) {
			if p, ok := acceptOffer(offer); ok {
				return p, true
			}
		}
	}
	return deflateParams{}, false
}

// splitOffers splits a Sec-WebSocket-Extensions field into its offers at
// the commas outside quoted strings.
func splitOffers(field string) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(field); i++ {
		switch field[i] {
		case '"':
			quoted = !quoted
		case '\\':
			if quoted {
				i++
			}
		case ',':
			if !quoted {
				out = append(out, field[start:i])
				start = i + 1
			}
		}
	}
	return append(out, field[start:])
}

// The parameters RFC 7692 defines, as indexes of the ones an offer named.
const (
	paramServerNoTakeover = iota
	paramClientNoTakeover
	paramServerWindow
	paramClientWindow
	paramCount
)

// deflateParam is the index of a parameter name, -1 for one RFC 7692 does
// not define (which declines the offer).
func deflateParam(name string) int {
	switch name {
	case "server_no_context_takeover":
		return paramServerNoTakeover
	case "client_no_context_takeover":
		return paramClientNoTakeover
	case "server_max_window_bits":
		return paramServerWindow
	case "client_max_window_bits":
		return paramClientWindow
	}
	return -1
}

// acceptOffer reads one offer ("permessage-deflate; name=value; ...") and
// returns the parameters the server answers it with, or false to decline
// it.
func acceptOffer(offer string) (deflateParams, bool) {
	parts := strings.Split(offer, ";")
	if !strings.EqualFold(strings.Trim(parts[0], " \t"), "permessage-deflate") {
		return deflateParams{}, false
	}
	p := deflateParams{windowBits: 15}
	var seen [paramCount]bool // each parameter at most once
	for _, param := range parts[1:] {
		name, value, hasValue := strings.Cut(strings.Trim(param, " \t"), "=")
		name = strings.ToLower(strings.Trim(name, " \t"))
		value = unquote(strings.Trim(value, " \t"))
		k := deflateParam(name)
		if k < 0 || seen[k] {
			return deflateParams{}, false
		}
		seen[k] = true
		switch name {
		case "server_no_context_takeover", "client_no_context_takeover":
			if hasValue {
				return deflateParams{}, false
			}
		case "server_max_window_bits":
			bits, ok := windowBits(value)
			if !hasValue || !ok {
				return deflateParams{}, false
			}
			p.windowBits = bits
		case "client_max_window_bits":
			// The client may limit its own window (the server inflates any
			// window), so the value is only checked.
			if _, ok := windowBits(value); hasValue && !ok {
				return deflateParams{}, false
			}
		}
	}
	p.response = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
	if seen[paramServerWindow] {
		p.response += "; server_max_window_bits=" + strconv.Itoa(int(p.windowBits))
	}
	return p, true
}

// windowBits parses a window size parameter: 8 to 15, digits only.
func windowBits(v string) (uint8, bool) {
	if len(v) == 0 || len(v) > 2 || v[0] == '0' {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 8 || n > 15 {
		return 0, false
	}
	return uint8(n), true
}

// unquote strips a quoted-string's quotes and escapes (RFC 7230 §3.2.6);
// a token is returned as it is.
func unquote(v string) string {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return v
	}
	v = v[1 : len(v)-1]
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}
