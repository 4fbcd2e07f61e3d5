package ingest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pharos-node/pharos-node/etf"
)

func gauge(name string, v float64) etf.Metric {
	return etf.Metric{Name: name, Kind: etf.Gauge, Value: v}
}

func TestParseLoadavg(t *testing.T) {
	got, err := parseLoadavg([]byte("0.52 1.58 10.59 1/467 12345\n"))
	require.NoError(t, err)
	assert.Equal(t, []etf.Metric{gauge("host_load1", 0.52), gauge("host_load5", 1.58), gauge("host_load15", 10.59)}, got)
	for _, bad := range []string{"", "0.5 0.5", "0.5 x 0.5 1/2 3", "NaN 1 1 1/1 1", "-1 1 1 1/1 1"} {
		_, err := parseLoadavg([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
}

func TestParseUptime(t *testing.T) {
	got, err := parseUptime([]byte("1069.05 281.26\n"))
	require.NoError(t, err)
	assert.Equal(t, []etf.Metric{gauge("host_uptime_seconds", 1069.05)}, got)
	for _, bad := range []string{"", "\n", "abc 1", "Inf 1"} {
		_, err := parseUptime([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
}

func TestParseMeminfo(t *testing.T) {
	text := `MemTotal:       24683620 kB
MemFree:        22117964 kB
MemAvailable:   23986904 kB
Buffers:           42740 kB
HugePages_Total:       0
SwapTotal:             0 kB
SwapFree:              0 kB
`
	got, err := parseMeminfo([]byte(text))
	require.NoError(t, err)
	assert.Equal(t, []etf.Metric{
		gauge("host_memory_total_bytes", 24683620*1024),
		gauge("host_memory_free_bytes", 22117964*1024),
		gauge("host_memory_available_bytes", 23986904*1024),
		gauge("host_swap_total_bytes", 0),
		gauge("host_swap_free_bytes", 0),
	}, got)

	// An old kernel without MemAvailable and swap lines.
	got, err = parseMeminfo([]byte("MemTotal: 2048 kB\nMemFree: 1024 kB\n"))
	require.NoError(t, err)
	assert.Equal(t, []etf.Metric{gauge("host_memory_total_bytes", 2048*1024), gauge("host_memory_free_bytes", 1024*1024)}, got)

	for _, bad := range []string{"", "MemFree: 1 kB\n", "MemTotal: x kB\n"} {
		_, err := parseMeminfo([]byte(bad))
		assert.Error(t, err, "%q", bad)
	}
}

func TestParseProcStat(t *testing.T) {
	text := `cpu  119992 0 63882 28126 661 0 676 0 0 0
cpu0 59264 0 31418 15726 44 0 154 0 0 0
intr 1 2 3
`
	got, err := parseProcStat([]byte(text), 100)
	require.NoError(t, err)
	want := []etf.Metric{}
	for i, v := range []float64{1199.92, 0, 638.82, 281.26, 6.61, 0, 6.76, 0} {
		mode := []string{"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"}[i]
		want = append(want, etf.Metric{Name: "host_cpu_seconds_total", Kind: etf.Counter, Value: v, Tags: []etf.Tag{{Key: "mode", Value: mode}}})
	}
	require.Len(t, got, len(want))
	for i := range want {
		assert.Equal(t, want[i].Tags, got[i].Tags)
		assert.InDelta(t, want[i].Value, got[i].Value, 1e-9)
	}

	// A 2.4 kernel has 4 columns.
	got, err = parseProcStat([]byte("cpu 1 2 3 4\n"), 100)
	require.NoError(t, err)
	assert.Len(t, got, 4)

	for _, bad := range []string{"", "cpu0 1 2 3 4\n", "cpu 1 2 3\n", "cpu 1 x 3 4\n", "cpu -1 2 3 4\n"} {
		_, err := parseProcStat([]byte(bad), 100)
		assert.Error(t, err, "%q", bad)
	}
}

// fakeProc writes a procfs copy with the given files.
func fakeProc(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600))
	}
	return dir
}

func TestHostCollect(t *testing.T) {
	dir := fakeProc(t, map[string]string{
		"loadavg": "1 2 3 1/1 1\n",
		"meminfo": "MemTotal: 4 kB\n",
		"uptime":  "10.5 1\n",
		"stat":    "cpu 100 0 0 0\n",
	})
	sink := &memSink{}
	h, err := NewHostCollector(HostOptions{Common: Common{Sink: sink, Now: fixedClock}, ProcRoot: dir})
	require.NoError(t, err)
	n, err := h.Collect()
	require.NoError(t, err)
	assert.Equal(t, 3+1+1+4, n)
	for _, m := range sink.metrics() {
		assert.Equal(t, "host", m.Source)
		assert.Equal(t, int64(fixedMs), m.TimestampMs)
	}
	assert.Equal(t, etf.Metric{Name: "host_cpu_seconds_total", Kind: etf.Counter, Value: 1, Tags: []etf.Tag{{Key: "mode", Value: "user"}}, TimestampMs: fixedMs, Source: "host"}, sink.metrics()[5])
}

// TestHostCollectPartial: a missing or broken file is reported and counted; the others are delivered.
func TestHostCollectPartial(t *testing.T) {
	dir := fakeProc(t, map[string]string{"loadavg": "1 2 3 1/1 1\n", "uptime": "garbage\n"})
	sink := &memSink{}
	reg := prometheus.NewRegistry()
	h, err := NewHostCollector(HostOptions{Common: Common{Sink: sink, Registerer: reg}, ProcRoot: dir})
	require.NoError(t, err)
	n, err := h.Collect()
	require.ErrorIs(t, err, ErrHostRead)
	assert.Equal(t, 3, n)
	assert.InDelta(t, 3, counterValue(t, counterVec(t, reg, "pharos_ingest_requests_refused_total").WithLabelValues(KindHost, ReasonRead)), 0)
}

// TestHostCollectRealProc reads this machine's /proc.
func TestHostCollectRealProc(t *testing.T) {
	sink := &memSink{}
	h, err := NewHostCollector(HostOptions{Common: Common{Sink: sink}})
	require.NoError(t, err)
	n, err := h.Collect()
	require.NoError(t, err)
	assert.GreaterOrEqual(t, n, 3+2+1+4)
	names := map[string]bool{}
	for _, m := range sink.metrics() {
		names[m.Name] = true
	}
	for _, want := range []string{"host_load1", "host_memory_total_bytes", "host_uptime_seconds", "host_cpu_seconds_total"} {
		assert.True(t, names[want], want)
	}
}

func TestHostRun(t *testing.T) {
	dir := fakeProc(t, map[string]string{"loadavg": "1 2 3 1/1 1\n"})
	sink := &memSink{}
	h, err := NewHostCollector(HostOptions{Common: Common{Sink: sink}, ProcRoot: dir, Interval: 10 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	require.Eventually(t, func() bool { return len(sink.records()) >= 9 }, 5*time.Second, 5*time.Millisecond)
	cancel()
	requireReturnsNil(t, done, 5*time.Second, "Run, after cancel,")
}
