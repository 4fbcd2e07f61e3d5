package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pharos-node/pharos-node/internal/config"
)

func runHealthArgs(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := runHealth(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// health exits 0 on a 200, 1 on another status or no answer, 2 on a bad configuration.
func TestHealthExitCodes(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		_, _ = w.Write([]byte(r.URL.Path + "\n"))
	}))
	defer srv.Close()

	code, out, errOut := runHealthArgs("--url", srv.URL+"/healthz")
	assert.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "200 OK /healthz")

	status = http.StatusServiceUnavailable
	code, out, _ = runHealthArgs("--url", srv.URL+"/readyz")
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "503")

	srv.Close()
	code, _, errOut = runHealthArgs("--url", srv.URL+"/healthz", "--timeout", "1s")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "connection refused")

	code, _, errOut = runHealthArgs("--config", filepath.Join(t.TempDir(), "missing.yaml"))
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, "missing.yaml")
}

// Without --url, health asks the address `run` listens on, read from the same configuration.
func TestHealthReadsTheAdminAddressFromTheConfig(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(r.URL.Path + "\n"))
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "pharos.yaml")
	cfg := "brain:\n  node: brain@127.0.0.1\ningest:\n  http:\n    listen: " + srv.Listener.Addr().String() + "\n"
	require.NoError(t, os.WriteFile(file, []byte(cfg), 0o600))
	code, out, errOut := runHealthArgs("--config", file, "--ready")
	assert.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "/readyz")
}

func TestAdminURL(t *testing.T) {
	for _, c := range []struct{ admin, http, want string }{
		{"", "0.0.0.0:9180", "http://127.0.0.1:9180/healthz"},
		{"", ":9180", "http://127.0.0.1:9180/healthz"},
		{"[::]:9181", "0.0.0.0:9180", "http://[::1]:9181/healthz"},
		{"10.0.0.3:9300", "", "http://10.0.0.3:9300/healthz"},
		{"", "pharos.example:80", "http://pharos.example:80/healthz"},
	} {
		var cfg config.Config
		cfg.Admin.Listen, cfg.Ingest.HTTP.Listen = c.admin, c.http
		got, err := adminURL(cfg, "/healthz")
		require.NoError(t, err, c)
		assert.Equal(t, c.want, got, c)
	}
	_, err := adminURL(config.Config{}, "/healthz")
	assert.ErrorContains(t, err, "no admin endpoint")
	var cfg config.Config
	cfg.Admin.Listen = "9180"
	_, err = adminURL(cfg, "/healthz")
	assert.ErrorContains(t, err, "missing port")
}
