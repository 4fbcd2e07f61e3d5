package ingest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pharos-node/pharos-node/etf"
)

// Defaults of HostOptions.
const (
	DefaultHostInterval   = 10 * time.Second
	DefaultHostProcRoot   = "/proc"
	DefaultHostSource     = "host"
	DefaultHostClockTicks = 100 // USER_HZ on every Linux architecture Go supports
)

// maxProcFileBytes bounds what the collector reads of one /proc file.
const maxProcFileBytes = 1 << 20

// HostOptions configure a HostCollector.
type HostOptions struct {
	Common
	// Interval is the time between two collections. Default DefaultHostInterval.
	Interval time.Duration
	// ProcRoot is where procfs is mounted. Default DefaultHostProcRoot; tests point it at a copy.
	ProcRoot string
	// Source is the source of every record. Default DefaultHostSource.
	Source string
	// ClockTicks is USER_HZ, the unit of /proc/stat. Default DefaultHostClockTicks.
	ClockTicks int
}

// HostCollector reads a few host metrics from /proc (see docs/ingest.md) at an interval.
type HostCollector struct {
	p          *pipeline
	interval   time.Duration
	procRoot   string
	source     string
	clockTicks float64
}

// NewHostCollector returns a HostCollector; nothing is read before Run or Collect.
func NewHostCollector(opts HostOptions) (*HostCollector, error) {
	p, err := newPipeline(KindHost, opts.Common)
	if err != nil {
		return nil, err
	}
	h := &HostCollector{p: p, interval: opts.Interval, procRoot: opts.ProcRoot, source: opts.Source, clockTicks: float64(opts.ClockTicks)}
	if h.interval <= 0 {
		h.interval = DefaultHostInterval
	}
	if h.procRoot == "" {
		h.procRoot = DefaultHostProcRoot
	}
	if h.source == "" {
		h.source = DefaultHostSource
	}
	if h.clockTicks <= 0 {
		h.clockTicks = DefaultHostClockTicks
	}
	return h, nil
}

// Run collects at once, then every Interval, until ctx is done; it then returns nil.
func (h *HostCollector) Run(ctx context.Context) error {
	ticker := time.NewTicker(h.interval)
	defer ticker.Stop()
	for ctx.Err() == nil {
		_, _ = h.Collect()
		select {
		case <-ctx.Done():
		case <-ticker.C:
		}
	}
	return nil
}

// Collect reads the /proc files once and delivers what it read. It returns how many records the sink
// accepted and, if some file could not be read or parsed, an error wrapping ErrHostRead (the other
// files' metrics are delivered anyway). Safe for concurrent use.
func (h *HostCollector) Collect() (accepted int, err error) {
	now := h.p.nowMs()
	var metrics []etf.Metric
	var errs []error
	for _, read := range []struct {
		file  string
		parse func([]byte) ([]etf.Metric, error)
	}{
		{"loadavg", parseLoadavg},
		{"meminfo", parseMeminfo},
		{"uptime", parseUptime},
		{"stat", func(b []byte) ([]etf.Metric, error) { return parseProcStat(b, h.clockTicks) }},
	} {
		ms, err := h.readProc(read.file, read.parse)
		if err != nil {
			errs = append(errs, err)
			h.p.refuseRequest(err)
			h.p.warn("host: collection failed", err)
			continue
		}
		metrics = append(metrics, ms...)
	}
	for _, m := range metrics {
		m.TimestampMs = now
		m.Source = h.source
		if err := h.p.deliverMetric(m); err != nil {
			h.p.warn("host: record refused", err)
			continue
		}
		accepted++
	}
	return accepted, errors.Join(errs...)
}

func (h *HostCollector) readProc(name string, parse func([]byte) ([]etf.Metric, error)) ([]etf.Metric, error) {
	path := filepath.Join(h.procRoot, name)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHostRead, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxProcFileBytes))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrHostRead, path, err)
	}
	ms, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrHostRead, path, err)
	}
	return ms, nil
}

// parseLoadavg reads "0.52 0.58 0.59 1/467 12345".
func parseLoadavg(b []byte) ([]etf.Metric, error) {
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return nil, fmt.Errorf("want 3 load averages, got %q", b)
	}
	out := make([]etf.Metric, 0, 3)
	for i, name := range []string{"host_load1", "host_load5", "host_load15"} {
		v, err := parseProcFloat(f[i])
		if err != nil {
			return nil, err
		}
		out = append(out, etf.Metric{Name: name, Kind: etf.Gauge, Value: v})
	}
	return out, nil
}

// parseUptime reads "12345.67 23456.78" (uptime, idle), in seconds.
func parseUptime(b []byte) ([]etf.Metric, error) {
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return nil, fmt.Errorf("empty uptime")
	}
	v, err := parseProcFloat(f[0])
	if err != nil {
		return nil, err
	}
	return []etf.Metric{{Name: "host_uptime_seconds", Kind: etf.Gauge, Value: v}}, nil
}

// parseMeminfo reads "MemTotal:       24683620 kB" lines; values in kB become bytes. Fields a kernel
// does not have (MemAvailable before 3.14) are left out; MemTotal is required.
func parseMeminfo(b []byte) ([]etf.Metric, error) {
	values := make(map[string]float64)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := parseProcFloat(f[0])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		if len(f) > 1 && f[1] == "kB" {
			v *= 1024
		}
		values[key] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if _, ok := values["MemTotal"]; !ok {
		return nil, fmt.Errorf("no MemTotal")
	}
	// The fields reported, and their metric names.
	fields := [...]struct{ field, name string }{
		{"MemTotal", "host_memory_total_bytes"},
		{"MemFree", "host_memory_free_bytes"},
		{"MemAvailable", "host_memory_available_bytes"},
		{"SwapTotal", "host_swap_total_bytes"},
		{"SwapFree", "host_swap_free_bytes"},
	}
	var out []etf.Metric
	for _, mm := range fields {
		if v, ok := values[mm.field]; ok {
			out = append(out, etf.Metric{Name: mm.name, Kind: etf.Gauge, Value: v})
		}
	}
	return out, nil
}

// parseProcStat reads the aggregate "cpu ..." line of /proc/stat: host_cpu_seconds_total{mode}, one
// counter per mode, in seconds (ticks / clockTicks). Kernels with fewer columns give fewer modes.
func parseProcStat(b []byte, clockTicks float64) ([]etf.Metric, error) {
	// The first columns of the cpu line, in order. guest and guest_nice follow; they are already
	// counted in user and nice, so they are left out.
	cpuModes := [...]string{"user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		cols := f[1:]
		if len(cols) < 4 {
			return nil, fmt.Errorf("cpu line has %d columns, want at least 4", len(cols))
		}
		var out []etf.Metric
		for i, mode := range cpuModes {
			if i >= len(cols) {
				break
			}
			ticks, err := strconv.ParseUint(cols[i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("cpu %s: %w", mode, err)
			}
			out = append(out, etf.Metric{
				Name: "host_cpu_seconds_total", Kind: etf.Counter, Value: float64(ticks) / clockTicks,
				Tags: []etf.Tag{{Key: "mode", Value: mode}},
			})
		}
		return out, nil
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("no cpu line")
}

// parseProcFloat parses a finite, non-negative decimal.
func parseProcFloat(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0, fmt.Errorf("%q is not a finite non-negative number", s)
	}
	return v, nil
}
