package config

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
)

// Notice is one line the server logs at startup about its configuration's
// sources: a setting it ignores, and why. Nothing given is ignored
// silently: an unknown variable or file key is a WARN naming it (with the
// nearest known name), a setting of AnyCable's that Cablehub does not
// support is a WARN saying so, and what cannot matter (AnyCable's
// defaults, the application's own settings) is one INFO line per kind.
type Notice struct {
	Level slog.Level
	Msg   string
}

func warnf(format string, args ...any) Notice {
	return Notice{Level: slog.LevelWarn, Msg: fmt.Sprintf(format, args...)}
}

func infof(format string, args ...any) Notice {
	return Notice{Level: slog.LevelInfo, Msg: fmt.Sprintf(format, args...)}
}

// fileNotices names the file's keys that no setting reads.
func (p *parser) fileNotices(f *configFile) []Notice {
	if f == nil {
		return nil
	}
	idx := p.keyIndex()
	var out []Notice
	var atDefault []string
	for _, l := range f.leftovers {
		if s := idx.unsupported[l.key]; s != nil {
			if text, err := fileText(l.value, true); err == nil && slices.Contains(s.defaults, text) {
				atDefault = append(atDefault, displayKey(l.key))
				continue
			}
			out = append(out, warnf("%s in %s is %s; Cablehub does not support it: %s", displayKey(l.key), f.path, s.describe(), s.why))
			continue
		}
		if l.table {
			out = append(out, warnf("unknown table [%s] in %s: no Cablehub or AnyCable setting lives there; ignored%s", l.key, f.path, p.suggestKey(l.key, idx)))
			continue
		}
		out = append(out, warnf("unknown key %s in %s: no Cablehub or AnyCable setting reads it; ignored%s", displayKey(l.key), f.path, p.suggestKey(l.key, idx)))
	}
	if len(atDefault) > 0 {
		out = append(out, infof("%s: ignored AnyCable settings that Cablehub does not have, each at a value that asks for nothing: %s", f.path, strings.Join(atDefault, ", ")))
	}
	return out
}

// describe names an AnyCable setting for a notice.
func (s *anycableSetting) describe() string {
	if s.flag == "" {
		return "an AnyCable setting"
	}
	return "AnyCable's --" + s.flag + " setting"
}

// envNotices names the ANYCABLE_* variables of environ that no setting
// reads.
func (p *parser) envNotices(environ []string) []Notice {
	known := map[string]bool{}
	for _, o := range p.options {
		for _, e := range o.env {
			known[e] = true
		}
	}
	unsupported := map[string]*anycableSetting{}
	for _, s := range anycableSettings() {
		if s.flag != "" && !known[EnvName(s.flag)] {
			unsupported[EnvName(s.flag)] = &s
		}
	}
	notes := anycableEnvNotes()
	gem := map[string]bool{}
	for _, g := range gemSettings() {
		gem[EnvName(g)] = true
	}
	var out []Notice
	var atDefault, gemSet []string
	for _, kv := range sortedEnviron(environ) {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "ANYCABLE_") || known[name] {
			continue
		}
		switch s := unsupported[name]; {
		case s != nil && slices.Contains(s.defaults, value):
			atDefault = append(atDefault, name)
		case s != nil:
			out = append(out, warnf("%s is AnyCable's --%s setting; Cablehub does not support it: %s", name, s.flag, s.why))
		case notes[name] != "":
			out = append(out, infof("%s is ignored: %s", name, notes[name]))
		case gem[name]:
			gemSet = append(gemSet, name)
		default:
			out = append(out, warnf("unknown variable %s: no Cablehub or AnyCable setting reads it; ignored%s", name, suggestEnv(name, known, unsupported)))
		}
	}
	if len(atDefault) > 0 {
		out = append(out, infof("ignored AnyCable settings that Cablehub does not have, each at a value that asks for nothing: %s", strings.Join(atDefault, ", ")))
	}
	if len(gemSet) > 0 {
		out = append(out, infof("ignored %s: settings of the anycable gem (the application's side), not of the server", strings.Join(gemSet, ", ")))
	}
	return out
}

// sortedEnviron is environ sorted by name, so notices come in a stable
// order.
func sortedEnviron(environ []string) []string {
	s := slices.Clone(environ)
	slices.Sort(s)
	return s
}

// suggestEnv is " (did you mean X?)" for the known variable nearest to
// name, or "".
func suggestEnv(name string, known map[string]bool, unsupported map[string]*anycableSetting) string {
	var candidates []string
	for k := range known {
		candidates = append(candidates, k)
	}
	for k := range unsupported {
		candidates = append(candidates, k)
	}
	if best := nearest(name, candidates); best != "" {
		return " (did you mean " + best + "?)"
	}
	return ""
}

// suggestKey is " (did you mean X?)" for the file key nearest to key: the
// key of a flag whose name was written as a key (rpc_host = ... for
// [rpc] host), else the closest spelling.
func (p *parser) suggestKey(key string, idx keyIndex) string {
	last := key[strings.LastIndex(key, ".")+1:]
	for _, o := range p.options {
		if len(o.keys) > 0 && (last == o.name || last == strings.ReplaceAll(o.name, "-", "_")) {
			return fmt.Sprintf(" (did you mean %s, the key of --%s?)", displayKey(o.keys[0]), o.name)
		}
	}
	var candidates []string
	for k := range idx.settings {
		candidates = append(candidates, k)
	}
	for k := range idx.unsupported {
		candidates = append(candidates, k)
	}
	for k := range idx.sections {
		candidates = append(candidates, k)
	}
	best := nearest(key, candidates)
	switch {
	case best == "":
		return ""
	case idx.sections[best]:
		return " (did you mean [" + best + "]?)"
	}
	return " (did you mean " + displayKey(best) + "?)"
}

// nearest is the candidate closest to s in edit distance, if it is close
// enough to be a likely typo (at most 2 edits, 1 for short names), or "".
// Ties go to the alphabetically first, so the answer is stable.
func nearest(s string, candidates []string) string {
	slices.Sort(candidates)
	limit := 2
	if len(s) < 8 {
		limit = 1
	}
	best, bestDist := "", limit+1
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
