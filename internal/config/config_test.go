package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func files(m map[string]string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		if v, ok := m[name]; ok {
			return []byte(v), nil
		}
		return nil, fs.ErrNotExist
	}
}

const sample = `
brain:
  node: brain@127.0.0.1
  name: my_brain
  mode: acked
spill:
  dir: /var/lib/pharos
  max_bytes: 2GiB
delivery:
  flush_interval: 250ms
ingest:
  scrape:
    targets: [http://127.0.0.1:9100/metrics]
`

func TestPrecedenceFlagsOverEnvOverFileOverDefaults(t *testing.T) {
	read := files(map[string]string{"pharos.yaml": sample})
	cfg, err := Load([]string{"--config", "pharos.yaml"}, nil, read)
	require.NoError(t, err)
	assert.Equal(t, "my_brain", cfg.Brain.Name)
	assert.Equal(t, ByteSize(2<<30), cfg.Spill.MaxBytes)
	assert.Equal(t, 250*time.Millisecond, cfg.Delivery.FlushInterval.D())
	assert.Equal(t, []string{"http://127.0.0.1:9100/metrics"}, cfg.Ingest.Scrape.Targets)
	assert.Equal(t, 100_000, cfg.Buffer.MaxRecords, "default kept")

	env := []string{"PHAROS_BRAIN_NAME=env_brain", "PHAROS_DELIVERY_FLUSH_INTERVAL=1s", "PHAROS_COOKIE=secret", "HOME=/x"}
	cfg, err = Load([]string{"--config", "pharos.yaml", "--brain.name", "flag_brain"}, env, read)
	require.NoError(t, err)
	assert.Equal(t, "flag_brain", cfg.Brain.Name, "flag wins over env and file")
	assert.Equal(t, time.Second, cfg.Delivery.FlushInterval.D(), "env wins over file")
	assert.Equal(t, "acked", cfg.Brain.Mode, "file wins over default")
}

func TestRefusesUnknownKeysAndImpossibleValuesNamingTheKey(t *testing.T) {
	cases := map[string]struct {
		args    []string
		env     []string
		file    string
		wantKey string
	}{
		"unknown file key":   {file: "brain:\n  node: a@b\n  nmae: x\n", wantKey: "brain.nmae"},
		"unknown env":        {env: []string{"PHAROS_BRAIN_NOD=a@b"}, wantKey: "PHAROS_BRAIN_NOD"},
		"unknown flag":       {args: []string{"--brain.nod", "x"}, wantKey: "flags"},
		"bad mode":           {args: []string{"--brain.mode", "carrier-pigeon"}, wantKey: "brain.mode"},
		"negative pending":   {args: []string{"--delivery.max_pending", "-1"}, wantKey: "delivery.max_pending"},
		"zero flush":         {file: "brain: {node: a@b}\ndelivery: {flush_interval: 0s}\n", wantKey: "delivery.flush_interval"},
		"bad duration":       {env: []string{"PHAROS_DELIVERY_BASE_BACKOFF=soon"}, wantKey: "delivery.base_backoff"},
		"bad size":           {file: "brain: {node: a@b}\nbuffer: {max_bytes: lots}\n", wantKey: "buffer.max_bytes"},
		"backoff inverted":   {args: []string{"--delivery.base_backoff", "2m"}, wantKey: "delivery.base_backoff"},
		"missing brain":      {args: []string{"--brain.node", ""}, wantKey: "brain.node"},
		"brain without host": {args: []string{"--brain.node", "brain"}, wantKey: "brain.node"},
		"bad sync":           {args: []string{"--spill.sync", "sometimes"}, wantKey: "spill.sync"},
		"negative queue":     {args: []string{"--brain.queue_limit", "-5"}, wantKey: "brain.queue_limit"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			args := tc.args
			read := files(map[string]string{"c.yaml": tc.file})
			if tc.file != "" {
				args = append([]string{"--config", "c.yaml"}, args...)
			} else {
				args = append([]string{"--brain.node", "b@h"}, args...)
			}
			_, err := Load(args, tc.env, read)
			require.Error(t, err)
			assert.True(t, errors.Is(err, ErrInvalid))
			var ke *KeyError
			require.True(t, errors.As(err, &ke), "%v", err)
			assert.Equal(t, tc.wantKey, ke.Key, "%v", err)
		})
	}
}

func TestEveryKeyHasFlagEnvAndHelp(t *testing.T) {
	cfg := Default()
	for _, s := range settings(&cfg) {
		assert.NotEmpty(t, s.Help, s.Key)
		assert.True(t, strings.HasPrefix(s.Env, "PHAROS_"), s.Key)
	}
	var b strings.Builder
	Usage(&b)
	assert.Contains(t, b.String(), "--brain.node NAME@HOST  (PHAROS_BRAIN_NODE)")
}

func TestByteSizeAndDuration(t *testing.T) {
	for text, want := range map[string]ByteSize{"65536": 65536, "512KiB": 512 << 10, "64MiB": 64 << 20, "1GiB": 1 << 30, "10MB": 10_000_000, "7B": 7} {
		var b ByteSize
		require.NoError(t, b.parse(text), text)
		assert.Equal(t, want, b, text)
	}
	for _, bad := range []string{"", "-1", "1XB", "99999999999999999999GiB"} {
		var b ByteSize
		assert.Error(t, b.parse(bad), bad)
	}
	assert.Equal(t, "64MiB", ByteSize(64<<20).String())
}

func TestCookie(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".erlang.cookie")
	require.NoError(t, os.WriteFile(path, []byte("sesame\n"), 0o400))
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	c, err := CookieFromEnv(env(map[string]string{"PHAROS_COOKIE": "fromenv"}), "", os.Stat, os.ReadFile)
	require.NoError(t, err)
	assert.Equal(t, "fromenv", c)

	c, err = CookieFromEnv(env(map[string]string{"HOME": dir}), "", os.Stat, os.ReadFile)
	require.NoError(t, err)
	assert.Equal(t, "sesame", c)

	require.NoError(t, os.Chmod(path, 0o644))
	_, err = CookieFromEnv(env(map[string]string{"HOME": dir}), "", os.Stat, os.ReadFile)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "accessible by others")
	assert.NotContains(t, err.Error(), "sesame", "the cookie never appears in errors")
}
