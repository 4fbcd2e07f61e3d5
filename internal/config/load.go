package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load builds the configuration: defaults, then the file named by --config (if any), then PHAROS_*
// variables from environ, then the flags in args, and validates the result. It reports every
// problem it finds (errors.Join of *KeyError; KeyErrors lists them), each naming its key and
// where the value came from.
func Load(args []string, environ []string, readFile func(string) ([]byte, error)) (Config, error) {
	cfg := Default()
	cfg.origin = map[string]string{}
	fields := settings(&cfg)
	byKey := make(map[string]*setting, len(fields))
	for _, f := range fields {
		byKey[f.Key] = f
	}

	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	configFile := fs.String("config", "", "YAML configuration file")
	given := make([]*flagValue, 0, len(fields))
	for _, f := range fields {
		fv := &flagValue{f: f}
		given = append(given, fv)
		fs.Var(fv, f.Key, f.Help)
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, &KeyError{Key: "flags", Reason: err.Error()}
	}
	if fs.NArg() > 0 {
		return Config{}, &KeyError{Key: "flags", Reason: fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	var errs []error
	if *configFile != "" {
		data, err := readFile(*configFile)
		if err != nil {
			return Config{}, &KeyError{Key: "config", Source: "flag --config", Reason: err.Error()}
		}
		errs = append(errs, decodeYAML(data, byKey, cfg.origin, *configFile)...)
	}
	byEnv := map[string]*setting{}
	for _, f := range fields {
		byEnv[f.Env] = f
	}
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, "PHAROS_") || ignoredEnv(name) {
			continue
		}
		f, known := byEnv[name]
		if !known {
			errs = append(errs, &KeyError{Key: name, Source: "env " + name, Reason: "unknown setting" + suggest(envToKey(name), byKey)})
			continue
		}
		if err := f.set(value); err != nil {
			errs = append(errs, &KeyError{Key: f.Key, Source: "env " + name, Reason: err.Error()})
			continue
		}
		cfg.origin[f.Key] = "env " + name
	}
	for _, fv := range given {
		if !fv.given {
			continue
		}
		if err := fv.f.set(fv.raw); err != nil {
			errs = append(errs, &KeyError{Key: fv.f.Key, Source: "flag --" + fv.f.Key, Reason: err.Error()})
			continue
		}
		cfg.origin[fv.f.Key] = "flag --" + fv.f.Key
	}
	// Validate too, so that one run reports every problem; a key that did not parse is not
	// blamed again for the default it kept.
	failed := map[string]bool{}
	for _, ke := range KeyErrors(errors.Join(errs...)) {
		failed[ke.Key] = true
	}
	for _, ke := range KeyErrors(cfg.Validate()) {
		if !failed[ke.Key] {
			errs = append(errs, ke)
		}
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return cfg, nil
}

// ignoredEnv reports the PHAROS_ variables that are not settings.
func ignoredEnv(name string) bool {
	switch name {
	case "PHAROS_COOKIE", "PHAROS_OTP", "PHAROS_OTP_CACHE", "PHAROS_EPMD_PORT", "PHAROS_RUN_CONFIG":
		return true
	}
	return false
}

// envToKey guesses the key a variable meant: PHAROS_BRAIN_NOD -> brain.nod.
func envToKey(name string) string {
	return strings.ToLower(strings.Replace(strings.TrimPrefix(name, "PHAROS_"), "_", ".", 1))
}

// decodeYAML walks the file's tree against the settings, so that every error names its full
// key and line: unknown keys, values of the wrong shape, bad durations and sizes.
func decodeYAML(data []byte, byKey map[string]*setting, origin map[string]string, file string) []error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return []error{&KeyError{Key: "config", Source: "file " + file, Reason: err.Error()}}
	}
	if len(doc.Content) == 0 {
		return nil // an empty file
	}
	var errs []error
	where := func(n *yaml.Node) string { return fmt.Sprintf("file %s line %d", file, n.Line) }
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return // "section:" with nothing under it
		}
		if n.Kind != yaml.MappingNode {
			key := prefix
			if key == "" {
				key = "config"
			}
			errs = append(errs, &KeyError{Key: key, Source: where(n), Reason: "must be a mapping of keys to values"})
			return
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			kn, vn := n.Content[i], n.Content[i+1]
			key := kn.Value
			if prefix != "" {
				key = prefix + "." + kn.Value
			}
			if seen[kn.Value] {
				errs = append(errs, &KeyError{Key: key, Source: where(kn), Reason: "given twice"})
				continue
			}
			seen[kn.Value] = true
			if f, ok := byKey[key]; ok {
				if err := setNode(f, vn); err != nil {
					errs = append(errs, &KeyError{Key: key, Source: where(vn), Reason: err.Error()})
					continue
				}
				origin[key] = where(vn)
				continue
			}
			if isSection(key, byKey) {
				walk(vn, key)
				continue
			}
			errs = append(errs, &KeyError{Key: key, Source: where(kn), Reason: "unknown setting" + suggest(key, byKey)})
		}
	}
	walk(doc.Content[0], "")
	return errs
}

// setNode sets a setting from a YAML value: a scalar as a flag's text, a list for a list.
func setNode(f *setting, n *yaml.Node) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	isList := f.v.Kind() == reflect.Slice
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!null":
		if f.v.Kind() == reflect.String || isList {
			f.v.SetZero()
			return nil
		}
		return errors.New("has no value")
	case n.Kind == yaml.SequenceNode && isList:
		items := make([]string, 0, len(n.Content))
		for _, it := range n.Content {
			if it.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: a list item must be a plain value", it.Line)
			}
			items = append(items, it.Value)
		}
		f.v.Set(reflect.ValueOf(items))
		return nil
	case n.Kind == yaml.ScalarNode:
		return f.set(n.Value)
	}
	if isList {
		return errors.New("must be a list")
	}
	return errors.New("must be a single value, not a list or a mapping")
}

// isSection reports whether key is a prefix of some setting (brain, ingest.http).
func isSection(key string, byKey map[string]*setting) bool {
	for k := range byKey {
		if strings.HasPrefix(k, key+".") {
			return true
		}
	}
	return false
}

// suggest names the known key closest to key, when one is close.
func suggest(key string, byKey map[string]*setting) string {
	best, bestD := "", 3
	for k := range byKey {
		if d := editDistance(key, k); d < bestD || (d == bestD && k < best) {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

// editDistance is the Levenshtein distance of a and b.
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

// flagValue keeps a flag's text; Load applies it after the file and the environment, so flags win.
type flagValue struct {
	f     *setting
	raw   string
	given bool
}

func (v *flagValue) String() string { return v.raw }

// Set keeps the text for Load, which parses it after the file and the environment and names the
// key in any error.
func (v *flagValue) Set(text string) error {
	v.raw, v.given = text, true
	return nil
}

// IsBoolFlag lets boolean settings be given as a bare --key.
func (v *flagValue) IsBoolFlag() bool { return v.f.v.Kind() == reflect.Bool }
