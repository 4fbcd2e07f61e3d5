package main

// pharos-node config check: every check run makes before it starts (config.Load, then
// preflight), without starting anything. Problems and warnings go to stderr, one a line, each
// naming its key; the effective configuration goes to stdout with the cookie redacted. Exit 0
// when run would start, 1 when it would not, 2 for a usage error.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/pharos-node/pharos-node/internal/config"
)

func runConfigCmd(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return usageError(stderr, "config", errors.New("missing subcommand: check"))
	}
	switch args[0] {
	case "-h", "--help", "-help", "help":
		printHelp(stdout, "config", nil)
		return 0
	case "check":
	default:
		return usageError(stderr, "config", fmt.Errorf("unknown subcommand %q (want check)", args[0]))
	}
	for _, a := range args[1:] {
		if a == "-h" || a == "--help" || a == "-help" {
			printHelp(stdout, "config", nil)
			return 0
		}
	}
	return configCheck(args[1:], os.Environ(), os.Getenv, stdout, stderr)
}

// configCheck is `config check` with its environment given.
func configCheck(args, environ []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(args, environ, os.ReadFile)
	var warnings []config.Warning
	var pf *checked
	if err == nil {
		pf = preflight(cfg, getenv)
		err, warnings = pf.err(), pf.warnings
	}
	kes := config.KeyErrors(err)
	for _, ke := range kes {
		fmt.Fprintf(stderr, "error: %s\n", ke.Error())
	}
	if err != nil && len(kes) == 0 {
		fmt.Fprintf(stderr, "error: %v\n", err)
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "warning: config: %s: %s\n", w.Key, w.Message)
	}
	if err != nil {
		fmt.Fprintf(stderr, "config check: %d problem(s): pharos-node run would not start\n", max(len(kes), 1))
		return 1
	}
	fmt.Fprintf(stdout, "# pharos-node %s: the effective configuration\n", readBuildInfo().Version)
	fmt.Fprintf(stdout, "# cookie: <redacted>, from %s\n", pf.cookieFrom)
	fmt.Fprintf(stdout, "# node name: %s; EPMD port: %d\n", pf.nodeName, pf.epmdPort)
	if err := cfg.WriteYAML(stdout); err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "config check: OK (%d warning(s))\n", len(warnings))
	return 0
}
