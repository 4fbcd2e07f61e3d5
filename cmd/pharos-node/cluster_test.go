package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pharos-node/pharos-node/internal/erltest"
)

// TestRunCluster: the daemon with brain.targets (two Brain nodes sharing the mnesia store),
// routing shard, the acknowledged mode, brain.ready all. /readyz lists both Brains and is ready;
// /metrics has each member's pharos_cluster_member_up{brain} and each shard's pharos_fsm_*
// {shard}; with one Brain node killed /readyz says 503 (not all reachable) while the records go
// to the other; once it is back, ready again; every record processed once over the cluster.
func TestRunCluster(t *testing.T) {
	c := erltest.StartCluster(t, erltest.ClusterOptions{Nodes: 2})
	n1, n2 := c.Nodes()[0], c.Nodes()[1]
	httpAddr := freeTCP(t)
	cfg := fmt.Sprintf(`node:
  name: pharos_run_%d@127.0.0.1
  epmd_port: %d
brain:
  mode: acked
  targets: [%s, %s/pharos_brain]
  routing: shard
  ready: all
  health_interval: 200ms
  shard:
    count: 8
spill:
  dir: %s
delivery:
  base_backoff: 20ms
  max_backoff: 200ms
  ack_timeout: 5s
ingest:
  http:
    listen: %s
log:
  level: info
  format: json
shutdown_timeout: 5s
`, time.Now().UnixNano()%1_000_000, c.Epmd.Port, n1.Node, n2.Node, t.TempDir(), httpAddr)
	path := filepath.Join(t.TempDir(), "pharos.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, context.Background(), c.Cookie, path, httpAddr)
	_, body := d.get("/readyz")
	for _, b := range []*erltest.Brain{n1, n2} {
		if !strings.Contains(body, "brain "+b.Node+"/pharos_brain up") {
			t.Errorf("/readyz does not list %s up:\n%s", b.Node, body)
		}
	}
	_, metrics := d.get("/metrics")
	for _, want := range []string{`pharos_cluster_member_up{brain="` + n1.Node + `/pharos_brain"} 1`,
		`pharos_cluster_ready 1`, `pharos_fsm_state{shard="00",state="streaming"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(metrics, "pharos_cluster"))
		}
	}
	// The README lists the cluster's metrics (TestReadmeMetricsMatchExport checks the rest).
	exported := exportedFamilies(metrics)
	for name := range readmeMetrics(t) {
		if strings.HasPrefix(name, "pharos_cluster_") && !exported[name] {
			t.Errorf("README lists %s; a cluster's /metrics does not export it", name)
		}
	}
	for name := range exported {
		if strings.HasPrefix(name, "pharos_cluster_") && !readmeMetrics(t)[name] {
			t.Errorf("a cluster exports %s; the README does not list it", name)
		}
	}
	sources := map[string]int{}
	send := func(batch int) {
		for k := range 8 {
			src := fmt.Sprintf("src-%d", k)
			if code, r := d.post("/v1/metrics", metricsJSON(src, sources[src], sources[src]+batch)); code != http.StatusAccepted && code != http.StatusOK {
				t.Fatalf("POST: %d %+v", code, r)
			}
			sources[src] += batch
		}
	}
	send(500)
	n2.Kill9()
	waitStatus(t, d, http.StatusServiceUnavailable, 10*time.Second)
	send(500)
	n2.Restart()
	waitStatus(t, d, http.StatusOK, 20*time.Second)
	send(500)
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := n1.ClusterStats()
		done := true
		for src, n := range sources {
			done = done && st.Keys[src].Exactly(int64(n))
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every record processed once, in order: %+v", st.Keys)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitStatus waits until /readyz answers code.
func waitStatus(t *testing.T, d *daemon, code int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, body := d.get("/readyz")
		if got == code {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz: %d, want %d:\n%s", got, code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
