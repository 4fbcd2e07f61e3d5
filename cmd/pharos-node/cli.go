package main

// The command line's shape: every command has a summary, a usage line, a description, examples
// and flags, printed by `pharos-node CMD --help` and `pharos-node help CMD` (exit 0). Flags
// that name a setting are spelled as its configuration key (--brain.node) in every command;
// older spellings stay as hidden aliases for a release.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/pharos-node/pharos-node/internal/config"
)

// command is one subcommand: it gets the arguments after its name and returns the exit code.
type command struct {
	run         func(ctx context.Context, args []string, stdout, stderr io.Writer) int
	summary     string
	usage       string // after "pharos-node "
	description string
	examples    []string
	flagsHelp   func(io.Writer) // the flags section, for commands whose flags are the settings
}

// commands lists the subcommands; each lives in its own <name>_cmd.go file.
func commands() map[string]command {
	return map[string]command{
		"run": {run: runRun, summary: "run the daemon: ingest (HTTP, StatsD, scrape, host) and deliver to the Brain",
			usage: "run [--config FILE] [--KEY VALUE ...]",
			description: `Joins the Brain's cluster as a hidden node and delivers what the ingest sources accept,
through a RAM ring and an optional spill directory. Every setting can come from the YAML file,
a PHAROS_<KEY> variable or a --<key> flag (flags win over variables, which win over the file);
docs/configuration.md lists them. The cookie comes from PHAROS_COOKIE, else node.cookie_file.
SIGTERM or SIGINT stops it (delivering for up to shutdown_timeout, then spilling; a second
signal spills at once); SIGHUP reloads the file. Exit codes: 0 stopped cleanly, 1 runtime
failure, 2 bad configuration.`,
			flagsHelp: config.Usage,
			examples: []string{
				"pharos-node run --config /etc/pharos-node/pharos.yaml",
				"PHAROS_COOKIE=secret pharos-node run --brain.node brain@10.0.0.5 --ingest.http.listen 127.0.0.1:9180",
			}},
		"config": {run: runConfigCmd, summary: "check a configuration file and print the effective configuration",
			usage: "config check [--config FILE] [--KEY VALUE ...]",
			description: `check runs every check that run makes before it starts (keys and values, addresses, node
names, the cookie file and its mode, TLS files, the spill directory) without starting
anything, prints each problem naming its key, warns about settings that do nothing, and
prints the effective configuration (the cookie redacted) on stdout. Exit 0 when run would
start, 1 when it would not, 2 for a usage error.`,
			flagsHelp: config.Usage,
			examples: []string{
				"pharos-node config check --config /etc/pharos-node/pharos.yaml",
				"pharos-node config check --config pharos.yaml --brain.mode acked",
			}},
		"ping": {run: runPing, summary: "connect to the Brain as a hidden node and measure the round trip",
			usage: "ping --brain.node NAME@HOST [flags]",
			description: `Starts a hidden node, connects to the Brain's node, checks that the Brain's registered
process exists, and prints the round trip. Exit 0 on a pong, 1 when the Brain cannot be
reached (the error says why: wrong cookie, no such node or process), 2 for a usage error.`,
			examples: []string{
				"pharos-node ping --brain.node brain@127.0.0.1",
				"PHAROS_COOKIE=secret pharos-node ping --brain.node brain@db1 --brain.addr db1:9100 --tls.enabled --tls.ca_file ca.pem",
			}},
		"send": {run: runSend, summary: "send N synthetic metrics to the Brain and report the rate",
			usage: "send --brain.node NAME@HOST --count N [flags]",
			description: `Sends N valid synthetic metrics (tag seq = 0..N-1) and prints one JSON summary line. In the
payload, term and subject modes a final round trip proves the Brain's node received them all;
in acked mode the records go through the daemon's connection manager and the command exits 0
once the Brain acknowledged every one (with --spill.dir a rerun resumes where a killed run
stopped). Exit 0 on success, 1 on failure, 2 for a usage error.`,
			examples: []string{
				"pharos-node send --brain.node brain@127.0.0.1 --count 100000",
				"pharos-node send --brain.node brain@127.0.0.1 --count 1000000 --brain.mode acked --spill.dir /tmp/acked",
			}},
		"spill": {run: runSpill, summary: "inspect, verify or repair a spill directory",
			usage:       "spill <inspect|verify|repair> DIR [--json] [-v]",
			description: spillDescription,
			examples: []string{
				"pharos-node spill inspect /var/lib/pharos-node/spill",
				"pharos-node spill verify --json /var/lib/pharos-node/spill",
			}},
		"version": {run: runVersion, summary: "print the version, commit, build date, Go and Ergo versions",
			usage:       "version [--json]",
			description: "Prints what built this binary; `pharos-node --version` prints the same.",
			examples:    []string{"pharos-node version", "pharos-node version --json"}},
	}
}

// errUsage marks a command-line mistake (exit code 2).
var errUsage = errors.New("usage")

// exitCode maps an error to the command's exit code: 2 for usage, 1 otherwise.
func exitCode(err error) int {
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

// newFlagSet returns a flag set that reports errors to the caller instead of printing them.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses args; --help prints the command's help to stdout (done, exit 0); a bad flag
// prints the error and a pointer to the help to stderr (done, exit 2).
func parseFlags(name string, fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, done bool) {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		printHelp(stdout, name, fs)
		return 0, true
	}
	if err != nil {
		return usageError(stderr, name, err), true
	}
	return 0, false
}

// usageError prints a command-line mistake, the command's usage line and where its help is, and
// returns 2.
func usageError(stderr io.Writer, name string, err error) int {
	fmt.Fprintf(stderr, "pharos-node %s: %v\nusage: pharos-node %s\nRun 'pharos-node help %s' for the flags and examples.\n",
		name, strings.TrimPrefix(err.Error(), "usage: "), commands()[name].usage, name)
	return 2
}

// printHelp writes a command's help: summary, usage, description, flags, examples.
func printHelp(w io.Writer, name string, fs *flag.FlagSet) {
	c := commands()[name]
	fmt.Fprintf(w, "pharos-node %s: %s\n\nUsage:\n  pharos-node %s\n\n%s\n", name, c.summary, c.usage, c.description)
	switch {
	case c.flagsHelp != nil:
		fmt.Fprintln(w, "\nFlags (each a setting: also PHAROS_<KEY>, or KEY in the file; docs/configuration.md):")
		c.flagsHelp(w)
	case fs != nil:
		fmt.Fprintln(w, "\nFlags:")
		writeFlags(w, fs)
	}
	if len(c.examples) > 0 {
		fmt.Fprintln(w, "\nExamples:")
		for _, e := range c.examples {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
}

// writeFlags lists fs's flags, old spellings left out, each default shown once.
func writeFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		if a, ok := f.Value.(interface{ AliasOf() string }); ok && a.AliasOf() != "" {
			return
		}
		arg, help := flag.UnquoteUsage(f)
		def := f.DefValue
		if p, ok := f.Value.(interface{ Placeholder() string }); ok {
			arg = p.Placeholder()
		}
		if d, ok := f.Value.(interface{ DefaultText() string }); ok {
			def = d.DefaultText()
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			arg = ""
		}
		name := "--" + f.Name
		if len(f.Name) == 1 {
			name = "-" + f.Name
		}
		if arg != "" {
			name += " " + arg
		}
		switch def {
		case "", "0", "false", "0s":
			fmt.Fprintf(w, "  %s\n        %s\n", name, help)
		default:
			fmt.Fprintf(w, "  %s\n        %s (default %s)\n", name, help, def)
		}
	})
}

// topUsage is `pharos-node help`.
func topUsage(w io.Writer) {
	fmt.Fprint(w, `pharos-node delivers telemetry to a BEAM "Brain" over Erlang distribution, as a hidden node.

Usage:
  pharos-node <command> [flags]
  pharos-node help <command>
  pharos-node --version

Commands:
`)
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for name := range cmds {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-8s %s\n", name, cmds[name].summary)
	}
	fmt.Fprint(w, `
Run 'pharos-node help <command>' (or 'pharos-node <command> --help') for its flags and examples.
`)
}
