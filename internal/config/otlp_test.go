package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The OTLP transport: brain.node is not needed, otlp.endpoint is; a mode other than payload and
// the Brain's queue limit are refused naming their key; every otlp.* value is checked.
func TestOTLPTransport(t *testing.T) {
	cfg, err := Load([]string{"--brain.transport", "otlp", "--otlp.endpoint", "http://127.0.0.1:4318",
		"--otlp.headers", "x-api-key=a,x-team=b"}, nil, files(nil))
	require.NoError(t, err)
	assert.Equal(t, []string{"x-api-key=a", "x-team=b"}, cfg.OTLP.Headers)
	assert.Equal(t, 1000, cfg.OTLP.MaxPointsPerRequest)

	for _, tc := range []struct {
		file string
		keys []string
		want string
	}{
		{"brain: {transport: otlp}\n", []string{"otlp.endpoint"}, "is required with brain.transport otlp"},
		{"brain: {transport: otlp, mode: acked}\notlp: {endpoint: 'http://c:4318'}\n", []string{"brain.mode"}, "does not apply to brain.transport otlp"},
		{"brain: {transport: otlp, queue_limit: 10}\notlp: {endpoint: 'http://c:4318'}\n", []string{"brain.queue_limit"}, "not with brain.transport otlp"},
		{"brain: {transport: grpc}\n", []string{"brain.node", "brain.transport"}, "must be erlang or otlp"},
		{"brain: {transport: otlp}\notlp: {endpoint: 'c:4318'}\n", []string{"otlp.endpoint"}, "not an http(s) URL"},
		{"brain: {transport: otlp}\notlp: {endpoint: 'http://u:p@c:4318'}\n", []string{"otlp.endpoint"}, "no query, fragment or user info"},
		{"brain: {transport: otlp}\notlp: {endpoint: 'http://c', compression: zstd}\n", []string{"otlp.compression"}, "must be gzip or none"},
		{"brain: {transport: otlp}\notlp: {endpoint: 'http://c', temporality: both}\n", []string{"otlp.temporality"}, "must be cumulative or delta"},
		{"brain: {transport: otlp}\notlp: {endpoint: 'http://c', max_points_per_request: 0}\n", []string{"otlp.max_points_per_request"}, "must be positive"},
		{"brain: {transport: otlp}\notlp: {endpoint: 'http://c', timeout: 0s}\n", []string{"otlp.timeout"}, "must be positive"},
		{"brain: {transport: otlp}\notlp: {endpoint: 'http://c', headers: [novalue]}\n", []string{"otlp.headers"}, "want key=value"},
		{"brain: {transport: otlp}\notlp: {endpoint: 'http://c', tls: {cert_file: c.pem}}\n", []string{"otlp.tls.key_file"}, "is required with otlp.tls.cert_file"},
	} {
		_, err := Load([]string{"--config", "c.yaml"}, nil, files(map[string]string{"c.yaml": tc.file}))
		errs := KeyErrors(err)
		var keys []string
		for _, e := range errs {
			keys = append(keys, e.Key)
		}
		require.ElementsMatch(t, tc.keys, keys, "%s: %v", tc.file, err)
		assert.Contains(t, err.Error(), tc.want, tc.file)
	}
	// The acked mode set by the file is blamed on brain.mode, with where it came from.
	_, err = Load([]string{"--config", "c.yaml"}, nil, files(map[string]string{"c.yaml": "brain:\n  transport: otlp\n  mode: acked\notlp: {endpoint: 'http://c'}\n"}))
	require.Len(t, KeyErrors(err), 1)
	assert.Equal(t, "file c.yaml line 3", KeyErrors(err)[0].Source)
}

func TestOTLPWarnings(t *testing.T) {
	cfg, err := Load([]string{"--brain.node", "b@h", "--otlp.endpoint", "http://c"}, nil, files(nil))
	require.NoError(t, err)
	var keys []string
	for _, w := range cfg.Warnings() {
		keys = append(keys, w.Key)
	}
	assert.Contains(t, keys, "brain.transport", "otlp.* set while the transport is erlang")
	cfg, err = Load([]string{"--brain.transport", "otlp", "--otlp.endpoint", "https://c", "--otlp.tls.insecure_skip_verify", "--tls.enabled"}, nil, files(nil))
	require.NoError(t, err)
	keys = nil
	for _, w := range cfg.Warnings() {
		keys = append(keys, w.Key)
	}
	assert.Contains(t, keys, "otlp.tls.insecure_skip_verify")
	assert.Contains(t, keys, "tls.enabled")
}
