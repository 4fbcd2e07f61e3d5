package config

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every error in a file names its key and line, durations and sizes included, and Load reports
// every problem, not only the first.
func TestFileErrorsNameKeyAndLine(t *testing.T) {
	const file = "brain:\n  node: brain@h\ndelivery:\n  flush_interval: \"10\"\nbuffer:\n  max_bytes: lots\ningest:\n  http: {listen: nowhere}\n"
	_, err := Load([]string{"--config", "c.yaml"}, nil, files(map[string]string{"c.yaml": file}))
	require.Error(t, err)
	errs := KeyErrors(err)
	require.Len(t, errs, 3, "%v", err)
	assert.Equal(t, "delivery.flush_interval", errs[0].Key)
	assert.Equal(t, "file c.yaml line 4", errs[0].Source)
	assert.Contains(t, errs[0].Reason, `"10" has no unit`)
	assert.Equal(t, "buffer.max_bytes", errs[1].Key)
	assert.Contains(t, errs[1].Reason, "not a size")
	assert.Equal(t, "ingest.http.listen", errs[2].Key)
	assert.Contains(t, err.Error(), "config: delivery.flush_interval (file c.yaml line 4): ")
}

// A conflict blames the key that was set, not the one left at its default.
func TestConflictBlamesTheKeySet(t *testing.T) {
	for _, tc := range []struct {
		file, want, notWant string
	}{
		{"brain: {node: b@h}\nspill: {max_bytes: 1KiB}\n", "spill.max_bytes", "spill.segment_bytes"},
		{"brain: {node: b@h}\nspill: {segment_bytes: 2GiB}\n", "spill.segment_bytes", "spill.max_bytes"},
		{"brain: {node: b@h}\ndelivery: {max_pending: 200000}\n", "delivery.max_pending", ""},
		{"brain: {node: b@h}\nbuffer: {max_records: 10}\n", "buffer.max_records", ""},
		{"brain: {node: b@h}\ndelivery: {max_backoff: 10ms}\n", "delivery.max_backoff", ""},
	} {
		_, err := Load([]string{"--config", "c.yaml"}, nil, files(map[string]string{"c.yaml": tc.file}))
		errs := KeyErrors(err)
		require.Len(t, errs, 1, "%s: %v", tc.file, err)
		assert.Equal(t, tc.want, errs[0].Key, "%v", err)
		assert.Contains(t, errs[0].Source, "file c.yaml line 2")
		if tc.notWant != "" {
			assert.Contains(t, errs[0].Reason, "the default", "%v", err)
		}
	}
}

func TestWarnings(t *testing.T) {
	cfg, err := Load([]string{"--brain.node", "b@h", "--brain.mode", "acked"}, nil, files(nil))
	require.NoError(t, err)
	var keys []string
	for _, w := range cfg.Warnings() {
		keys = append(keys, w.Key)
	}
	assert.Equal(t, []string{"ingest", "spill.dir"}, keys)
	cfg, err = Load([]string{"--brain.node", "b@h", "--ingest.host.enabled", "--spill.dir", "/x"}, nil, files(nil))
	require.NoError(t, err)
	assert.Empty(t, cfg.Warnings())
}

func TestOriginAndSet(t *testing.T) {
	cfg, err := Load([]string{"--config", "c.yaml", "--log.level", "debug"}, []string{"PHAROS_BRAIN_NAME=x"},
		files(map[string]string{"c.yaml": "brain:\n  node: b@h\n"}))
	require.NoError(t, err)
	assert.Equal(t, "file c.yaml line 2", cfg.Origin("brain.node"))
	assert.Equal(t, "env PHAROS_BRAIN_NAME", cfg.Origin("brain.name"))
	assert.Equal(t, "flag --log.level", cfg.Origin("log.level"))
	assert.Equal(t, "default", cfg.Origin("spill.dir"))
	require.NoError(t, cfg.Set("log.level", "warn"))
	assert.Equal(t, "warn", cfg.Log.Level)
	assert.Equal(t, "warn", cfg.Values()["log.level"])
	var ke *KeyError
	require.True(t, errors.As(cfg.Set("log.lvl", "x"), &ke))
}

// Bind gives ping and send the run's spelling of a key, with the old spelling as an alias.
func TestBind(t *testing.T) {
	cfg := Default()
	fs := flag.NewFlagSet("ping", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	require.NoError(t, Bind(fs, &cfg, []string{"brain.node", "node.net_ticktime", "tls.enabled"}, map[string]string{"brain-node": "brain.node", "tls": "tls.enabled"}))
	require.NoError(t, fs.Parse([]string{"--brain-node", "b@h", "--node.net_ticktime", "4s", "--tls"}))
	assert.Equal(t, "b@h", cfg.Brain.Node)
	assert.Equal(t, "4s", cfg.Node.NetTick.String())
	assert.True(t, cfg.TLS.Enabled)
	err := fs.Parse([]string{"--node.net_ticktime", "4"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "node.net_ticktime")
	assert.Error(t, Bind(fs, &cfg, []string{"no.such"}, nil))
}

// docs/configuration.md is generated from the same table as --help; `make docs` rewrites it.
func TestConfigurationDocInSync(t *testing.T) {
	var got bytes.Buffer
	require.NoError(t, WriteMarkdown(&got))
	const path = "../../docs/configuration.md"
	if os.Getenv("PHAROS_UPDATE_DOCS") != "" {
		require.NoError(t, os.WriteFile(path, got.Bytes(), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, string(want), got.String(), "docs/configuration.md is out of date: run make docs")
	for _, s := range Settings() {
		assert.True(t, strings.Contains(got.String(), "`"+s.Key+"`"), s.Key)
	}
}
