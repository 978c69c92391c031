package config

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

// TestHelpIsUnchanged pins --help byte for byte: flag names, environment
// variables, defaults, groups and help texts are AnyCable-compatible
// interface, whatever struct a flag is bound to. Regenerate
// testdata/help.golden only for a deliberate change of the interface.
func TestHelpIsUnchanged(t *testing.T) {
	var out bytes.Buffer
	if _, err := Parse([]string{"--help"}, func(string) string { return "" }, &out); !errors.Is(err, ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	want, err := os.ReadFile("testdata/help.golden")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("--help changed:\n%s", out.String())
	}
}
