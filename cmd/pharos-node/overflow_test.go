package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pharos-node/pharos-node/internal/erltest"
)

// TestRunBufferOverflowRefuse: buffer.overflow refuse without a spill directory. While the
// Brain is away the daemon takes records until RAM holds buffer.max_records, then answers HTTP
// 429 with Retry-After (the client retries the refused indices) and counts the StatsD lines it
// cannot take as refused (sink_full); nothing is dropped, and what it accepted reaches the
// Brain once it is back.
func TestRunBufferOverflowRefuse(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) }) // registered first, runs last
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	httpAddr, statsdAddr := freeTCP(t), freeUDP(t)
	cfg := fmt.Sprintf(`node:
  name: pharos_refuse_%d@127.0.0.1
  epmd_port: %d
brain:
  node: %s
  name: %s
buffer:
  max_records: 1500
  overflow: refuse
delivery:
  base_backoff: 20ms
  max_backoff: 200ms
  max_pending: 1000
  flush_interval: 20ms
  drain_interval: 20ms
ingest:
  source: refuse
  http:
    listen: %s
  statsd:
    listen: %s
log:
  level: info
  format: json
shutdown_timeout: 2s
`, time.Now().UnixNano()%1_000_000, b.EpmdPort, b.Node, b.Name, httpAddr, statsdAddr)
	path := filepath.Join(t.TempDir(), "pharos.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, context.Background(), b.Cookie, path, httpAddr)
	b.Kill9()
	const src = "refused"
	accepted := 0
	var last int
	var retryAfter string
	for i := 0; i < 20 && last != http.StatusTooManyRequests; i++ {
		resp, err := http.Post(d.http+"/v1/metrics", "application/json", strings.NewReader(metricsJSON(src, accepted, accepted+100)))
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Accepted int `json:"accepted"`
		}
		_ = jsonDecode(resp, &r)
		last, retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
		accepted += r.Accepted
	}
	if last != http.StatusTooManyRequests || retryAfter != "1" || accepted == 0 || accepted > 1500 {
		t.Fatalf("last answer %d (Retry-After %q) after %d records accepted; want 429 once 1,500 are held", last, retryAfter, accepted)
	}
	conn, err := net.Dial("udp", statsdAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for range 5 {
		if _, err := conn.Write([]byte("refuse.count:1|c\nrefuse.count:2|c")); err != nil {
			t.Fatal(err)
		}
	}
	var refused float64
	deadline := time.Now().Add(5 * time.Second)
	for refused < 10 && time.Now().Before(deadline) {
		_, body := d.get("/metrics")
		refused = metricLine(body, `pharos_ingest_records_refused_total{reason="sink_full",source="statsd"}`)
		time.Sleep(20 * time.Millisecond)
	}
	_, body := d.get("/metrics")
	if refused != 10 || metricLine(body, "pharos_fsm_dropped_total") != 0 {
		t.Fatalf("StatsD lines refused %v (want 10), dropped %v", refused, metricLine(body, "pharos_fsm_dropped_total"))
	}
	b.Restart()
	st, ok := b.WaitStats(30*time.Second, func(s erltest.Stats) bool { return s.Sources[src].Received >= int64(accepted) })
	if !ok || !st.Sources[src].Exactly(int64(accepted)) {
		t.Fatalf("Brain got %+v, want exactly %d in order", st.Sources[src], accepted)
	}
	d.waitReady(10 * time.Second)
	if status, resp := d.post("/v1/metrics", metricsJSON(src, accepted, accepted+100)); status != http.StatusOK || resp.Accepted != 100 {
		t.Fatalf("after the outage: %d %+v", status, resp)
	}
}

// metricLine is the value of the exposition line that starts with series, or -1.
func metricLine(exposition, series string) float64 {
	for _, line := range strings.Split(exposition, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

func jsonDecode(resp *http.Response, v any) error {
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}
