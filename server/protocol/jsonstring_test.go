package protocol

import (
	"encoding/json"
	"testing"
)

// appendString writes what json.Marshal writes for every string.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", `"\` + "\b\f\n\r\t\x00\x1f\x7f", "<b>&</b>", "\u2028\u2029", "\xff\xfe", "é漢字😀", "\xed\xa0\x80", "a\xc3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Errorf("appendString(%q) = %s, json.Marshal %s", s, got, want)
		}
	})
}
