package config

import (
	"flag"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Setting describes one key of Config: the table behind --help, docs/configuration.md, the
// flags, the PHAROS_* variables and the reload classes.
type Setting struct {
	Key     string // key path, e.g. brain.node
	Env     string // its variable, e.g. PHAROS_BRAIN_NODE
	Help    string
	Arg     string // placeholder of the flag's value, e.g. DURATION; "" for a boolean
	Default string // the default as text; a computed default is described (def tag)
	Reload  string // ReloadLive, ReloadRestart or ReloadAgent
}

// setting is one leaf of a Config value, reached by reflection (start-up and reload only, never
// on a hot path).
type setting struct {
	Setting
	v reflect.Value
}

// Settings returns the table of every key, sorted by key, with Default's values.
func Settings() []Setting {
	cfg := Default()
	fields := settings(&cfg)
	out := make([]Setting, len(fields))
	for i, f := range fields {
		out[i] = f.Setting
	}
	return out
}

// Lookup returns the Setting of key.
func Lookup(key string) (Setting, bool) {
	for _, s := range Settings() {
		if s.Key == key {
			return s, true
		}
	}
	return Setting{}, false
}

func settings(cfg *Config) []*setting {
	var out []*setting
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
			key := name
			if prefix != "" {
				key = prefix + "." + name
			}
			fv := v.Field(i)
			if sf.Type.Kind() == reflect.Struct {
				walk(fv, key)
				continue
			}
			s := &setting{v: fv, Setting: Setting{Key: key, Help: sf.Tag.Get("help"), Arg: sf.Tag.Get("arg"),
				Reload: sf.Tag.Get("reload")}}
			s.Env = "PHAROS_" + strings.NewReplacer(".", "_", "-", "_").Replace(strings.ToUpper(key))
			if s.Reload == "" {
				s.Reload = ReloadRestart
			}
			if s.Arg == "" {
				s.Arg = argOf(fv)
			}
			s.Default = s.String()
			if d := sf.Tag.Get("def"); d != "" && fv.IsZero() {
				s.Default = d
			}
			out = append(out, s)
		}
	}
	walk(reflect.ValueOf(cfg).Elem(), "")
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// argOf is the placeholder of a flag's value by its type.
func argOf(v reflect.Value) string {
	switch v.Addr().Interface().(type) {
	case *Duration:
		return "DURATION"
	case *ByteSize:
		return "SIZE"
	case *int:
		return "N"
	case *bool:
		return ""
	case *[]string:
		return "LIST"
	}
	return "TEXT"
}

func (s *setting) String() string {
	switch x := s.v.Interface().(type) {
	case []string:
		return strings.Join(x, ",")
	case fmt.Stringer:
		return x.String()
	default:
		return fmt.Sprint(x)
	}
}

func (s *setting) set(text string) error {
	switch p := s.v.Addr().Interface().(type) {
	case *string:
		*p = text
	case *int:
		n, err := strconv.Atoi(strings.ReplaceAll(strings.TrimSpace(text), "_", ""))
		if err != nil {
			return fmt.Errorf("not an integer: %q", text)
		}
		*p = n
	case *bool:
		b, err := strconv.ParseBool(strings.TrimSpace(text))
		if err != nil {
			return fmt.Errorf("not a boolean (true or false): %q", text)
		}
		*p = b
	case *Duration:
		return p.parse(text)
	case *ByteSize:
		return p.parse(text)
	case *[]string:
		*p = nil
		for _, part := range strings.Split(text, ",") {
			if part = strings.TrimSpace(part); part != "" {
				*p = append(*p, part)
			}
		}
	default:
		return fmt.Errorf("unsupported setting type %T", p)
	}
	return nil
}

// Values returns every key of c with its value as text (the same text a flag takes).
func (c Config) Values() map[string]string {
	out := map[string]string{}
	for _, s := range settings(&c) {
		out[s.Key] = s.String()
	}
	return out
}

// Set sets key to the value text, as a flag would. Reload uses it to keep a running value.
func (c *Config) Set(key, text string) error {
	for _, s := range settings(c) {
		if s.Key == key {
			if err := s.set(text); err != nil {
				return &KeyError{Key: key, Reason: err.Error()}
			}
			return nil
		}
	}
	return &KeyError{Key: key, Reason: "unknown setting"}
}

// Usage writes every setting with its flag, variable and default, for `run --help`.
func Usage(w io.Writer) {
	fmt.Fprintln(w, "  --config FILE")
	fmt.Fprintln(w, "        YAML configuration file; flags win over PHAROS_* variables, which win over the file")
	for _, s := range Settings() {
		flagName := "--" + s.Key
		if s.Arg != "" {
			flagName += " " + s.Arg
		}
		fmt.Fprintf(w, "  %s  (%s)\n        %s%s\n", flagName, s.Env, s.Help, defaultSuffix(s.Default))
	}
}

// defaultSuffix is " (default X)", or nothing for an empty default.
func defaultSuffix(d string) string {
	switch d {
	case "", "0", "false":
		return ""
	}
	return " (default " + d + ")"
}

// WriteMarkdown writes docs/configuration.md: every key, from the same table as --help.
func WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# Configuration of `pharos-node run`\n\n")
	b.WriteString("Generated from the table behind `pharos-node run --help` (internal/config); a test fails when\n")
	b.WriteString("this file is out of date (`make docs` rewrites it).\n\n")
	b.WriteString("Each key can be set in the YAML file named by `--config` (nested as in its path), as a variable\n")
	b.WriteString("`PHAROS_<KEY>`, or as a flag `--<key>`; flags win over variables, which win over the file.\n")
	b.WriteString("`pharos-node config check` validates a file and prints the effective configuration. The cookie is\n")
	b.WriteString("never a setting: it comes from `PHAROS_COOKIE`, else from `node.cookie_file`.\n\n")
	b.WriteString("Reload (SIGHUP, `systemctl reload pharos-node`): **live** keys change in the running daemon;\n")
	b.WriteString("**restart** keys keep their running value until the next start, and the reload says so.\n")
	section := ""
	for _, s := range Settings() {
		sec, _, ok := strings.Cut(s.Key, ".")
		if !ok {
			sec = "general"
		}
		if sec != section {
			section = sec
			fmt.Fprintf(&b, "\n## %s\n\n| key | variable | default | reload | meaning |\n| --- | --- | --- | --- | --- |\n", section)
		}
		def := s.Default
		if def == "" {
			def = "(empty)"
		}
		reload := "live"
		if s.Reload != ReloadLive {
			reload = "restart"
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s | %s |\n", s.Key, s.Env, def, reload, strings.ReplaceAll(s.Help, "|", "\\|"))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Bind registers a flag for each of keys on fs, named by the key (--brain.node), with the help
// and placeholder of the table, writing straight into cfg, whose current values are the
// defaults. aliases maps an old flag name to a key: the same flag under a name kept for
// compatibility; Hidden reports them. Commands other than run (ping, send) use it, so that
// every command spells a setting the same way.
func Bind(fs *flag.FlagSet, cfg *Config, keys []string, aliases map[string]string) error {
	byKey := map[string]*setting{}
	for _, s := range settings(cfg) {
		byKey[s.Key] = s
	}
	for _, k := range keys {
		s, ok := byKey[k]
		if !ok {
			return fmt.Errorf("config: Bind: unknown key %q", k)
		}
		fs.Var(&boundValue{s: s}, k, s.Help)
	}
	for old, k := range aliases {
		s, ok := byKey[k]
		if !ok {
			return fmt.Errorf("config: Bind: alias %q of unknown key %q", old, k)
		}
		fs.Var(&boundValue{s: s, alias: k}, old, "same as --"+k)
	}
	return nil
}

// boundValue is a flag that sets a Config field directly.
type boundValue struct {
	s     *setting
	alias string // the canonical key when this flag is an old spelling
}

func (v *boundValue) String() string {
	if v == nil || v.s == nil {
		return ""
	}
	return v.s.String()
}

func (v *boundValue) Set(text string) error {
	if err := v.s.set(text); err != nil {
		return err
	}
	return nil
}

// IsBoolFlag lets boolean settings be given as a bare --key.
func (v *boundValue) IsBoolFlag() bool { return v.s.v.Kind() == reflect.Bool }

// Placeholder names the flag's value in help.
func (v *boundValue) Placeholder() string { return v.s.Arg }

// AliasOf returns the canonical key of an old spelling, "" for a canonical flag.
func (v *boundValue) AliasOf() string { return v.alias }

// DefaultText is the default as help shows it (a computed default described).
func (v *boundValue) DefaultText() string { return v.s.Default }

// WriteYAML writes c as a configuration file: every key with its value, each not at its
// default annotated with where it came from. The cookie is not a setting and never appears.
func (c Config) WriteYAML(w io.Writer) error {
	var doc yaml.Node
	if err := doc.Encode(c); err != nil {
		return err
	}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			if prefix != "" {
				key = prefix + "." + key
			}
			v := n.Content[i+1]
			if v.Kind == yaml.MappingNode {
				walk(v, key)
				continue
			}
			if o := c.Origin(key); o != "default" {
				v.LineComment = "from " + o
			} else if s, ok := Lookup(key); ok && s.Default != c.Values()[key] {
				v.LineComment = "default: " + s.Default
			}
		}
	}
	walk(&doc, "")
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return err
	}
	return enc.Close()
}
