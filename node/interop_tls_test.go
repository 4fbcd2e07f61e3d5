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

// makePKI creates, with openssl, a CA and two certificates it signs (the Brain's, valid for
// 127.0.0.1, and ours) in dir.
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
	run(append([]string{"req", "-x509"}, append(ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=pharos-test-ca")...)...)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "san.ext"), []byte("subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:127.0.0.1\n"), 0o600))
	for _, who := range []string{"brain", "pharos"} {
		run(append([]string{"req"}, append(ec, "-keyout", who+".key", "-out", who+".csr", "-subj", "/CN="+who)...)...)
		run("x509", "-req", "-in", who+".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
			"-out", who+".pem", "-days", "1", "-extfile", "san.ext")
	}
}

func TestInteropTLS(t *testing.T) {
	dir := t.TempDir()
	makePKI(t, dir)
	p := func(f string) string { return filepath.Join(dir, f) }
	optfile := p("ssl_dist.conf")
	opts := fmt.Sprintf(`[{server, [{certfile, %q}, {keyfile, %q}, {cacertfile, %q}, {verify, verify_peer}, {fail_if_no_peer_cert, true}]},
 {client, [{certfile, %q}, {keyfile, %q}, {cacertfile, %q}, {verify, verify_peer}]}].`,
		p("brain.pem"), p("brain.key"), p("ca.pem"), p("brain.pem"), p("brain.key"), p("ca.pem"))
	require.NoError(t, os.WriteFile(optfile, []byte(opts), 0o600))

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
		t.Log(err)
	})
}
