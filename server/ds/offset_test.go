package ds

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseOffset(t *testing.T) {
	cases := []struct {
		in   string
		want offset
		err  error
	}{
		{"", offset{kind: fromStart}, nil},
		{"-1", offset{kind: fromStart}, nil},
		{"0", offset{kind: fromStart}, nil},
		{"now", offset{kind: fromNow}, nil},
		{"3::IK3T", offset{kind: fromPosition, seq: 3, epoch: "IK3T"}, nil},
		{"00000000000000000003::IK3T", offset{kind: fromPosition, seq: 3, epoch: "IK3T"}, nil},
		{"0::a-_Z9", offset{kind: fromPosition, epoch: "a-_Z9"}, nil},
		{"2", offset{}, errNoEpoch},
		{"99", offset{}, errNoEpoch},
		{"abc", offset{}, errBadOffset},
		{"-5", offset{}, errBadOffset},
		{"NOW", offset{}, errBadOffset},
		{"3::", offset{}, errBadOffset},
		{"::IK3T", offset{}, errBadOffset},
		{"+3::IK3T", offset{}, errBadOffset},
		{"3::IK 3T", offset{}, errBadOffset},
		{"3::IK::3T", offset{}, errBadOffset},
		{"99999999999999999999::E", offset{}, errBadOffset},  // past uint64
		{"000000000000000000001::E", offset{}, errBadOffset}, // 21 digits
		{"1::" + strings.Repeat("e", maxEpochLen+1), offset{}, errBadOffset},
	}
	for _, c := range cases {
		got, err := parseOffset(c.in)
		if got != c.want || !errors.Is(err, c.err) {
			t.Errorf("parseOffset(%q) = %+v, %v; want %+v, %v", c.in, got, err, c.want, c.err)
		}
	}
}

func TestFormatOffset(t *testing.T) {
	if got := formatOffset("", 0); got != "0" {
		t.Errorf("unknown stream: %q", got)
	}
	if got := formatOffset("IK3T", 3); got != "00000000000000000003::IK3T" {
		t.Errorf("got %q", got)
	}
	if got := formatOffset("E", 18446744073709551615); got != "18446744073709551615::E" {
		t.Errorf("max: %q", got)
	}
	// Offsets of an epoch sort as their numbers do, and after "0".
	prev := "0"
	for _, n := range []uint64{1, 9, 10, 99, 100, 1 << 40} {
		cur := formatOffset("IK3T", n)
		if cur <= prev {
			t.Errorf("%q sorts before %q", cur, prev)
		}
		prev = cur
		back, err := parseOffset(cur)
		if err != nil || back.seq != n || back.epoch != "IK3T" {
			t.Errorf("round trip of %q: %+v %v", cur, back, err)
		}
	}
}

func TestNextCursor(t *testing.T) {
	now := cursorOrigin.Add(100*cursorInterval + time.Second)
	if got := nextCursor(now, ""); got != "100" {
		t.Errorf("no cursor: %s", got)
	}
	if got := nextCursor(now, "99"); got != "100" {
		t.Errorf("behind: %s", got)
	}
	if got := nextCursor(now, "junk"); got != "100" {
		t.Errorf("junk: %s", got)
	}
	steps := int64(maxJitter / cursorInterval)
	for _, sent := range []string{"100", "500"} {
		for range 50 {
			got := nextCursor(now, sent)
			var g, s int64
			for _, ch := range got {
				g = g*10 + int64(ch-'0')
			}
			for _, ch := range sent {
				s = s*10 + int64(ch-'0')
			}
			if g <= s || g > s+steps {
				t.Fatalf("cursor %s after %s: want in (%d, %d]", got, sent, s, s+steps)
			}
		}
	}
}

func TestETag(t *testing.T) {
	tag := etag("-1", "00000000000000000003::E", false)
	if tag != `"-1:00000000000000000003::E"` {
		t.Errorf("tag %s", tag)
	}
	if etag("-1", "0", true) == etag("-1", "0", false) {
		t.Error("a cut page has the tag of a whole one")
	}
	cases := []struct {
		header string
		want   bool
	}{
		{"", false},
		{tag, true},
		{"W/" + tag, true},
		{`"x", ` + tag, true},
		{"*", true},
		{`"-1:0"`, false},
		{strings.Repeat(" ", maxIfNoneMatch) + tag, false},
	}
	for _, c := range cases {
		if got := matchesETag(c.header, tag); got != c.want {
			t.Errorf("If-None-Match %.40q: %v", c.header, got)
		}
	}
}

func TestParseRequest(t *testing.T) {
	cases := []struct {
		rest, query, signed string
		err                 error
		check               func(*request) bool
	}{
		{"chat/room-42", "offset=-1", "", nil, func(r *request) bool { return r.stream == "chat/room-42" && r.rawOffset == "-1" && r.live == catchUp }},
		{"chat", "", "", nil, func(r *request) bool { return r.offset.kind == fromStart && r.rawOffset == "-1" }},
		{"chat", "offset=3%3A%3AIK3T&live=long-poll&cursor=12", "", nil, func(r *request) bool {
			return r.live == longPoll && r.offset.seq == 3 && r.cursor == "12" && r.rawOffset == "3::IK3T"
		}},
		{"chat", "offset=now&live=sse", "", nil, func(r *request) bool { return r.live == sseMode && r.offset.kind == fromNow }},
		{"chat", "signed=abc", "hdr", nil, func(r *request) bool { return r.signed == "abc" }},
		{"chat", "", "hdr", nil, func(r *request) bool { return r.signed == "hdr" }},
		{"", "offset=-1", "", errNoStream, nil},
		{"a\nb", "", "", errBadStream, nil},
		{"\xff", "", "", errBadStream, nil},
		{strings.Repeat("a", maxStreamName+1), "", "", errBadStream, nil},
		{"chat", "live=bogus&offset=-1", "", errBadLive, nil},
		{"chat", "live=long-poll", "", errLiveOffset, nil},
		{"chat", "live=sse&offset=", "", errLiveOffset, nil},
		{"chat", "offset=abc", "", errBadOffset, nil},
		{"chat", "offset=2", "", errNoEpoch, nil},
		{"chat", "cursor=x1", "", nil, func(r *request) bool { return r.cursor == "" }},
		{"chat", "cursor=" + strings.Repeat("1", maxCursor+1), "", nil, func(r *request) bool { return r.cursor == "" }},
	}
	for _, c := range cases {
		q, _ := url.ParseQuery(c.query)
		r, err := parseRequest(c.rest, q, c.signed)
		if !errors.Is(err, c.err) || err == nil && !c.check(r) {
			t.Errorf("%q?%s: %+v, %v", c.rest, c.query, r, err)
		}
	}
}
