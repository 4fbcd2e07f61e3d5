package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/pharos-node/pharos-node/ingest"
	"github.com/pharos-node/pharos-node/internal/config"
	"github.com/pharos-node/pharos-node/internal/erltest"
	"github.com/pharos-node/pharos-node/spill"
)

// leakOptions: Ergo's SIGTERM watcher outlives node.Stop (see fsm's TestMain); the process
// collector and net/http keep nothing running.
var leakOptions = []goleak.Option{
	goleak.IgnoreAnyFunction("ergo.services/ergo/node.(*node).SetCTRLC.func1"),
	goleak.IgnoreCurrent(),
}

// lockedBuffer collects the daemon's log.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func freeTCP(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func freeUDP(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// daemon is one in-process `pharos-node run`.
type daemon struct {
	t      *testing.T
	http   string
	log    *lockedBuffer
	cancel context.CancelFunc
	done   chan int
}

// runConfig is a configuration for the Brain b, with extra YAML lines in the ingest section.
func runConfig(t *testing.T, b *erltest.Brain, httpAddr, spillDir, ingestExtra string) string {
	t.Helper()
	cfg := fmt.Sprintf(`node:
  name: pharos_run_%d@127.0.0.1
  epmd_port: %d
brain:
  node: %s
  name: %s
buffer:
  max_records: 20000
spill:
  dir: %s
delivery:
  base_backoff: 20ms
  max_backoff: 200ms
  max_pending: 1000
  flush_interval: 20ms
  drain_interval: 20ms
ingest:
  source: e2e
  http:
    listen: %s
%slog:
  level: info
  format: json
shutdown_timeout: 2s
`, time.Now().UnixNano()%1_000_000, b.EpmdPort, b.Node, b.Name, spillDir, httpAddr, ingestExtra)
	path := filepath.Join(t.TempDir(), "pharos.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startDaemon runs runRun with the configuration file in a goroutine, under ctx, and waits
// until /readyz says the manager streams.
func startDaemon(t *testing.T, ctx context.Context, cookie, configPath, httpAddr string) *daemon {
	t.Helper()
	t.Setenv("PHAROS_COOKIE", cookie)
	ctx, cancel := context.WithCancel(ctx)
	d := &daemon{t: t, http: "http://" + httpAddr, log: &lockedBuffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() { d.done <- runRun(ctx, []string{"--config", configPath}, io.Discard, d.log) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-d.done:
		case <-time.After(20 * time.Second):
			t.Errorf("daemon did not stop")
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.log.String())
		}
	})
	d.waitReady(20 * time.Second)
	return d
}

func (d *daemon) waitReady(timeout time.Duration) {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(d.http + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			if time.Now().After(deadline) {
				d.t.Fatalf("/readyz: %d %s", resp.StatusCode, body)
			}
		} else if time.Now().After(deadline) {
			d.t.Fatalf("/readyz: %v\nlog:\n%s", err, d.log.String())
		}
		select {
		case code := <-d.done:
			d.done <- code // for the cleanup
			d.t.Fatalf("daemon exited with %d", code)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// post sends body to path and decodes the ingest Response.
func (d *daemon) post(path, body string) (int, ingest.Response) {
	d.t.Helper()
	resp, err := http.Post(d.http+path, "application/json", strings.NewReader(body))
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	var r ingest.Response
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		d.t.Fatalf("POST %s: %d, body not a Response: %v", path, resp.StatusCode, err)
	}
	return resp.StatusCode, r
}

func (d *daemon) get(path string) (int, string) {
	d.t.Helper()
	resp, err := http.Get(d.http + path)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// metricsJSON is records first..last-1 of source as a JSON array, seq tags included.
func metricsJSON(source string, first, last int) string {
	parts := make([]string, 0, last-first)
	for i := first; i < last; i++ {
		parts = append(parts, fmt.Sprintf(`{"name":"e2e.n","kind":"counter","value":%d,"tags":{"seq":"%d"},"timestamp_ms":1700000000000,"source":%q}`, i, i, source))
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// Configuration errors exit with 2 and name the key; the cookie never shows.
func TestRunConfigErrors(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("PHAROS_COOKIE", "")
	cases := []struct {
		args []string
		key  string
	}{
		{[]string{"--brain.node", "brain@h", "--brain.mode", "bogus"}, "brain.mode"},
		{[]string{"--brain.mode", "payload"}, "brain.node"},
		{[]string{"--brain.node", "brain@h", "--buffer.max_records", "100", "--delivery.max_pending", "100"}, "buffer.max_records"},
		{[]string{"--brain.node", "brain@h"}, "node.cookie_file"}, // no PHAROS_COOKIE, no ~/.erlang.cookie
	}
	for _, c := range cases {
		var stderr bytes.Buffer
		code := runRun(context.Background(), c.args, io.Discard, &stderr)
		if code != exitConfig || !strings.Contains(stderr.String(), c.key) {
			t.Errorf("run %v: exit %d, stderr %q; want 2 naming %s", c.args, code, stderr.String(), c.key)
		}
	}
	t.Setenv("PHAROS_COOKIE", "secretcookie")
	var stderr bytes.Buffer
	if code := runRun(context.Background(), []string{"--brain.node", "brain@h", "--spill.sync", "sometimes"}, io.Discard, &stderr); code != exitConfig || strings.Contains(stderr.String(), "secretcookie") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
}

// (d) The daemon end to end: HTTP (good and bad records in one request), StatsD and a scraped
// exporter (an httptest server serving ingest/testdata/node_exporter.prom) reach the Brain as
// docs/wire.md says; /metrics, /healthz and /readyz answer; cancelling ctx (what main does on
// SIGTERM) exits 0.
func TestRunEndToEnd(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) }) // registered first, runs last
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	exposition, err := os.ReadFile("../../ingest/testdata/node_exporter.prom")
	if err != nil {
		t.Fatal(err)
	}
	exporter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		w.Write(exposition)
	}))
	defer exporter.Close()
	// How many samples one scrape yields, counted by the scraper itself.
	var samples int
	count, err := ingest.NewScraper(ingest.ScrapeOptions{Common: ingest.Common{Sink: ingest.SinkFunc(func(ingest.Record) error { samples++; return nil })}, Targets: []string{exporter.URL}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := count.Scrape(context.Background(), exporter.URL); err != nil || samples == 0 {
		t.Fatalf("scrape: %d samples, %v", samples, err)
	}

	httpAddr, statsdAddr := freeTCP(t), freeUDP(t)
	cfg := runConfig(t, b, httpAddr, t.TempDir(), fmt.Sprintf(`  statsd:
    listen: %s
  scrape:
    targets: [%s]
    interval: 1h
`, statsdAddr, exporter.URL))
	d := startDaemon(t, context.Background(), b.Cookie, cfg, httpAddr)
	// The scrape runs at start; let it arrive first, so that the Brain's list of its last 100
	// records ends with what is sent below.
	if st, ok := b.WaitStats(15*time.Second, func(s erltest.Stats) bool { return s.NoSeq["e2e"] >= int64(samples) }); !ok {
		t.Fatalf("the scrape did not arrive: %+v", st)
	}

	// HTTP: good and bad records in one request.
	body := `[` +
		`{"name":"e2e.good","kind":"gauge","value":0.5,"tags":{"seq":"0","host":"a"},"timestamp_ms":1700000000000,"source":"e2e-http"},` +
		`{"name":"e2e.bad","kind":"bogus","value":1,"source":"e2e-http"},` +
		`{"name":"e2e.good","kind":"counter","value":2,"tags":[["seq","1"],["dc","x"]],"timestamp_ms":1700000000001,"source":"e2e-http"},` +
		`{"name":"e2e.dup","kind":"gauge","value":1,"tags":[["k","1"],["k","2"]],"source":"e2e-http"},` +
		`{"name":"e2e.big","kind":"gauge","value":1e999,"source":"e2e-http"}]`
	status, resp := d.post("/v1/metrics", body)
	refusedAt := map[int]bool{}
	for _, r := range resp.Refused {
		refusedAt[r.Index] = true
		if r.Error == "" {
			t.Errorf("refusal %d without an error", r.Index)
		}
	}
	if status != http.StatusBadRequest || resp.Accepted != 2 || len(resp.Refused) != 3 || !refusedAt[1] || !refusedAt[3] || !refusedAt[4] {
		t.Fatalf("mixed request: %d %+v", status, resp)
	}
	if status, resp := d.post("/v1/alerts", `{"name":"disk.full","severity":"critical","message":"/var at 98%","tags":{"host":"a"},"timestamp_ms":1700000000002,"source":"e2e-alert"}`); status != http.StatusOK || resp.Accepted != 1 {
		t.Fatalf("alert: %d %+v", status, resp)
	}
	// StatsD: two lines in one datagram, one bad line in another.
	conn, err := net.Dial("udp", statsdAddr)
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("e2e.statsd.count:3|c|#seq:0\ne2e.statsd.ms:12.5|ms|#seq:1"))
	conn.Write([]byte("e2e.statsd.bad:1|s"))
	conn.Close()

	want := int64(2 + 1 + 2 + samples)
	st, ok := b.WaitStats(15*time.Second, func(s erltest.Stats) bool { return s.Received >= want })
	if !ok || st.Received != want {
		t.Fatalf("Brain received %d records, want %d: %+v", st.Received, want, st)
	}
	if !st.Sources["e2e-http"].Exactly(2) || !st.Sources["e2e"].Exactly(2) || st.NoSeq["e2e"] != int64(samples) || st.Alerts != 1 || st.Invalid != 0 || st.Modes["payload"] != want {
		t.Fatalf("Brain stats %+v", st)
	}
	// The records themselves, as the Brain decoded them.
	last := b.Eval(`pharos_brain_store:last(100)`)
	for _, want := range []string{
		`{metric,<<"e2e.good">>,gauge,0.5,[{<<"seq">>,<<"0">>},{<<"host">>,<<"a">>}],1700000000000,<<"e2e-http">>}`,
		`{metric,<<"e2e.good">>,counter,2.0,[{<<"seq">>,<<"1">>},{<<"dc">>,<<"x">>}],1700000000001,<<"e2e-http">>}`,
		`{alert,<<"disk.full">>,critical,<<"/var at 98%">>,[{<<"host">>,<<"a">>}],1700000000002,<<"e2e-alert">>}`,
		`{metric,<<"e2e.statsd.count">>,counter,3.0,[{<<"seq">>,<<"0">>}],`,
		`{metric,<<"e2e.statsd.ms">>,histogram,12.5,[{<<"seq">>,<<"1">>}],`,
	} {
		if !strings.Contains(last, want) {
			t.Errorf("the Brain did not get %s", want)
		}
	}
	if t.Failed() {
		t.Logf("Brain's last records: %s", last)
	}

	// Admin endpoints.
	if code, body := d.get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d %s", code, body)
	}
	if code, body := d.get("/readyz"); code != http.StatusOK || !strings.Contains(body, "streaming") {
		t.Errorf("/readyz: %d %s", code, body)
	}
	code, metrics := d.get("/metrics")
	for _, name := range []string{`pharos_fsm_state{state="streaming"} 1`, `pharos_fsm_delivered_total `, `pharos_ingest_records_accepted_total{source="http"} 3`,
		`pharos_ingest_records_accepted_total{source="statsd"} 2`, `pharos_spill_records `, `go_goroutines `} {
		if code != http.StatusOK || !strings.Contains(metrics, name) {
			t.Errorf("/metrics lacks %q", name)
		}
	}
	if strings.Contains(d.log.String(), b.Cookie) {
		t.Errorf("the cookie is in the log")
	}

	d.cancel()
	select {
	case code := <-d.done:
		d.done <- code // for the cleanup
		if code != exitOK {
			t.Fatalf("exit %d:\n%s", code, d.log.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("daemon did not stop")
	}
}

// (e) SIGTERM during a Brain outage: the daemon exits within shutdown_timeout (plus the
// servers' grace), spilling what it accepted; started again on the same spill directory, it
// delivers all of it, in order, and again what the killed Brain had not confirmed.
func TestRunSIGTERMDuringOutage(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) }) // registered first, runs last
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	spillDir := t.TempDir()
	httpAddr := freeTCP(t)
	cfg := runConfig(t, b, httpAddr, spillDir, "")

	sigCtx, stopSignals := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stopSignals()
	d := startDaemon(t, sigCtx, b.Cookie, cfg, httpAddr)
	const src = "outage"
	for i := 0; i < 500; i += 100 {
		if status, resp := d.post("/v1/metrics", metricsJSON(src, i, i+100)); status != http.StatusOK || resp.Accepted != 100 {
			t.Fatalf("before the outage: %d %+v", status, resp)
		}
	}
	if st, ok := b.WaitStats(10*time.Second, func(s erltest.Stats) bool { return s.Sources[src].Received >= 500 }); !ok || !st.Sources[src].Exactly(500) {
		t.Fatalf("before the outage: %+v", st.Sources[src])
	}
	b.Kill9()
	for i := 500; i < 3_000; i += 500 {
		if status, resp := d.post("/v1/metrics", metricsJSON(src, i, i+500)); status != http.StatusOK || resp.Accepted != 500 {
			t.Fatalf("during the outage: %d %+v", status, resp)
		}
	}
	stoppedAt := time.Now()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-d.done:
		d.done <- code // for the cleanup
		took := time.Since(stoppedAt)
		t.Logf("daemon exited %d after %v during the outage", code, took)
		if code != exitOK {
			t.Fatalf("exit %d:\n%s", code, d.log.String())
		}
		if took > 2*time.Second+stopGrace+time.Second {
			t.Fatalf("took %v to stop, shutdown_timeout is 2s", took)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("daemon did not stop after SIGTERM:\n%s", d.log.String())
	}
	if !strings.Contains(d.log.String(), `"spilled":2500`) {
		t.Logf("log:\n%s", d.log.String())
	}

	// The Brain comes back; a new daemon on the same spill directory delivers what the first
	// one accepted, in order, once.
	b.Restart()
	startDaemon(t, context.Background(), b.Cookie, cfg, httpAddr)
	// Records are delivered in order, so the last one's arrival means all have come. The
	// first 500 reached the killed Brain; those it had not confirmed when it died come again
	// (resend_unconfirmed), ahead of the rest.
	st, ok := b.WaitStats(20*time.Second, func(s erltest.Stats) bool { return s.Sources[src].MaxSeq >= 2_999 })
	got := st.Sources[src]
	if !ok || got.MaxSeq != 2_999 || got.Received != got.Unique || got.Received+got.Missing != 3_000 || got.Missing > 500 || got.Duplicates != 0 || got.Reorders != 0 {
		t.Fatalf("after the restart the Brain has %+v; want 500..2999 (and the unconfirmed of 0..499) once each, in order", got)
	}
	t.Logf("after the restart: %d records, %d of the first 500 resent as unconfirmed", got.Received, 500-got.Missing)
}

// brain.mode acked: the daemon numbers records in its spill directory and the Brain
// acknowledges them all.
func TestRunAckedMode(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) }) // registered first, runs last
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	httpAddr := freeTCP(t)
	cfg := runConfig(t, b, httpAddr, t.TempDir(), "")
	t.Setenv("PHAROS_BRAIN_MODE", "acked") // a variable wins over the file
	d := startDaemon(t, context.Background(), b.Cookie, cfg, httpAddr)
	const src = "acked"
	for i := 0; i < 1_000; i += 250 {
		if status, resp := d.post("/v1/metrics", metricsJSON(src, i, i+250)); status != http.StatusOK || resp.Accepted != 250 {
			t.Fatalf("%d %+v", status, resp)
		}
	}
	st, ok := b.WaitStats(15*time.Second, func(s erltest.Stats) bool {
		for _, next := range s.Acked {
			if next == 1_000 {
				return true
			}
		}
		return false
	})
	if !ok || !st.Sources[src].Exactly(1_000) || st.Modes["acked"] != 1_000 {
		t.Fatalf("Brain stats %+v", st)
	}
	if _, metrics := d.get("/metrics"); !strings.Contains(metrics, "pharos_fsm_acked_records_total 1000") {
		t.Errorf("/metrics does not count 1000 acknowledged records")
	}
}

// A second SIGTERM cuts the drain short: the daemon spills what it holds at once instead of
// waiting out shutdown_timeout, and loses nothing.
func TestRunSecondSignalSpillsAtOnce(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) }) // registered first, runs last
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	spillDir, httpAddr := t.TempDir(), freeTCP(t)
	cfg := runConfig(t, b, httpAddr, spillDir, "")
	t.Setenv("PHAROS_SHUTDOWN_TIMEOUT", "30s")
	d := startDaemon(t, context.Background(), b.Cookie, cfg, httpAddr)
	b.Kill9()
	if status, resp := d.post("/v1/metrics", metricsJSON("second", 0, 1_000)); status != http.StatusOK || resp.Accepted != 1_000 {
		t.Fatalf("%d %+v", status, resp)
	}
	start := time.Now()
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond)
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	select {
	case code := <-d.done:
		d.done <- code // for the cleanup
		if took := time.Since(start); code != exitOK || took > 5*time.Second {
			t.Fatalf("exit %d after %v", code, took)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the second signal did not stop the daemon")
	}
	l, err := spill.Open(spillDir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.Len() != 1_000 {
		t.Fatalf("%d records spilled, want 1000", l.Len())
	}
}

// The start line carries the TLS settings (the server name defaulting to the Brain's host), and
// tls.insecure_skip_verify is warned about, naming its key.
func TestStartLineTLS(t *testing.T) {
	cfg := config.Default()
	cfg.Brain.Node = "brain@db.example"
	cfg.TLS.Enabled, cfg.TLS.CAFile, cfg.TLS.InsecureSkipVerify = true, "/etc/ca.pem", true
	var buf bytes.Buffer
	log := zerolog.New(&buf)
	withTLS(log.Info(), cfg, log).Msg("pharos-node running")
	out := buf.String()
	for _, want := range []string{`"key":"tls.insecure_skip_verify"`, `"level":"warn"`, `"server_name":"db.example (the Brain's host)"`,
		`"ca_file":"/etc/ca.pem"`, `a Brain that verifies peers will refuse`} {
		if !strings.Contains(out, want) {
			t.Errorf("no %s in\n%s", want, out)
		}
	}
	buf.Reset()
	withTLS(log.Info(), config.Default(), log).Msg("pharos-node running")
	if !strings.Contains(buf.String(), `"tls":false`) || strings.Contains(buf.String(), "warn") {
		t.Errorf("without TLS: %s", buf.String())
	}
}
