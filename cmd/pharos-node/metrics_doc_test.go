package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pharos-node/pharos-node/internal/erltest"
)

// exportedFamilies returns the metric family names in a Prometheus text exposition.
func exportedFamilies(exposition string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(exposition, "\n") {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			out[f[2]] = true
		}
	}
	return out
}

// readmeMetrics returns the metric names the README's Metrics section lists: every
// `pharos_...` in backquotes, label sets dropped.
func readmeMetrics(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "\n## Metrics\n")
	if start < 0 {
		t.Fatal("README.md has no ## Metrics section")
	}
	section := text[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	out := map[string]bool{}
	for _, m := range regexp.MustCompile("`(pharos_[a-z_]+)").FindAllStringSubmatch(section, -1) {
		out[m[1]] = true
	}
	return out
}

// TestReadmeMetricsMatchExport: every metric the README lists is exported by /metrics of a
// running daemon (acked mode, a spill directory, HTTP and StatsD ingest, refusals provoked), and
// every pharos_ metric it exports is in the README.
func TestReadmeMetricsMatchExport(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) }) // registered first, runs last
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	httpAddr, statsdAddr := freeTCP(t), freeUDP(t)
	tokens := filepath.Join(t.TempDir(), "tokens") // the OTLP listener with a token: pharos_http_*
	if err := os.WriteFile(tokens, []byte("doc-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := runConfig(t, b, httpAddr, t.TempDir(), "  statsd:\n    listen: "+statsdAddr+"\n"+
		"  otlp:\n    listen: "+freeTCP(t)+"\n    auth:\n      token_file: "+tokens+"\n")
	t.Setenv("PHAROS_BRAIN_MODE", "acked")
	d := startDaemon(t, context.Background(), b.Cookie, cfg, httpAddr)
	d.post("/v1/metrics", metricsJSON("doc", 0, 100))
	d.post("/v1/metrics", `[{"name":"bad","kind":"bogus","value":1}]`)
	if resp, err := http.Post(d.http+"/v1/metrics", "text/plain", strings.NewReader("x")); err == nil {
		resp.Body.Close()
	}
	if conn, err := net.Dial("udp", statsdAddr); err == nil {
		conn.Write([]byte("doc.count:1|c\ndoc.bad:x|c"))
		conn.Close()
	}
	if _, ok := b.WaitStats(15*time.Second, func(s erltest.Stats) bool { return s.Sources["doc"].Received >= 100 }); !ok {
		t.Fatal("records did not arrive")
	}
	// An ack for a SourceId not ours, from the Brain's node to the connection manager: ignored
	// and counted (pharos_fsm_acks_ignored_total{reason="foreign"}).
	nodeName := regexp.MustCompile(`name: (pharos_run_[0-9]+@127\.0\.0\.1)`).FindStringSubmatch(readFile(t, cfg))
	if nodeName == nil {
		t.Fatal("no node name in the configuration")
	}
	b.Eval(`{pharos_conn, '` + nodeName[1] + `'} ! {pharos_ack, <<"not-our-source">>, 1}, ok`)
	var exposition string
	for deadline := time.Now().Add(10 * time.Second); ; {
		_, exposition = d.get("/metrics")
		if strings.Contains(exposition, `pharos_fsm_acks_ignored_total{reason="foreign"} 1`) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	exported := exportedFamilies(exposition)
	documented := readmeMetrics(t)
	var missing, undocumented []string
	for name := range documented {
		// A cluster's metrics are checked against a cluster (TestRunCluster).
		if !exported[name] && !strings.HasPrefix(name, "pharos_cluster_") {
			missing = append(missing, name)
		}
	}
	for name := range exported {
		if strings.HasPrefix(name, "pharos_") && !documented[name] {
			undocumented = append(undocumented, name)
		}
	}
	sort.Strings(missing)
	sort.Strings(undocumented)
	if len(missing) > 0 || len(undocumented) > 0 {
		t.Errorf("README metrics not exported: %v\nexported metrics not in the README: %v", missing, undocumented)
	}
	if len(documented) < 20 {
		t.Errorf("the README lists %d metrics", len(documented))
	}
	if !strings.Contains(exposition, `pharos_fsm_state{state="streaming"} 1`) || !strings.Contains(exposition, `pharos_fsm_state{state="disconnected"} 0`) {
		t.Errorf("pharos_fsm_state is not one-hot by its state label: %s", grepLines(exposition, "pharos_fsm_state"))
	}
}

// The README is a user guide: at most 250 lines.
func TestReadmeLength(t *testing.T) {
	n := strings.Count(readFile(t, "../../README.md"), "\n")
	t.Logf("README.md: %d lines", n)
	if n > 250 {
		t.Errorf("README.md has %d lines; at most 250", n)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
