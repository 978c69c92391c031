package e2e

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cablehub/cablehub/server/config"
)

// repoRoot is the repository's top directory (go test runs in e2e/).
const repoRoot = ".."

// helpFlag is one flag as `cablehub --help` lists it.
type helpFlag struct {
	group, name, def string
	env              []string
	// file is the key in anycable.toml, as --help shows it ("[rpc] host").
	file string
}

var (
	helpGroupLine = regexp.MustCompile(`^([A-Z][^:]*):$`)
	helpFlagLine  = regexp.MustCompile(`^  --(\S+) \(([^)]*), default (.*)\)$`)
	helpFileLine  = regexp.MustCompile(`^      anycable\.toml: (.+)$`)
)

// helpFlags parses the binary's --help output: group headings, then one
// "  --name (ENV, ENV, default X)" line per flag.
func helpFlags(t *testing.T) []helpFlag {
	code, stdout, stderr := runCLI(t, nil, "--help")
	if code != 0 {
		t.Fatalf("--help: exit %d: %s", code, stderr)
	}
	var flags []helpFlag
	group := ""
	for _, line := range strings.Split(stdout+stderr, "\n") {
		if m := helpGroupLine.FindStringSubmatch(line); m != nil {
			group = m[1]
		}
		if m := helpFlagLine.FindStringSubmatch(line); m != nil {
			def := m[3]
			if def == `""` {
				def = ""
			}
			flags = append(flags, helpFlag{group: group, name: m[1], env: strings.Split(m[2], ", "), def: def})
		}
		if m := helpFileLine.FindStringSubmatch(line); m != nil && len(flags) > 0 {
			flags[len(flags)-1].file = m[1]
		}
	}
	if len(flags) < 40 {
		t.Fatalf("parsed only %d flags from --help:\n%s", len(flags), stdout)
	}
	return flags
}

// docRow is one "| `--flag` | env | default | meaning |" row of
// docs/configuration.md, under its "## Group" heading.
type docRow struct {
	section, env, def string
}

const flagTableHeader = "| Flag | Env | Default | Meaning |"

func configurationRows(t *testing.T) map[string]docRow {
	text, err := os.ReadFile(filepath.Join(repoRoot, "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]docRow{}
	section, inFlagTable := "", false
	for _, line := range strings.Split(string(text), "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			section = h
		}
		inFlagTable = line == flagTableHeader || inFlagTable && strings.HasPrefix(line, "|")
		if !inFlagTable || !strings.HasPrefix(line, "| `--") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 4 {
			t.Errorf("configuration.md: a flag row needs 4 cells: %s", line)
			continue
		}
		name := strings.TrimSpace(cells[0])
		if _, dup := rows[name]; dup {
			t.Errorf("configuration.md: %s has two rows", name)
		}
		rows[name] = docRow{section: section, env: cells[1], def: strings.ReplaceAll(cells[2], "`", "")}
	}
	return rows
}

// docs/configuration.md documents every flag the binary has, in the same
// group, with all its environment variables, its anycable.toml key and its
// default (the first
// word of the Default cell, where --help shows one); and no flag the binary
// lacks.
func TestConfigurationDocListsEveryFlag(t *testing.T) {
	t.Parallel()
	rows := configurationRows(t)
	known := map[string]bool{}
	for _, f := range helpFlags(t) {
		key := "`--" + f.name + "`"
		known[key] = true
		row, ok := rows[key]
		if !ok {
			t.Errorf("docs/configuration.md has no row for --%s (section %q)", f.name, f.group)
			continue
		}
		if row.section != f.group {
			t.Errorf("--%s is under %q in configuration.md, under %q in --help", f.name, row.section, f.group)
		}
		for _, env := range f.env {
			if !strings.Contains(row.env, "`"+env+"`") {
				t.Errorf("configuration.md: --%s does not name %s", f.name, env)
			}
		}
		if f.file != "" && !strings.Contains(row.env, "file `"+f.file+"`") {
			t.Errorf("configuration.md: --%s does not name its anycable.toml key: add \"; file `%s`\" to its Env cell", f.name, f.file)
		}
		if first, _, _ := strings.Cut(strings.TrimSpace(row.def), " "); f.def != "" && first != f.def {
			t.Errorf("configuration.md: --%s default is %q there, %q in --help", f.name, strings.TrimSpace(row.def), f.def)
		}
	}
	for name := range rows {
		if !known[name] {
			t.Errorf("configuration.md documents %s, which --help does not list", name)
		}
	}
}

var (
	mdLink    = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	mdHeading = regexp.MustCompile(`(?m)^#{1,6} (.+)$`)
)

// pendingDirs are added by branches merged alongside the docs; links into
// them are checked once they exist in the checkout.
var pendingDirs = map[string]bool{"sdk": true, "client": true}

// Every relative link in the repository's markdown points at a file or
// heading inside the repository: nothing may lead outside it.
func TestDocsLinksStayInRepository(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules" || d.Name() == "dist" || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".md") {
			return nil
		}
		text, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if strings.Contains(string(text), "../shared") {
			t.Errorf("%s mentions ../shared, which is outside the repository", rel)
		}
		for _, m := range mdLink.FindAllStringSubmatch(string(text), -1) {
			checked++
			checkLink(t, root, path, rel, m[1])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 10 {
		t.Fatalf("found only %d links: the link pattern is broken", checked)
	}
}

func checkLink(t *testing.T, root, path, rel, target string) {
	t.Helper()
	if strings.HasPrefix(target, "https://") || strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "mailto:") {
		return
	}
	if strings.Contains(target, "://") || strings.HasPrefix(target, "/") {
		t.Errorf("%s: link %q is not relative to the repository", rel, target)
		return
	}
	file, anchor, _ := strings.Cut(target, "#")
	dest := path
	if file != "" {
		dest = filepath.Join(filepath.Dir(path), filepath.FromSlash(file))
	}
	inside, err := filepath.Rel(root, dest)
	if err != nil || inside == ".." || strings.HasPrefix(inside, ".."+string(filepath.Separator)) {
		t.Errorf("%s: link %q leads outside the repository", rel, target)
		return
	}
	if info, err := os.Stat(dest); err == nil && info.IsDir() {
		return
	}
	text, err := os.ReadFile(dest)
	if err != nil {
		top := strings.Split(filepath.ToSlash(inside), "/")[0]
		if _, dirErr := os.Stat(filepath.Join(root, top)); pendingDirs[top] && os.IsNotExist(dirErr) {
			t.Logf("%s: %s not checked: %s/ is not in this checkout yet", rel, target, top)
			return
		}
		t.Errorf("%s: link %q: %v", rel, target, err)
		return
	}
	if anchor != "" && strings.HasSuffix(dest, ".md") && !hasAnchor(string(text), anchor) {
		t.Errorf("%s: link %q: no heading with that anchor", rel, target)
	}
}

// hasAnchor reports whether markdown text has a heading whose GitHub anchor
// (lower case, punctuation dropped, spaces as '-') is anchor.
func hasAnchor(text, anchor string) bool {
	for _, m := range mdHeading.FindAllStringSubmatch(text, -1) {
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(m[1])) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
				b.WriteRune(r)
			}
		}
		if b.String() == anchor {
			return true
		}
	}
	return false
}

// The quick start shows the token its recipe prints for its secret: the
// server's derivation.
func TestQuickstartShowsTheServersToken(t *testing.T) {
	t.Parallel()
	text, err := os.ReadFile(filepath.Join(repoRoot, "docs", "quickstart.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := config.DeriveSecret("quickstart-secret", "api-cable")
	if !strings.Contains(string(text), "--secret quickstart-secret") || !strings.Contains(string(text), "`"+want+"`") {
		t.Errorf("docs/quickstart.md does not show the token %s for --secret quickstart-secret", want)
	}
}

// The README's layout names every package under server/, so a new one
// cannot go unmentioned.
func TestReadmeLayoutNamesEveryServerPackage(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(repoRoot, "server"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() && !strings.Contains(string(readme), "| `"+e.Name()+"` |") {
			t.Errorf("README.md's layout does not name server/%s", e.Name())
		}
	}
}
