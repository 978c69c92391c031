package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cablehub/cablehub/server/node"
)

// The flag.Value types below parse AnyCable-style option values. Their error
// texts are written to complete the sentence "invalid value X for --flag: ...".

type stringValue struct{ p *string }

func (v stringValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}
func (v stringValue) Set(s string) error { *v.p = s; return nil }

type boolValue struct{ p *bool }

func (v boolValue) String() string {
	if v.p == nil {
		return "false"
	}
	return strconv.FormatBool(*v.p)
}

func (v boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("must be true or false")
	}
	*v.p = b
	return nil
}

func (v boolValue) IsBoolFlag() bool { return true }

// intValue is an integer bounded to [min, max].
type intValue struct {
	p        *int
	min, max int
}

func (v intValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.Itoa(*v.p)
}

func (v intValue) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < v.min || n > v.max {
		return fmt.Errorf("must be an integer from %d to %d", v.min, v.max)
	}
	*v.p = n
	return nil
}

// durationValue takes whole seconds, as AnyCable does ("15"), or a Go
// duration ("1500ms", "2m").
type durationValue struct{ p *time.Duration }

func (v durationValue) String() string {
	if v.p == nil {
		return "0"
	}
	d := *v.p
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10)
	}
	return d.String()
}

func (v durationValue) Set(s string) error {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		*v.p = time.Duration(n) * time.Second
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return fmt.Errorf("must be a number of seconds or a duration such as 1500ms")
	}
	*v.p = d
	return nil
}

// listValue is a comma-separated list; blanks around items are dropped.
type listValue struct{ p *[]string }

func (v listValue) String() string {
	if v.p == nil {
		return ""
	}
	return strings.Join(*v.p, ",")
}

func (v listValue) Set(s string) error {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	*v.p = out
	return nil
}

// enumValue is one of a fixed set of words.
type enumValue struct {
	p       *string
	allowed []string
}

func (v enumValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v enumValue) Set(s string) error {
	for _, a := range v.allowed {
		if s == a {
			*v.p = s
			return nil
		}
	}
	return fmt.Errorf("must be one of %s", strings.Join(v.allowed, ", "))
}

// sizeValue is a byte count of at least min.
type sizeValue[T int | int64] struct {
	p   *T
	min T
}

func (v sizeValue[T]) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.FormatInt(int64(*v.p), 10)
}

func (v sizeValue[T]) Set(s string) error {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < int64(v.min) || int64(T(n)) != n {
		return fmt.Errorf("must be a number of bytes, at least %d", v.min)
	}
	*v.p = T(n)
	return nil
}

// msDurationValue takes whole milliseconds, as AnyCable's RPC timeouts do
// ("3000"), or a Go duration ("1.5s").
type msDurationValue struct{ p *time.Duration }

func (v msDurationValue) String() string {
	if v.p == nil {
		return "0"
	}
	d := *v.p
	if d%time.Millisecond == 0 {
		return strconv.FormatInt(int64(d/time.Millisecond), 10)
	}
	return d.String()
}

func (v msDurationValue) Set(s string) error {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		*v.p = time.Duration(n) * time.Millisecond
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return fmt.Errorf("must be a number of milliseconds or a duration such as 1.5s")
	}
	*v.p = d
	return nil
}

// lowerListValue is a listValue whose items are lower-cased, as AnyCable's
// CLI does with --headers (header names are case-insensitive; the RPC Env
// carries them lower-case).
type lowerListValue struct{ listValue }

func (v lowerListValue) Set(s string) error {
	return v.listValue.Set(strings.ToLower(s))
}

// disconnectModeValue is --disconnect_mode, read by
// node.ParseDisconnectMode: an unknown word is an error, where AnyCable
// would silently make no Disconnect calls.
type disconnectModeValue struct{ p *node.DisconnectMode }

func (v disconnectModeValue) String() string {
	if v.p == nil {
		return node.DisconnectAuto.String()
	}
	return v.p.String()
}

func (v disconnectModeValue) Set(s string) error {
	m, err := node.ParseDisconnectMode(s)
	if err != nil {
		return err
	}
	*v.p = m
	return nil
}

// csvValue is a list that anycable.toml holds as one comma-separated
// string, as AnyCable's file does for [server] allowed_origins and
// [api] cors_hosts (an array is accepted too).
type csvValue struct{ listValue }

func (v csvValue) fileForm() any { return v.String() }

// The methods below give each value's TOML form for --print-config
// (fileForm) and mark the values that take a TOML array (isList). A value
// type without fileForm prints as a string (a bool flag as a boolean),
// which loads back through Set.

func (v stringValue) fileForm() any   { return v.String() }
func (v boolValue) fileForm() any     { return v.p != nil && *v.p }
func (v intValue) fileForm() any      { return int64(*v.p) }
func (v enumValue) fileForm() any     { return v.String() }
func (v sizeValue[T]) fileForm() any  { return int64(*v.p) }
func (v listValue) fileForm() any     { return append([]string{}, *v.p...) }
func (v listValue) isList()           {}
func (v durationValue) fileForm() any { return wholeOr(*v.p, time.Second) }

func (v msDurationValue) fileForm() any { return wholeOr(*v.p, time.Millisecond) }

// wholeOr is d as an integer count of unit, as AnyCable's file holds
// durations, or as a Go duration string when it is not a whole count.
func wholeOr(d, unit time.Duration) any {
	if d%unit == 0 {
		return int64(d / unit)
	}
	return d.String()
}
