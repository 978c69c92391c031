package redisconn

import (
	"strings"
	"testing"
)

// A stream's tag is one Redis ends where it should: no brace inside, not
// empty, and different for different streams, also for names that look
// like digests.
func TestSlotTag(t *testing.T) {
	names := []string{"chat_1", "", "{", "}", "a}b", "a{b}c", "#", "#abc", "__anycable__", "ü"}
	seen := map[string]string{}
	for _, s := range names {
		tag := SlotTag(s)
		if tag == "" || strings.ContainsAny(tag, "{}") {
			t.Errorf("SlotTag(%q) = %q: not a hash tag Redis keeps whole", s, tag)
		}
		if prev, ok := seen[tag]; ok {
			t.Errorf("SlotTag(%q) = SlotTag(%q) = %q", s, prev, tag)
		}
		seen[tag] = s
	}
	if SlotTag("chat_1") != "chat_1" {
		t.Errorf("a plain name is its own tag: %q", SlotTag("chat_1"))
	}
	// A name that is some other name's digest tag is not taken as it.
	if d := SlotTag("a}b"); SlotTag(d) == d {
		t.Errorf("the name %q takes the tag of the stream a}b", d)
	}
}
