package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func runCLI(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := dispatch(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// Every command answers --help and `help CMD` with a description, usage and examples, exit 0.
func TestEveryCommandHasHelp(t *testing.T) {
	for name := range commands() {
		for _, args := range [][]string{{name, "--help"}, {name, "-h"}, {"help", name}} {
			code, out, errOut := runCLI(args...)
			assert.Equal(t, 0, code, "%v: %s", args, errOut)
			for _, part := range []string{"pharos-node " + name + ": ", "Usage:\n  pharos-node " + name, "Examples:\n  pharos-node " + name} {
				assert.Contains(t, out, part, "%v", args)
			}
			assert.NotContains(t, out, "(default )", "%v", args)
			for _, line := range strings.Split(out, "\n") {
				assert.LessOrEqual(t, strings.Count(line, "(default"), 1, "%v: %q", args, line)
			}
		}
	}
	code, out, _ := runCLI("help")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "config ")
	code, _, errOut := runCLI("help", "nosuch")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `unknown command "nosuch"`)
	code, _, _ = runCLI()
	assert.Equal(t, 2, code)
}

// One spelling: ping and send take the keys' names; the old ones work and are hidden.
func TestFlagSpellings(t *testing.T) {
	_, pingHelp, _ := runCLI("ping", "--help")
	_, sendHelp, _ := runCLI("send", "--help")
	for _, help := range []string{pingHelp, sendHelp} {
		assert.Contains(t, help, "--brain.node NAME@HOST")
		assert.Contains(t, help, "--node.net_ticktime DURATION")
		for old := range distAliases() {
			assert.NotContains(t, help, "--"+old+"\n", old)
			assert.NotContains(t, help, "--"+old+" ", old)
		}
	}
	assert.Contains(t, sendHelp, "--brain.mode MODE")
	assert.Contains(t, sendHelp, "--spill.dir DIR")
	assert.Contains(t, sendHelp, "--count N")

	for _, args := range [][]string{
		{"--brain.node", "b@h", "--node.name", "me@h", "--node.net_ticktime", "4s", "--tls.enabled"},
		{"--brain-node", "b@h", "--name", "me@h", "--tick-time", "4s", "--tls"},
	} {
		fs := newFlagSet("ping")
		var d distFlags
		d.register(fs)
		require.NoError(t, fs.Parse(args))
		assert.Equal(t, "b@h", d.cfg.Brain.Node)
		assert.Equal(t, "me@h", d.cfg.Node.Name)
		assert.Equal(t, "4s", d.cfg.Node.NetTick.String())
		assert.True(t, d.cfg.TLS.Enabled)
	}
	code, _, errOut := runCLI("ping", "--brain.node", "b@h", "--node.net_ticktime", "4")
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "node.net_ticktime")
	assert.Contains(t, errOut, "pharos-node help ping")
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		code, out, _ := runCLI(args...)
		assert.Equal(t, 0, code)
		for _, part := range []string{"pharos-node ", "commit:", "built:", "go:         go1.", "ergo:       3.1.0 (module v1.999.310)"} {
			assert.Contains(t, out, part)
		}
	}
	code, out, _ := runCLI("version", "--json")
	require.Equal(t, 0, code)
	var b buildInfo
	require.NoError(t, json.Unmarshal([]byte(out), &b))
	assert.Equal(t, "3.1.0", b.Ergo)
	assert.Equal(t, "v1.999.310", b.ErgoMod)
}
