package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pharos-node/pharos-node/ingest"
)

// daemonSender is `pharos-node run` (the binary TestMain built from this tree) in a process of
// its own on the host, fed over HTTP.
type daemonSender struct {
	url    string
	source string
	client *http.Client
	log    *lockedBuffer
}

// startDaemon runs the daemon in brain.mode mode against the Brain, with a spill directory and
// the suite's backoff; deliveryExtra holds more YAML lines of the delivery section. It is
// stopped (SIGTERM, then SIGKILL) in t.Cleanup, and its log printed if the test failed.
func startDaemon(t *testing.T, e env, mode, deliveryExtra string) sender {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`node:
  name: faults_d_%s@%s
  epmd_port: %d
  net_ticktime: %s
brain:
  node: %s
  name: %s
  mode: %s
spill:
  dir: %s
delivery:
  base_backoff: 100ms
  max_backoff: 1s
%singest:
  source: %s
  http:
    listen: %s
log:
  level: warn
  format: json
shutdown_timeout: 5s
`, randomHex(4), e.ns.HostAddr, e.brain.EpmdPort, tickTime, e.brain.Node, e.brain.Name, mode,
		filepath.Join(dir, "spill"), deliveryExtra, e.source, addr)
	path := filepath.Join(dir, "pharos.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	d := &daemonSender{url: "http://" + addr, source: e.source, log: &lockedBuffer{},
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}}
	cmd := exec.Command(daemonBinary, "run", "--config", path)
	cmd.Env = daemonEnv(e.brain.Cookie)
	cmd.Stdout, cmd.Stderr = d.log, d.log
	// The daemon refuses unknown PHAROS_ variables, so it cannot carry erltest's owner mark:
	// the kernel kills it if the test binary dies without its cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", daemonBinary, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			t.Errorf("%s: the daemon did not stop 15 s after SIGTERM; killed", e.source)
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		d.client.CloseIdleConnections()
		if t.Failed() {
			t.Logf("%s: daemon log:\n%s", e.source, d.log.String())
		}
	})
	// The HTTP listener comes up with the daemon; waitUp then waits for streaming.
	deadline := time.Now().Add(30 * time.Second)
	for d.state() == "" {
		select {
		case <-exited:
			t.Fatalf("%s: the daemon exited at start:\n%s", e.source, d.log.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the daemon's HTTP listener is not up after 30 s:\n%s", e.source, d.log.String())
		}
	}
	return d
}

// daemonEnv is the test's environment without its PHAROS_ variables (the daemon takes each as
// a setting), with the cookie.
func daemonEnv(cookie string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PHAROS_") {
			env = append(env, kv)
		}
	}
	return append(env, "PHAROS_COOKIE="+cookie)
}

// record is one metric of the HTTP API, with the seq tag the reference Brain tracks.
type record struct {
	Name        string            `json:"name"`
	Kind        string            `json:"kind"`
	Value       float64           `json:"value"`
	Tags        map[string]string `json:"tags"`
	TimestampMs int64             `json:"timestamp_ms"`
	Source      string            `json:"source"`
}

func (d *daemonSender) offer(seqs []int) ([]int, error) {
	recs := make([]record, len(seqs))
	now := time.Now().UnixMilli()
	for i, seq := range seqs {
		recs[i] = record{Name: "faults.seq", Kind: "counter", Value: float64(seq),
			Tags: map[string]string{"seq": fmt.Sprint(seq)}, TimestampMs: now, Source: d.source}
	}
	body, err := json.Marshal(recs)
	if err != nil {
		return seqs, err
	}
	resp, err := d.client.Post(d.url+"/v1/metrics", "application/json", bytes.NewReader(body))
	if err != nil {
		return seqs, fmt.Errorf("POST /v1/metrics: %w", err)
	}
	defer resp.Body.Close()
	var r ingest.Response
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return seqs, fmt.Errorf("POST /v1/metrics: %d, not a Response: %w", resp.StatusCode, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return nil, nil
	case http.StatusServiceUnavailable: // busy: only these were refused
		refused := make([]int, 0, len(r.Refused))
		for _, ref := range r.Refused {
			refused = append(refused, seqs[ref.Index])
		}
		return refused, nil
	default:
		return seqs, fmt.Errorf("POST /v1/metrics: %d %+v", resp.StatusCode, r)
	}
}

// state is the first line of /readyz ("" while the daemon does not answer).
func (d *daemonSender) state() string {
	resp, err := d.client.Get(d.url + "/readyz")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	first, _, _ := strings.Cut(string(body), "\n")
	return first
}

func (d *daemonSender) counters() counters {
	c := counters{State: d.state()}
	resp, err := d.client.Get(d.url + "/metrics")
	if err != nil {
		return c
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return c
	}
	value := func(name string) float64 {
		sum := 0.0
		if f, ok := families[name]; ok {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
		return sum
	}
	c.Delivered = uint64(value("pharos_fsm_delivered_total"))
	c.Acked = uint64(value("pharos_fsm_acked_records_total"))
	c.PossiblyLost = uint64(value("pharos_fsm_possibly_lost_total"))
	c.Reconnects = uint64(value("pharos_fsm_reconnects_total"))
	c.Held = int(value("pharos_fsm_ring_records") + value("pharos_fsm_spill_records") + value("pharos_fsm_unacked_records"))
	return c
}

// lockedBuffer collects a daemon's log.
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
