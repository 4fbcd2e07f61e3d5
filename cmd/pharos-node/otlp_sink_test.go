package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pharos-node/pharos-node/internal/otlptest"
)

// otlpRunConfig is a daemon configuration with brain.transport otlp to endpoint: no Brain, no
// cookie.
func otlpRunConfig(t *testing.T, endpoint, httpAddr, otlpAddr string) string {
	t.Helper()
	cfg := fmt.Sprintf(`node:
  name: pharos_otlp_%d@127.0.0.1
brain:
  transport: otlp
otlp:
  endpoint: %s
  max_points_per_request: 100
  headers: [x-pharos-test=yes]
spill:
  dir: %s
delivery:
  base_backoff: 20ms
  max_backoff: 200ms
  flush_interval: 20ms
ingest:
  source: e2e
  http:
    listen: %s
  otlp:
    listen: %s
log:
  level: info
  format: json
shutdown_timeout: 2s
`, time.Now().UnixNano()%1_000_000, endpoint, t.TempDir(), httpAddr, otlpAddr)
	path := filepath.Join(t.TempDir(), "pharos.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The daemon with brain.transport otlp delivers to an OpenTelemetry Collector's OTLP receiver
// (the Collector's own otlpreceiver): records from the Pharos JSON endpoint and an alert, and
// the real OTel SDK's metrics through the daemon's own OTLP receiver (an OTLP pipeline stage),
// as the mapping of docs/otel.md says. No Brain, no cookie.
func TestRunOTLPTransport(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) }) // registered first, runs last
	c := otlptest.StartCollector(t, "")
	t.Setenv("HOME", t.TempDir()) // no ~/.erlang.cookie either
	httpAddr, otlpAddr := freeTCP(t), freeTCP(t)
	d := startDaemon(t, context.Background(), "", otlpRunConfig(t, c.Endpoint(), httpAddr, otlpAddr), httpAddr)

	if status, resp := d.post("/v1/metrics", `[{"name":"cpu.load","kind":"gauge","value":0.5,"tags":{"host":"a"},"timestamp_ms":1700000000001}]`); status != http.StatusOK || resp.Accepted != 1 {
		t.Fatalf("metric: %d %+v", status, resp)
	}
	if status, resp := d.post("/v1/alerts", `{"name":"disk.full","severity":"critical","message":"/var at 98%","tags":{"host":"a"},"timestamp_ms":1700000000002,"source":"e2e-alert"}`); status != http.StatusOK || resp.Accepted != 1 {
		t.Fatalf("alert: %d %+v", status, resp)
	}
	if err := otlptest.Send(context.Background(), "http://"+otlpAddr+"/v1/metrics", otlptest.Options{}); err != nil {
		t.Fatal(err)
	}
	want := otlptest.Expected()
	deadline := time.Now().Add(20 * time.Second)
	for (len(c.Points()) < 1+len(want) || len(c.Logs()) < 1) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	points, logs := c.Points(), c.Logs()
	if len(points) != 1+len(want) || len(logs) != 1 {
		t.Fatalf("the Collector got %d points and %d log records, want %d and 1: %+v", len(points), len(logs), 1+len(want), points)
	}
	if p := points[0]; p.Name != "cpu.load" || p.Kind != "Gauge" || p.Value != 0.5 || p.Source != "e2e" || p.Attrs["host"] != "a" ||
		p.Time.UnixMilli() != 1700000000001 {
		t.Errorf("first point %+v", p)
	}
	if l := logs[0]; l.EventName != "disk.full" || l.Body != "/var at 98%" || l.Severity != "critical" || l.Source != "e2e-alert" {
		t.Errorf("log record %+v", l)
	}
	kinds := map[string]string{"counter": "Sum", "gauge": "Gauge", "histogram": "Gauge"}
	for i, w := range want {
		g := points[1+i]
		tags := map[string]string{}
		for _, kv := range w.Tags {
			tags[kv[0]] = kv[1]
		}
		if g.Name != w.Name || g.Kind != kinds[w.Kind] || !otlptest.Near(g.Value, w.Value) || fmt.Sprint(g.Attrs) != fmt.Sprint(tags) ||
			g.Source != otlptest.Service {
			t.Errorf("point %d: the Collector got %+v, want %+v from %s", i, g, w, otlptest.Service)
		}
	}
	_, metrics := d.get("/metrics")
	for _, line := range []string{`pharos_otlpsink_records_sent_total{signal="metrics"} 11`, `pharos_otlpsink_records_sent_total{signal="logs"} 1`} {
		if !strings.Contains(metrics, line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}
}

// config check takes brain.transport otlp without a cookie, and refuses the acked mode with it,
// naming the key.
func TestConfigCheckOTLP(t *testing.T) {
	env := func(string) string { return "" }
	var out, errOut bytes.Buffer
	args := []string{"--brain.transport", "otlp", "--otlp.endpoint", "http://127.0.0.1:4318"}
	if code := configCheck(args, nil, env, &out, &errOut); code != 0 {
		t.Fatalf("config check = %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "transport: otlp") || !strings.Contains(out.String(), "not used with brain.transport otlp") {
		t.Errorf("effective configuration:\n%s", out.String())
	}
	out.Reset()
	errOut.Reset()
	if code := configCheck(append(args, "--brain.mode", "acked"), nil, env, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "config: brain.mode (flag --brain.mode): brain.mode acked does not apply to brain.transport otlp") {
		t.Errorf("acked with otlp: %d\n%s", code, errOut.String())
	}
	errOut.Reset()
	if code := configCheck(append(args, "--otlp.token_file", "/nonexistent/token"), nil, env, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "otlp.token_file") {
		t.Errorf("missing token file: %d\n%s", code, errOut.String())
	}
	errOut.Reset()
	if code := configCheck(append(args, "--otlp.tls.ca_file", "/nonexistent/ca.pem"), nil, env, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "otlp.tls.ca_file") {
		t.Errorf("missing CA file: %d\n%s", code, errOut.String())
	}
}
