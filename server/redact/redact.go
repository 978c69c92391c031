// Package redact keeps credentials out of what the process shows: the
// startup log and every later log line, /health, --print-config and
// startup errors. Settings such as --rpc_host, --redis_url,
// --redis_sentinels and --nats_servers are URLs that may carry a user and
// password (or a token as the user); wherever such a value, or a message
// quoting it, is shown, Credentials masks that part. It is one function,
// used everywhere, so a new setting or message needs no masking of its own.
package redact

import (
	"errors"
	"strings"
)

// Mask replaces a password, or a user name that stands alone (NATS takes
// it as a token).
const Mask = "xxxxx"

// Credentials returns s with the credentials of every URL in it masked,
// wherever they are: in a setting's value (one URL, or a comma-separated
// list), or quoted in a message or an error. A URL's credentials are what
// comes before an '@' and after its "scheme://", or, without a scheme,
// after the whitespace or the comma before it. "user:password@" becomes
// "user:xxxxx@" and "token@" becomes "xxxxx@", as url.URL.Redacted does
// for passwords (it leaves tokens in clear).
//
// It fails closed: an '@' that is not a URL's (an e-mail address) has what
// precedes it masked too, and a password that holds a comma or an '@'
// unescaped is masked whole. Only whitespace ends a password early, and a
// URL cannot hold that unescaped. s without an '@' is returned as is,
// without allocating.
func Credentials(s string) string {
	at := strings.IndexByte(s, '@')
	if at < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	done := 0 // s[:done] is written
	for at >= 0 {
		start := userinfoStart(s, done, at)
		end := userinfoEnd(s, at)
		b.WriteString(s[done:start])
		b.WriteString(masked(s[start:end]))
		b.WriteByte('@')
		done = end + 1
		at = strings.IndexByte(s[done:], '@')
		if at >= 0 {
			at += done
		}
	}
	b.WriteString(s[done:])
	return b.String()
}

// userinfoStart is where the credentials before the '@' at at begin,
// looking back no further than from: after "://", or else after the
// nearest whitespace, or, when a comma comes first, after the comma (an
// item of a comma-separated list without a scheme). A "://" wins over a
// comma, which the password may then hold.
func userinfoStart(s string, from, at int) int {
	comma := -1
	for k := at - 1; k >= from; k-- {
		switch c := s[k]; {
		case isSpace(c):
			return max(k+1, comma+1)
		case c == '/' && k-2 >= from && s[k-2:k+1] == "://":
			return k + 1
		case c == ',' && comma < 0:
			comma = k
		}
	}
	return max(from, comma+1)
}

// userinfoEnd is the last '@' of the credentials whose first '@' is at
// at: a password may hold '@' unescaped (url.Parse takes the last one of
// the authority), but an '@' after whitespace, a comma, a '/', '?' or '#'
// is another URL's or the path's.
func userinfoEnd(s string, at int) int {
	for k := at + 1; k < len(s); k++ {
		switch c := s[k]; {
		case c == '@':
			at = k
		case isSpace(c) || c == ',' || c == '/' || c == '?' || c == '#':
			return at
		}
	}
	return at
}

// masked is userinfo with its password, or its token, replaced by Mask.
func masked(userinfo string) string {
	if userinfo == "" {
		return ""
	}
	if user, _, ok := strings.Cut(userinfo, ":"); ok {
		return user + ":" + Mask
	}
	return Mask
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// Error is err with the credentials its message quotes masked, or err
// itself when it quotes none (so errors.Is still sees through it). Errors
// name the value they refuse, which may be a URL with a password.
func Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if masked := Credentials(msg); masked != msg {
		return errors.New(masked)
	}
	return err
}
