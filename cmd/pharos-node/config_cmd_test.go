package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// envOf is a getenv over a map.
func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// config check on the configuration `make run` uses: exit 0, the effective configuration on
// stdout, the cookie nowhere.
func TestConfigCheckExample(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := configCheck([]string{"--config", "../../examples/pharos.yaml"}, nil,
		envOf(map[string]string{"PHAROS_COOKIE": "sesame-cookie"}), &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	assert.Contains(t, stdout.String(), "node: brain@127.0.0.1 # from file ../../examples/pharos.yaml line ")
	assert.Contains(t, stdout.String(), "# cookie: <redacted>, from PHAROS_COOKIE")
	assert.NotContains(t, stdout.String()+stderr.String(), "sesame-cookie")
	assert.Contains(t, stderr.String(), "config check: OK (0 warning(s))")
}

// The .deb's /etc/pharos-node/pharos.yaml is valid as shipped (once the cookie is there).
func TestConfigCheckPackaged(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := configCheck([]string{"--config", "../../packaging/pharos.yaml"}, nil,
		envOf(map[string]string{"PHAROS_COOKIE": "c"}), &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	assert.Contains(t, stderr.String(), "config check: OK (0 warning(s))")
}

// Warnings for configurations that do nothing; they do not fail the check.
func TestConfigCheckWarnings(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := configCheck([]string{"--brain.node", "b@h", "--brain.mode", "acked"}, nil,
		envOf(map[string]string{"PHAROS_COOKIE": "c"}), &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	assert.Contains(t, stderr.String(), "warning: config: ingest: no ingest source is configured")
	assert.Contains(t, stderr.String(), "warning: config: spill.dir: acked mode without a spill directory")
	assert.Contains(t, stderr.String(), "config check: OK (2 warning(s))")
}

// config check on bad files: exit 1, each error naming its key, nothing on stdout.
func TestConfigCheckBadFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(text), mode))
		return p
	}
	openCookie := write("open.cookie", "c\n", 0o644)
	notDir := write("not-a-dir", "", 0o600)
	certOnly := write("cert.pem", "not a certificate", 0o600)
	const brain = "brain:\n  node: brain@127.0.0.1\n"
	cookie := map[string]string{"PHAROS_COOKIE": "c"}
	cases := []struct {
		name, file string
		env        map[string]string
		key        string
	}{
		{"node name without host", "brain:\n  node: brain\n", cookie, "brain.node"},
		{"duration without unit", brain + "delivery:\n  flush_interval: \"10\"\n", cookie, "delivery.flush_interval"},
		{"size without number", brain + "buffer:\n  max_bytes: lots\n", cookie, "buffer.max_bytes"},
		{"spill cap below the default segment", brain + "spill:\n  max_bytes: 1KiB\n", cookie, "spill.max_bytes"},
		{"unknown key", brain + "  nmae: x\n", cookie, "brain.nmae"},
		{"unknown section", brain + "ingset:\n  http: {}\n", cookie, "ingset"},
		{"bad mode", brain + "  mode: carrier-pigeon\n", cookie, "brain.mode"},
		{"listen without port", brain + "ingest:\n  http:\n    listen: localhost\n", cookie, "ingest.http.listen"},
		{"port out of range", brain + "ingest:\n  statsd:\n    listen: 127.0.0.1:70000\n", cookie, "ingest.statsd.listen"},
		{"scrape target not http", brain + "ingest:\n  scrape:\n    targets: [ftp://x/metrics]\n", cookie, "ingest.scrape.targets"},
		{"scrape as a list", brain + "ingest:\n  scrape: [a, b]\n", cookie, "ingest.scrape"},
		{"cookie file others can read", brain + "node:\n  cookie_file: " + openCookie + "\n", nil, "node.cookie_file"},
		{"cookie file missing", brain + "node:\n  cookie_file: /nonexistent/cookie\n", nil, "node.cookie_file"},
		{"TLS CA file missing", brain + "tls:\n  enabled: true\n  ca_file: /nonexistent/ca.pem\n", cookie, "tls.ca_file"},
		{"TLS certificate without key", brain + "tls:\n  enabled: true\n  cert_file: " + certOnly + "\n", cookie, "tls.key_file"},
		{"TLS certificate not PEM", brain + "tls:\n  enabled: true\n  cert_file: " + certOnly + "\n  key_file: " + certOnly + "\n", cookie, "tls.cert_file"},
		{"spill dir is a file", brain + "spill:\n  dir: " + notDir + "\n", cookie, "spill.dir"},
		{"spill dir under a file", brain + "spill:\n  dir: " + notDir + "/spill\n", cookie, "spill.dir"},
		{"negative queue limit", brain + "  queue_limit: -5\n", cookie, "brain.queue_limit"},
		{"bad node name", brain + "node:\n  name: \"my node@h\"\n", cookie, "node.name"},
		{"bad log level", brain + "log:\n  level: verbose\n", cookie, "log.level"},
		{"pending above the ring", brain + "delivery:\n  max_pending: 200000\n", cookie, "delivery.max_pending"},
		{"key given twice", brain + "  node: other@h\n", cookie, "brain.node"},
		{"StatsD packet above a datagram", brain + "ingest:\n  statsd:\n    max_packet_bytes: 100000\n", cookie, "ingest.statsd.max_packet_bytes"},
		{"bad ERL_EPMD_PORT", brain, map[string]string{"PHAROS_COOKIE": "c", "ERL_EPMD_PORT": "abc"}, "node.epmd_port"},
		{"not a mapping", "just text\n", cookie, "config"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := write("bad"+strings.Repeat("x", i)+".yaml", tc.file, 0o600)
			env := map[string]string{"HOME": dir}
			for k, v := range tc.env {
				env[k] = v
			}
			var stdout, stderr bytes.Buffer
			code := configCheck([]string{"--config", path}, nil, envOf(env), &stdout, &stderr)
			assert.Equal(t, 1, code, stderr.String())
			assert.Regexp(t, `(?m)^error: config: `+regexp.QuoteMeta(tc.key)+`( \(|: )`, stderr.String(), "want an error naming %s", tc.key)
			assert.Empty(t, stdout.String())
			t.Log(strings.TrimSpace(stderr.String()))
		})
	}
	require.GreaterOrEqual(t, len(cases), 12)
}
