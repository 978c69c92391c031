package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/cablehub/cablehub/server/redact"
)

// ErrPrinted is returned by Parse and Load after --print-config wrote the
// configuration: the caller exits 0.
var ErrPrinted = errors.New("configuration printed")

// anycableSections is the order of AnyCable's --print-config; Cablehub's
// own tables follow, alphabetically.
func anycableSections() []string {
	return []string{"server", "logging", "rpc", "broker", "jwt", "streams", "ws", "sse", "pusher", "ds", "api",
		"redis", "nats", "http_broadcast", "redis_stream_broadcast", "redis_pubsub_broadcast", "nats_broadcast",
		"redis_pubsub", "nats_pubsub", "metrics", "app", "disconnector", "embedded_nats"}
}

// setting is one option's value as its sources gave it, before the
// derivations (secret fallbacks, pub/sub from the broker, ...).
type setting struct {
	form any
	text string
}

// snapshot records every option's value as given.
func (p *parser) snapshot() map[*option]setting {
	m := make(map[*option]setting, len(p.options))
	for _, o := range p.options {
		m[o] = setting{form: fileForm(o.value), text: o.value.String()}
	}
	return m
}

// printConfig writes the configuration as an anycable.toml: every setting
// under its key with its value as given (so that derived values, such as
// the JWT secret falling back to --secret, stay derived when the file is
// edited), its help text, flag and variables as a comment, and the value
// in effect as a comment where a derivation changed it. The file loads
// back to the same configuration. With printMasked a secret's line (and
// any value's that carries URL credentials, whatever the setting: see
// shown) is commented out with the value hidden, so the file loads back to
// the same configuration less those, which can come from the environment;
// printSecrets writes them in clear.
func (p *parser) printConfig(out io.Writer, loaded Loaded, given map[*option]setting) error {
	var b bytes.Buffer
	b.WriteString("# Cablehub configuration in anycable.toml form (cablehub --print-config).\n")
	if loaded.File != "" {
		fmt.Fprintf(&b, "# Read from %s, the environment and the command line.\n", loaded.File)
	} else {
		b.WriteString("# Read from the environment and the command line; no configuration file.\n")
	}
	if p.print == printMasked {
		b.WriteString("# Secrets are masked and their lines commented out: --print-config=secrets prints them.\n")
	}
	for _, n := range loaded.Notices {
		fmt.Fprintf(&b, "# %s: %s\n", n.Level, redact.Credentials(n.Msg))
	}
	bySection := map[string][]*option{}
	for _, o := range p.options {
		if len(o.keys) == 0 {
			continue
		}
		section, _, _ := strings.Cut(o.keys[0], ".")
		if !strings.Contains(o.keys[0], ".") {
			section = ""
		}
		bySection[section] = append(bySection[section], o)
	}
	for _, section := range sectionOrder(bySection) {
		if section != "" {
			fmt.Fprintf(&b, "\n[%s]\n", section)
		} else {
			b.WriteString("\n")
		}
		for _, o := range bySection[section] {
			if err := p.printOption(&b, o, strings.TrimPrefix(o.keys[0], section+"."), given[o]); err != nil {
				return err
			}
		}
	}
	_, err := out.Write(b.Bytes())
	return err
}

// sectionOrder is the top level first, then AnyCable's tables in its
// order, then Cablehub's own.
func sectionOrder(bySection map[string][]*option) []string {
	anycable := anycableSections()
	order := append([]string{""}, anycable...)
	var own []string
	for s := range bySection {
		if s != "" && !slices.Contains(anycable, s) {
			own = append(own, s)
		}
	}
	slices.Sort(own)
	order = append(order, own...)
	return slices.DeleteFunc(order, func(s string) bool { return bySection[s] == nil })
}

// printOption writes one setting: a comment, "key = value" (a masked
// value's line commented out), and the value in effect if a derivation
// changed it.
func (p *parser) printOption(b *bytes.Buffer, o *option, key string, given setting) error {
	fmt.Fprintf(b, "# %s (--%s, %s)\n", o.usage, o.name, strings.Join(o.env, ", "))
	text, masked, err := p.shown(o, given)
	if err != nil {
		return err
	}
	switch {
	case masked:
		fmt.Fprintf(b, "# %s = %s (masked)\n", key, text)
	case isImplicit(o.value):
		// Setting it, even to its default, would mean something more.
		fmt.Fprintf(b, "# %s = %s (default, not set)\n", key, text)
	default:
		fmt.Fprintf(b, "%s = %s\n", key, text)
	}
	if now := o.value.String(); now != given.text && !o.drawn {
		text, masked, err := p.shown(o, setting{form: fileForm(o.value), text: now})
		if err != nil {
			return err
		}
		note := ""
		if masked {
			note = " (masked)"
		}
		fmt.Fprintf(b, "#   in effect: %s%s\n", text, note)
	}
	return nil
}

// implicit marks values whose being set matters beyond their value (the
// broadcast adapter list: adapters listed on purpose must work, see
// Broadcast.Explicit); implicit reports they were not set.
type implicit interface{ implicit() bool }

func isImplicit(v flag.Value) bool {
	i, ok := v.(implicit)
	return ok && i.implicit()
}

// shown is a value as TOML, or with its secret parts hidden (masked): a
// secret's whole value, and the credentials of the URLs in any other
// (redact.Credentials). The URLs are looked for in every setting's value,
// not only in those known to be URLs, so that a setting added later
// cannot be forgotten.
func (p *parser) shown(o *option, v setting) (text string, masked bool, err error) {
	switch {
	case p.print == printSecrets:
	case o.hidden && v.text != "" && v.text != "none":
		return `"********"`, true, nil
	case redact.Credentials(v.text) != v.text:
		text, err := encodeTOML(redactForm(v.form))
		return text, true, err
	}
	text, err = encodeTOML(v.form)
	if err != nil {
		return "", false, fmt.Errorf("--print-config: --%s: %v", o.name, err)
	}
	return text, false, nil
}

// fileFormer is a value with a TOML form of its own for --print-config (a
// number, a boolean, an array); a value without one is printed as its
// text, which loads back through Set. fileSetter is its counterpart when
// the file is read.
type fileFormer interface{ fileForm() any }

// fileForm is a value's TOML form: the value's own (fileFormer), else a
// boolean for a bool flag (the flag package's IsBoolFlag), else its text.
func fileForm(v flag.Value) any {
	if f, ok := v.(fileFormer); ok {
		return f.fileForm()
	}
	if b, ok := v.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return v.String() == "true"
	}
	return v.String()
}

// encodeTOML writes one value as TOML, through the TOML library so that
// strings are escaped as TOML (not Go) wants.
func encodeTOML(v any) (string, error) {
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(map[string]any{"v": v}); err != nil {
		return "", err
	}
	return strings.TrimSuffix(strings.TrimPrefix(b.String(), "v = "), "\n"), nil
}

// redactForm is a value's TOML form with the credentials of its URLs
// masked.
func redactForm(form any) any {
	switch f := form.(type) {
	case string:
		return redact.Credentials(f)
	case []string:
		out := make([]string, len(f))
		for i, s := range f {
			out[i] = redact.Credentials(s)
		}
		return out
	}
	return redact.Credentials(fmt.Sprint(form))
}
