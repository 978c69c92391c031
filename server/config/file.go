package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// DefaultSearch is where AnyCable looks for its configuration file when
// --config-path is not given, in order: the current directory, then
// /etc/anycable.
func DefaultSearch() []string {
	return []string{"./anycable.toml", "/etc/anycable/anycable.toml"}
}

// configFile is a parsed anycable.toml: the value of each setting it
// gives, and the keys no Cablehub setting reads (for the notices). A nil
// *configFile is "no file".
type configFile struct {
	path string
	// values holds each setting's value by the key it was written under.
	values map[string]any
	// leftovers are the keys no setting reads, in file order; a table no
	// setting or AnyCable setting lives under is one leftover.
	leftovers []leftover
}

// leftover is a key of the file that no Cablehub setting reads.
type leftover struct {
	key   string
	value any
	// table is set for a whole unknown table (its keys are not listed).
	table bool
}

// loadFile reads the configuration file the switches name: none with
// --ignore-config-path, --config-path's (which must exist), else the first
// of search that exists.
func (p *parser) loadFile(search []string) (*configFile, error) {
	if p.ignoreConfig {
		return nil, nil
	}
	path := p.configPath
	if path == "" {
		for _, candidate := range search {
			if _, err := os.Stat(candidate); err == nil {
				path = candidate
				break
			}
		}
	}
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("cannot read configuration file %s: %v", path, err)
	}
	return p.parseFile(path, string(data))
}

// parseFile decodes TOML text and sorts its keys into setting values and
// leftovers. Errors are one line naming the file.
func (p *parser) parseFile(path, text string) (*configFile, error) {
	tree := map[string]any{}
	md, err := toml.Decode(text, &tree)
	if err != nil {
		msg := strings.ReplaceAll(err.Error(), "\n", " ")
		return nil, fmt.Errorf("cannot parse configuration file %s: %s", path, msg)
	}
	known := p.keyIndex()
	f := &configFile{path: path, values: map[string]any{}}
	done := map[string]bool{}
	for _, k := range md.Keys() {
		if coveredBy(k, done) {
			continue
		}
		k = known.owner(k)
		key := fileKey(k)
		value := lookup(tree, k)
		switch {
		case known.settings[key]:
			f.values[key] = value
			done[key] = true
		case md.Type(k...) == "Hash" && (known.unsupported[key] == nil):
			if !known.sections[key] {
				f.leftovers = append(f.leftovers, leftover{key: key, value: value, table: true})
				done[key] = true
			}
		default:
			f.leftovers = append(f.leftovers, leftover{key: key, value: value})
			done[key] = true
		}
	}
	return f, nil
}

// coveredBy reports whether a key lies inside a key already taken whole
// (a setting's table value, an unknown table).
func coveredBy(k toml.Key, done map[string]bool) bool {
	for i := 1; i < len(k); i++ {
		if done[fileKey(k[:i])] {
			return true
		}
	}
	return false
}

// fileKey is a key's dotted path, lower-cased: AnyCable's reader matches
// keys without regard to case, so Cablehub does too.
func fileKey(k toml.Key) string {
	return strings.ToLower(strings.Join(k, "."))
}

// lookup is the decoded value at a key.
func lookup(tree map[string]any, k toml.Key) any {
	var v any = tree
	for _, part := range k {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[part]
	}
	return v
}

// keyIndex is what the file's keys are checked against.
type keyIndex struct {
	// settings are Cablehub's keys, aliases included.
	settings map[string]bool
	// sections are the tables that hold a Cablehub or AnyCable key.
	sections map[string]bool
	// unsupported are AnyCable's keys Cablehub has no setting for.
	unsupported map[string]*anycableSetting
}

// owner is the shortest part of k that is a setting's or an unsupported
// AnyCable setting's key, else k: a table value written with dotted keys
// ([metrics] tags.env = "prod") belongs to its table's setting, although
// the TOML library lists only the dotted key.
func (idx keyIndex) owner(k toml.Key) toml.Key {
	for i := 1; i < len(k); i++ {
		if key := fileKey(k[:i]); idx.settings[key] || idx.unsupported[key] != nil {
			return k[:i]
		}
	}
	return k
}

func (p *parser) keyIndex() keyIndex {
	idx := keyIndex{settings: map[string]bool{}, sections: map[string]bool{}, unsupported: map[string]*anycableSetting{}}
	addSections := func(key string) {
		parts := strings.Split(key, ".")
		for i := 1; i < len(parts); i++ {
			idx.sections[strings.Join(parts[:i], ".")] = true
		}
	}
	for _, o := range p.options {
		for _, k := range o.keys {
			idx.settings[k] = true
			addSections(k)
		}
	}
	for _, s := range anycableSettings() {
		if s.key != "" && !idx.settings[s.key] {
			idx.unsupported[s.key] = &s
			addSections(s.key)
		}
	}
	return idx
}

// apply sets o from the file, if the file gives it under one of o's keys.
func (f *configFile) apply(o *option) error {
	if f == nil {
		return nil
	}
	for _, k := range o.keys {
		v, ok := f.values[k]
		if !ok {
			continue
		}
		if err := setFromFile(o.value, v); err != nil {
			return fmt.Errorf("invalid value %s for %s in %s (--%s): %v", showValue(v), displayKey(k), f.path, o.name, err)
		}
		return nil
	}
	return nil
}

// fileSetter is implemented by values that read a TOML value themselves
// (a table, say); the others are set through flag.Value.Set with the
// value's text (see fileText).
type fileSetter interface {
	setFile(v any) error
}

// lister marks values that take a TOML array (as a comma-separated list).
type lister interface{ isList() }

func setFromFile(value interface{ Set(string) error }, v any) error {
	if fs, ok := value.(fileSetter); ok {
		return fs.setFile(v)
	}
	_, isList := value.(lister)
	s, err := fileText(v, isList)
	if err != nil {
		return err
	}
	return value.Set(s)
}

// fileText turns a decoded TOML value into the text a flag would take:
// strings as they are, numbers and booleans written out, and, for lists,
// an array's items joined with commas.
func fileText(v any, list bool) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case []any:
		if !list {
			return "", errors.New("must be a single value, not an array")
		}
		items := make([]string, 0, len(v))
		for _, item := range v {
			s, err := fileText(item, false)
			if err != nil {
				return "", fmt.Errorf("array items: %v", err)
			}
			items = append(items, s)
		}
		return strings.Join(items, ","), nil
	case map[string]any:
		return "", errors.New("must be a single value, not a table")
	case time.Time:
		return "", errors.New("must not be a date or time")
	}
	return "", fmt.Errorf("unsupported TOML type %T", v)
}

// showValue is a decoded TOML value as it may have been written, for
// error messages.
func showValue(v any) string {
	if s, err := encodeTOML(v); err == nil {
		return s
	}
	return fmt.Sprint(v)
}

// displayKey is a dotted key as users see it in the file: "secret" at the
// top, "[rpc] host" in a table, "[metrics] statsd.host" deeper.
func displayKey(key string) string {
	section, rest, ok := strings.Cut(key, ".")
	if !ok {
		return key
	}
	return "[" + section + "] " + rest
}
