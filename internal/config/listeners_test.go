package config

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The OTLP receiver's keys and every listener's TLS and token keys, from a file, a variable and
// a flag; impossible combinations are refused naming the key.
func TestOTLPAndListenerSecurityKeys(t *testing.T) {
	file := `
brain:
  node: brain@127.0.0.1
ingest:
  otlp:
    listen: 127.0.0.1:4318
    resource_tags: [host.name]
    tls:
      cert_file: /etc/pharos/cert.pem
      key_file: /etc/pharos/key.pem
      client_ca_file: /etc/pharos/ca.pem
    auth:
      token_file: /etc/pharos/tokens
admin:
  listen: 127.0.0.1:9181
`
	cfg, err := Load([]string{"--config", "p.yaml", "--ingest.http.auth.token_file", "/etc/pharos/http-tokens"},
		[]string{"PHAROS_ADMIN_TLS_CERT_FILE=/a.pem", "PHAROS_ADMIN_TLS_KEY_FILE=/a-key.pem"}, files(map[string]string{"p.yaml": file}))
	require.NoError(t, err)
	o := cfg.Ingest.OTLP
	assert.Equal(t, "127.0.0.1:4318", o.Listen)
	assert.Equal(t, []string{"host.name"}, o.ResourceTags)
	assert.Equal(t, ListenerTLS{CertFile: "/etc/pharos/cert.pem", KeyFile: "/etc/pharos/key.pem", ClientCAFile: "/etc/pharos/ca.pem"}, o.TLS)
	assert.Equal(t, "/etc/pharos/tokens", o.Auth.TokenFile)
	assert.Equal(t, ByteSize(16<<20), o.MaxBodyBytes)
	assert.Equal(t, 100_000, o.MaxRecords)
	assert.Equal(t, "/etc/pharos/http-tokens", cfg.Ingest.HTTP.Auth.TokenFile)
	assert.Equal(t, "/a.pem", cfg.Admin.TLS.CertFile)

	for _, tc := range []struct {
		args []string
		key  string
	}{
		{[]string{"--admin.tls.cert_file", "/c.pem"}, "admin.tls.key_file"},
		{[]string{"--ingest.http.tls.client_ca_file", "/ca.pem"}, "ingest.http.tls.client_ca_file"},
		{[]string{"--ingest.otlp.max_records", "0"}, "ingest.otlp.max_records"},
	} {
		_, err := Load(append(tc.args, "--brain.node", "b@h"), nil, files(nil))
		var ke *KeyError
		require.True(t, errors.As(err, &ke), "%v", err)
		assert.Equal(t, tc.key, ke.Key)
	}
}
