package main

import "testing"

// A text message sent in fragments (as AnyCable sends large ones) reaches
// onText whole, once, even when its bytes arrive split across reads.
func TestFeedAssemblesFragments(t *testing.T) {
	c := &benchConn{}
	frames := []byte{0x01, 2, 'a', 'b', 0x00, 1, 'c', 0x80, 2, 'd', 'e', 0x81, 1, 'f'}
	var got []string
	for _, chunk := range [][]byte{frames[:5], frames[5:9], frames[9:]} {
		if err := c.feed(chunk, func(p []byte) { got = append(got, string(p)) }); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 2 || got[0] != "abcde" || got[1] != "f" {
		t.Errorf("messages %q, want [abcde f]", got)
	}
}
