package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// option is one setting: its flag, environment variables, keys in the
// configuration file, help group and text, and how --print-config shows
// it. Each is defined once, by its p.add line in flags.go.
type option struct {
	name  string
	group string
	usage string
	env   []string
	// keys are the setting's dotted paths in anycable.toml ("rpc.host"):
	// keys[0] is the one --print-config writes, any others are accepted
	// spellings (AnyCable writes [metrics] http but reads http_path).
	keys []string
	// fileless marks a flag that is only a shorthand for another
	// setting's value (--norpc for [rpc] implementation = "none").
	fileless bool
	// drawn marks a setting whose default is drawn at each start (the node
	// id): --print-config shows no value in effect for it, so printing
	// twice gives the same file.
	drawn bool
	// hidden makes --print-config hide the whole value (a secret or key);
	// the credentials of URLs are hidden in every value (see shown).
	hidden bool
	value  flag.Value
}

// file sets the setting's keys in anycable.toml: the one printed first,
// then accepted alternatives.
func (o *option) file(keys ...string) *option { o.keys = keys; return o }

// noFile marks a flag without a key of its own: the file sets the value
// it stands for through another setting's key.
func (o *option) noFile() *option { o.fileless = true; return o }

// drawnDefault marks a setting whose default is drawn at each start.
func (o *option) drawnDefault() *option { o.drawn = true; return o }

// secret makes --print-config mask the value.
func (o *option) secret() *option { o.hidden = true; return o }

// printMode is --print-config: off, on with secrets masked, or
// "--print-config=secrets" with them in clear.
type printMode int

const (
	printOff printMode = iota
	printMasked
	printSecrets
)

func (m *printMode) String() string {
	switch *m {
	case printMasked:
		return "true"
	case printSecrets:
		return "secrets"
	}
	return "false"
}

func (m *printMode) Set(s string) error {
	switch s {
	case "true":
		*m = printMasked
	case "false":
		*m = printOff
	case "secrets":
		*m = printSecrets
	default:
		return fmt.Errorf("must be true, false or secrets")
	}
	return nil
}

func (m *printMode) IsBoolFlag() bool { return true }

type parser struct {
	fs      *flag.FlagSet
	options []*option
	// set names the flags given on the command line.
	set map[string]bool
	// anycableArgs holds the AnyCable flags Cablehub does not support that
	// the command line gave, by name: they are noticed (argNotices) as
	// the same settings are in the environment and the file, not refused.
	anycableArgs map[string]string
	// The configuration file switches: flags only, like AnyCable's.
	configPath   string
	ignoreConfig bool
	print        printMode
}

func newParser() *parser {
	p := &parser{fs: flag.NewFlagSet("cablehub", flag.ContinueOnError), set: map[string]bool{}}
	p.fs.SetOutput(io.Discard)
	p.fs.Usage = func() {}
	p.fs.StringVar(&p.configPath, "config-path", "", "")
	p.fs.BoolVar(&p.ignoreConfig, "ignore-config-path", false, "")
	p.fs.Var(&p.print, "print-config", "")
	return p
}

func (p *parser) add(group, name string, value flag.Value, usage string, extraEnv ...string) *option {
	env := append([]string{EnvName(name)}, extraEnv...)
	o := &option{name: name, group: group, usage: usage, env: env, value: value}
	p.options = append(p.options, o)
	p.fs.Var(value, name, usage)
	return o
}

// EnvName is the environment variable AnyCable reads for a flag:
// ANYCABLE_ and the name upper-cased, with '-' turned into '_'.
func EnvName(flagName string) string {
	return "ANYCABLE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseArgs reads the command line: --help writes the usage and returns
// ErrHelp; flags set their fields at once and are remembered, so that
// neither the environment nor the file overrides them.
func (p *parser) parseArgs(args []string, out io.Writer) error {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			p.usage(out)
			return ErrHelp
		}
	}
	p.acceptAnyCableFlags()
	if err := p.fs.Parse(args); err != nil {
		return p.explain(err)
	}
	if p.fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags take the form --name=value)", p.fs.Arg(0))
	}
	p.fs.Visit(func(f *flag.Flag) { p.set[f.Name] = true })
	if p.set["config-path"] && p.configPath == "" {
		return errors.New("flag --config-path needs a file path")
	}
	return nil
}

// anycableArg takes the value of an AnyCable flag Cablehub does not
// support.
type anycableArg struct {
	p       *parser
	name    string
	boolean bool
}

func (a anycableArg) String() string   { return "" }
func (a anycableArg) IsBoolFlag() bool { return a.boolean }
func (a anycableArg) Set(v string) error {
	a.p.anycableArgs[a.name] = v
	return nil
}

// acceptAnyCableFlags defines AnyCable's flags that Cablehub has no
// setting for, so a command line written for AnyCable starts with a
// warning naming them rather than failing; a boolean one (AnyCable's
// default true or false) may be given bare, as AnyCable takes it.
func (p *parser) acceptAnyCableFlags() {
	p.anycableArgs = map[string]string{}
	for _, s := range anycableSettings() {
		if s.flag == "" || p.fs.Lookup(s.flag) != nil {
			continue
		}
		boolean := slices.Contains(s.defaults, "false") || slices.Contains(s.defaults, "true")
		p.fs.Var(anycableArg{p, s.flag, boolean}, s.flag, "")
	}
}

// argNotices names the AnyCable flags of the command line that Cablehub
// does not support, as envNotices names their variables.
func (p *parser) argNotices() []Notice {
	var out []Notice
	var atDefault []string
	for _, s := range anycableSettings() {
		v, ok := p.anycableArgs[s.flag]
		switch {
		case !ok || s.flag == "":
		case slices.Contains(s.defaults, v):
			atDefault = append(atDefault, "--"+s.flag)
		default:
			out = append(out, warnf("--%s is AnyCable's setting; Cablehub does not support it: %s", s.flag, s.why))
		}
	}
	if len(atDefault) > 0 {
		out = append(out, infof("ignored AnyCable flags that Cablehub does not have, each at a value that asks for nothing: %s", strings.Join(atDefault, ", ")))
	}
	return out
}

// apply gives every setting not set on the command line its value from
// the environment, else from the file: defaults < file < environment <
// flags.
func (p *parser) apply(getenv func(string) string, file *configFile) error {
	for _, o := range p.options {
		if p.set[o.name] {
			continue
		}
		fromEnv, err := p.applyEnv(o, getenv)
		if err != nil {
			return err
		}
		if fromEnv {
			continue
		}
		if err := file.apply(o); err != nil {
			return err
		}
	}
	return nil
}

// applyEnv sets o from the first of its variables that is set and not
// empty, and reports whether one was.
func (p *parser) applyEnv(o *option, getenv func(string) string) (bool, error) {
	for _, env := range o.env {
		v := getenv(env)
		if v == "" {
			continue
		}
		if err := o.value.Set(v); err != nil {
			return true, fmt.Errorf("invalid value %q in %s for --%s: %v", v, env, o.name, err)
		}
		return true, nil
	}
	return false, nil
}

// explain turns the flag package's errors into one line naming the flag the
// way users type it.
func (p *parser) explain(err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		return fmt.Errorf("unknown flag --%s (see --help)", strings.TrimLeft(name, "-"))
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
		return fmt.Errorf("flag --%s needs a value", strings.TrimLeft(name, "-"))
	}
	// "invalid value "x" for flag -port: reason"
	if rest, ok := strings.CutPrefix(msg, "invalid value "); ok {
		if i := strings.Index(rest, " for flag -"); i >= 0 {
			value, tail := rest[:i], rest[i+len(" for flag -"):]
			name, reason, _ := strings.Cut(tail, ": ")
			return fmt.Errorf("invalid value %s for --%s: %s", value, name, reason)
		}
	}
	if rest, ok := strings.CutPrefix(msg, "invalid boolean value "); ok {
		if i := strings.Index(rest, " for -"); i >= 0 {
			value, tail := rest[:i], rest[i+len(" for -"):]
			name, _, _ := strings.Cut(tail, ": ")
			return fmt.Errorf("invalid value %s for --%s: must be true or false", value, name)
		}
	}
	return errors.New(msg)
}

// usage writes the configuration file switches, then the flags grouped,
// each with its environment variables and file key.
func (p *parser) usage(out io.Writer) {
	fmt.Fprintln(out, "Usage: cablehub [flags]")
	fmt.Fprintln(out, "\nEvery flag can also be set with the environment variable shown, or in anycable.toml under the key shown;")
	fmt.Fprintln(out, "a flag on the command line wins over its variable, which wins over the file.")
	fmt.Fprintln(out, "\nConfiguration file (these have no environment variables):")
	fmt.Fprintln(out, "  --config-path PATH\n      read this TOML file (default: ./anycable.toml, else /etc/anycable/anycable.toml, if there)")
	fmt.Fprintln(out, "  --ignore-config-path\n      read no configuration file")
	fmt.Fprintln(out, "  --print-config[=secrets]\n      print the effective configuration as TOML and exit (secrets masked unless =secrets)")
	fmt.Fprintln(out, "\nCommands (no environment variables):")
	fmt.Fprintln(out, "  --version, -v\n      print the version and exit")
	fmt.Fprintln(out, "  --healthcheck\n      with the same flags, variables and file as the server: ask its /health (on --health_path, over TLS")
	fmt.Fprintln(out, "      when --ssl_cert is set) and exit 0 when it answers 200, 1 otherwise; for container health checks")
	var groups []string
	byGroup := map[string][]*option{}
	for _, o := range p.options {
		if _, ok := byGroup[o.group]; !ok {
			groups = append(groups, o.group)
		}
		byGroup[o.group] = append(byGroup[o.group], o)
	}
	for _, g := range groups {
		fmt.Fprintf(out, "\n%s:\n", g)
		for _, o := range byGroup[g] {
			def := o.value.String()
			if def == "" {
				def = `""`
			}
			fmt.Fprintf(out, "  --%s (%s, default %s)\n      %s\n", o.name, strings.Join(o.env, ", "), def, o.usage)
			if len(o.keys) > 0 {
				fmt.Fprintf(out, "      anycable.toml: %s\n", displayKey(o.keys[0]))
			}
		}
	}
}
