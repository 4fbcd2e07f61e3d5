package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pharos-node/pharos-node/internal/erltest"
)

// A daemon under the default name (pharos@<host>, no node.name), a default-name ping beside it
// (pharos_ping_<pid>@<host>) and a ping that takes the daemon's name explicitly: the first ping
// answers, the second is refused as in use, and the daemon never reconnects.
func TestDefaultNamesDoNotCollide(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) }) // registered first, runs last
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := freeTCP(t)
	cfg := fmt.Sprintf(`node:
  epmd_port: %d
brain:
  node: %s
  name: %s
delivery:
  base_backoff: 20ms
  max_backoff: 200ms
ingest:
  source: names
  http:
    listen: %s
log:
  level: info
  format: json
`, b.EpmdPort, b.Node, b.Name, httpAddr)
	path := filepath.Join(t.TempDir(), "pharos.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, context.Background(), b.Cookie, path, httpAddr)
	daemonName := "pharos@" + host
	reconnects := func() string {
		_, metrics := d.get("/metrics")
		return regexp.MustCompile(`(?m)^pharos_fsm_reconnects_total \S+$`).FindString(metrics)
	}
	before := reconnects()
	if before == "" {
		t.Fatal("no pharos_fsm_reconnects_total in /metrics")
	}

	ping := func(extra ...string) (int, string) {
		var stdout, stderr bytes.Buffer
		args := append([]string{"--brain-node", b.Node, "--brain-name", b.Name, "--epmd-port", strconv.Itoa(b.EpmdPort)}, extra...)
		code := runPing(context.Background(), args, &stdout, &stderr)
		return code, stdout.String() + stderr.String()
	}
	code, out := ping()
	if code != 0 {
		t.Fatalf("default-name ping: exit %d: %s", code, out)
	}
	t.Log(out)
	code, out = ping("--name", daemonName)
	if code != 1 || !regexp.MustCompile(`name .*`+regexp.QuoteMeta(daemonName)+`.* in use`).MatchString(out) {
		t.Fatalf("a ping under the daemon's name: exit %d: %s", code, out)
	}
	t.Log(out)

	// The daemon is untouched: still connected, no reconnect, still delivering.
	if !bytes.Contains([]byte(b.Eval("nodes(hidden)")), []byte(daemonName)) {
		t.Fatalf("the daemon %s is not connected to the Brain", daemonName)
	}
	if status, resp := d.post("/v1/metrics", metricsJSON("names", 0, 100)); status != 200 || resp.Accepted != 100 {
		t.Fatalf("%d %+v", status, resp)
	}
	if st, ok := b.WaitStats(10*time.Second, func(s erltest.Stats) bool { return s.Sources["names"].Received >= 100 }); !ok || !st.Sources["names"].Exactly(100) {
		t.Fatalf("Brain stats %+v", st.Sources["names"])
	}
	if after := reconnects(); after != before {
		t.Fatalf("the daemon reconnected: %q, then %q", before, after)
	}
}
