package node_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"ergo.services/ergo/gen"
	"github.com/stretchr/testify/require"

	"github.com/pharos-node/pharos-node/internal/erltest"
	"github.com/pharos-node/pharos-node/node"
)

// makePKI creates, with openssl, in dir: a CA (ca.pem) and the certificates it signs: the
// Brain's (brain.pem, valid for 127.0.0.1 and localhost), ours (pharos.pem), and the Brain's
// valid for the DNS name localhost only (brain_dns.pem); another CA (other_ca.pem) and a
// certificate of ours it signs (pharos_other.pem).
func makePKI(t *testing.T, dir string) {
	t.Helper()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("openssl", args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "openssl %v: %s", args, out)
	}
	ec := []string{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"}
	for _, ca := range []string{"ca", "other_ca"} {
		run(append([]string{"req", "-x509"}, append(ec, "-keyout", ca+".key", "-out", ca+".pem", "-days", "1", "-subj", "/CN=pharos-test-"+ca)...)...)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "san.ext"), []byte("subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:127.0.0.1\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "dns.ext"), []byte("subjectAltName=DNS:localhost\n"), 0o600))
	for _, c := range []struct{ who, ca, ext string }{
		{"brain", "ca", "san.ext"}, {"pharos", "ca", "san.ext"}, {"brain_dns", "ca", "dns.ext"}, {"pharos_other", "other_ca", "san.ext"},
	} {
		run(append([]string{"req"}, append(ec, "-keyout", c.who+".key", "-out", c.who+".csr", "-subj", "/CN="+c.who)...)...)
		run("x509", "-req", "-in", c.who+".csr", "-CA", c.ca+".pem", "-CAkey", c.ca+".key", "-CAcreateserial",
			"-out", c.who+".pem", "-days", "1", "-extfile", c.ext)
	}
}

// sslDistOptfile writes an -ssl_dist_optfile for a Brain with certificate who (verifying peers
// against ca.pem, requiring a client certificate) and returns its path.
func sslDistOptfile(t *testing.T, dir, who string) string {
	t.Helper()
	p := func(f string) string { return filepath.Join(dir, f) }
	path := p("ssl_dist_" + who + ".conf")
	opts := fmt.Sprintf(`[{server, [{certfile, %q}, {keyfile, %q}, {cacertfile, %q}, {verify, verify_peer}, {fail_if_no_peer_cert, true}]},
 {client, [{certfile, %q}, {keyfile, %q}, {cacertfile, %q}, {verify, verify_peer}]}].`,
		p(who+".pem"), p(who+".key"), p("ca.pem"), p(who+".pem"), p(who+".key"), p("ca.pem"))
	require.NoError(t, os.WriteFile(path, []byte(opts), 0o600))
	return path
}

func TestInteropTLS(t *testing.T) {
	dir := t.TempDir()
	makePKI(t, dir)
	p := func(f string) string { return filepath.Join(dir, f) }
	optfile := sslDistOptfile(t, dir, "brain")

	b := erltest.StartBrain(t, erltest.BrainOptions{ErlFlags: []string{"-proto_dist", "inet_tls", "-ssl_dist_optfile", optfile}})
	require.Equal(t, `{ok,[["inet_tls"]]}`, b.Eval("init:get_argument(proto_dist)"))

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	t.Run("verified both ways", func(t *testing.T) {
		cfg, err := node.TLSConfig(node.TLSFiles{CAFile: p("ca.pem"), CertFile: p("pharos.pem"), KeyFile: p("pharos.key")}, false)
		require.NoError(t, err)
		n := startGoNode(t, b, func(o *node.Options) { o.ClientTLS = cfg })
		c, err := n.Connect(ctx, gen.Atom(b.Node))
		require.NoError(t, err)
		require.Contains(t, b.Eval("nodes(hidden)"), string(n.Name()))
		require.NotContains(t, b.Eval("nodes()"), string(n.Name()))
		to := gen.ProcessID{Name: gen.Atom(b.Name), Node: gen.Atom(b.Node)}
		for i := 0; i < 1000; i++ {
			require.NoError(t, n.Send(to, metricTerm("go-tls", i)))
		}
		_, err = c.Probe(ctx, gen.Atom(b.Name))
		require.NoError(t, err)
		s, ok := b.WaitStats(10*time.Second, func(s erltest.Stats) bool { return s.Sources["go-tls"].Received == 1000 })
		require.True(t, ok, "%+v", s.Sources["go-tls"])
		require.True(t, s.Sources["go-tls"].Exactly(1000))
	})
	t.Run("unknown CA refused", func(t *testing.T) {
		cfg, err := node.TLSConfig(node.TLSFiles{CertFile: p("pharos.pem"), KeyFile: p("pharos.key")}, false)
		require.NoError(t, err)
		n := startGoNode(t, b, func(o *node.Options) { o.ClientTLS = cfg })
		_, err = n.Connect(ctx, gen.Atom(b.Node))
		var he *node.HandshakeError
		require.ErrorAs(t, err, &he)
		require.Equal(t, "tls", he.Phase)
		t.Log(err)
	})
	t.Run("the Brain dials a listening node", func(t *testing.T) {
		srv, err := node.TLSConfig(node.TLSFiles{CAFile: p("ca.pem"), CertFile: p("pharos.pem"), KeyFile: p("pharos.key")}, true)
		require.NoError(t, err)
		n := startGoNode(t, b, func(o *node.Options) {
			o.ServerTLS = srv
			o.Listen = &node.ListenOptions{Register: true}
		})
		out := b.Eval(fmt.Sprintf(`N = list_to_atom("%s"), {net_kernel:connect_node(N), net_adm:ping(N)}`, string(n.Name())))
		require.Equal(t, "{true,pong}", out)
		require.Contains(t, b.Eval("nodes(hidden)"), string(n.Name()))
	})
	t.Run("plain TCP refused", func(t *testing.T) {
		n := startGoNode(t, b, nil)
		start := time.Now()
		_, err := n.Connect(ctx, gen.Atom(b.Node))
		require.Error(t, err)
		require.Less(t, time.Since(start), 10*time.Second)
		// and named, within a second or so (OTP answers with a TLS alert)
		require.ErrorIs(t, err, node.ErrPeerRequiresTLS)
		require.Contains(t, err.Error(), "-proto_dist inet_tls")
		require.Less(t, time.Since(start), 2*time.Second)
		t.Logf("after %v: %v", time.Since(start), err)
	})
	t.Run("TLS against a plain Brain", func(t *testing.T) {
		plain := erltest.StartBrain(t, erltest.BrainOptions{})
		cfg, err := node.TLSConfig(node.TLSFiles{CAFile: p("ca.pem"), CertFile: p("pharos.pem"), KeyFile: p("pharos.key")}, false)
		require.NoError(t, err)
		n := startGoNode(t, plain, func(o *node.Options) { o.ClientTLS = cfg })
		start := time.Now()
		_, err = n.Connect(ctx, gen.Atom(plain.Node))
		took := time.Since(start)
		require.ErrorIs(t, err, node.ErrPeerNotTLS)
		require.Contains(t, err.Error(), "-proto_dist inet_tls")
		require.Less(t, took, 2*time.Second, "the Brain itself gives up only after 7 s")
		t.Logf("after %v: %v", took, err)
	})
	t.Run("no client certificate", func(t *testing.T) {
		cfg, err := node.TLSConfig(node.TLSFiles{CAFile: p("ca.pem")}, false)
		require.NoError(t, err)
		n := startGoNode(t, b, func(o *node.Options) { o.ClientTLS = cfg })
		_, err = n.Connect(ctx, gen.Atom(b.Node))
		require.ErrorIs(t, err, node.ErrClientCertRequired)
		require.Contains(t, err.Error(), "tls.cert_file")
		t.Log(err)
	})
	t.Run("a client certificate the Brain's CAs did not sign", func(t *testing.T) {
		cfg, err := node.TLSConfig(node.TLSFiles{CAFile: p("ca.pem"), CertFile: p("pharos_other.pem"), KeyFile: p("pharos_other.key")}, false)
		require.NoError(t, err)
		n := startGoNode(t, b, func(o *node.Options) { o.ClientTLS = cfg })
		_, err = n.Connect(ctx, gen.Atom(b.Node))
		require.Error(t, err)
		require.Contains(t, err.Error(), "was not sent")
		require.Contains(t, err.Error(), "pharos-test-ca") // the CA the Brain accepts
		require.Contains(t, err.Error(), "pharos-test-other_ca")
		t.Log(err)
	})
}

// The server name expected in the Brain's certificate is, by default, the host of its node name
// (brain@localhost: localhost), not the address it resolves to: a certificate valid for the DNS
// name localhost only is accepted.
func TestInteropTLSServerNameFromNodeName(t *testing.T) {
	dir := t.TempDir()
	makePKI(t, dir)
	p := func(f string) string { return filepath.Join(dir, f) }
	b := erltest.StartBrain(t, erltest.BrainOptions{Host: "localhost",
		ErlFlags: []string{"-proto_dist", "inet_tls", "-ssl_dist_optfile", sslDistOptfile(t, dir, "brain_dns")}})
	cfg, err := node.TLSConfig(node.TLSFiles{CAFile: p("ca.pem"), CertFile: p("pharos.pem"), KeyFile: p("pharos.key")}, false)
	require.NoError(t, err)
	n := startGoNode(t, b, func(o *node.Options) { o.ClientTLS = cfg })
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := n.Connect(ctx, gen.Atom(b.Node))
	require.NoError(t, err)
	_, err = c.Probe(ctx, gen.Atom(b.Name))
	require.NoError(t, err)
}

// TLS configuration errors name the field and the file at fault; a key that does not match its
// certificate names both files.
func TestTLSConfigErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	makePKI(t, dir)
	p := func(f string) string { return filepath.Join(dir, f) }
	require.NoError(t, os.WriteFile(p("junk.pem"), []byte("not PEM"), 0o600))
	for _, tc := range []struct {
		files node.TLSFiles
		field string
		names []string
	}{
		{node.TLSFiles{CAFile: p("missing.pem")}, "CAFile", []string{p("missing.pem")}},
		{node.TLSFiles{CAFile: p("junk.pem")}, "CAFile", []string{p("junk.pem")}},
		{node.TLSFiles{CertFile: p("missing.pem"), KeyFile: p("pharos.key")}, "CertFile", []string{p("missing.pem")}},
		{node.TLSFiles{CertFile: p("pharos.pem"), KeyFile: p("missing.key")}, "KeyFile", []string{p("missing.key")}},
		{node.TLSFiles{CertFile: p("junk.pem"), KeyFile: p("pharos.key")}, "CertFile", []string{p("junk.pem")}},
		{node.TLSFiles{CertFile: p("pharos.pem"), KeyFile: p("junk.pem")}, "KeyFile", []string{p("junk.pem")}},
		{node.TLSFiles{CertFile: p("pharos.pem"), KeyFile: p("brain.key")}, "KeyFile", []string{p("brain.key"), p("pharos.pem")}},
	} {
		_, err := node.TLSConfig(tc.files, false)
		var fe *node.TLSFileError
		require.ErrorAs(t, err, &fe, "%+v", tc.files)
		require.Equal(t, tc.field, fe.Field, "%v", err)
		for _, name := range tc.names {
			require.Contains(t, err.Error(), name)
		}
		t.Log(err)
	}
}
