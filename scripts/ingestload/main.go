// Command ingestload is an open-loop load generator for a running pharos-node (or the BEAM
// doing the same work: test/erlang/bench/pharos_beam_ingest.erl): it sends metrics over HTTP
// JSON, OTLP/JSON or StatsD at a fixed rate, whatever the receiver answers, and measures the CPU
// the receiving process spent per record it accepted (utime + stime from /proc/<pid>/stat over the
// measured window, after a warm-up). scripts/ingest-cpu.sh and scripts/ingest-bench.sh start a
// Brain and a daemon and run it; docs/performance.md ("Ingest") has the figures.
//
//	ingestload -mode http -url http://127.0.0.1:9180/v1/metrics -rate 10000 -batch 100 \
//	           -duration 20s -warmup 3s -pid 1234 -metrics http://127.0.0.1:9180/metrics
//	ingestload -mode statsd -addr 127.0.0.1:8125 -rate 10000 -batch 20 -pid 1234 -metrics ...
//	ingestload ... -stamp -latency-file /tmp/lat.jsonl     # HTTP-to-Brain latency
//	ingestload ... -timeline /tmp/t.jsonl                  # one line a second (outage runs)
//
// rate is in records per second; batch is records per request (HTTP, OTLP) or lines per datagram
// (StatsD). Requests are scheduled at fixed times from the start (open loop): a request whose
// turn comes while every worker is busy is counted as late and sent when one is free. The figures
// are printed as one JSON object. Accepted records are counted from the HTTP answers, from the
// daemon's pharos_ingest_records_accepted_total (-metrics), and from what reached the latency
// Brain (-latency-file; the only count for StatsD into the BEAM). With -stamp each record's value
// is its request's time of sending in Unix microseconds, and the latency Brain's file gives the
// HTTP-to-Brain latency over the window.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type config struct {
	mode, url, addr, metrics string
	rate, batch, workers     int
	duration, warmup         time.Duration
	pid                      int
	tags                     int
	stamp                    bool
	latencyFile, timeline    string
}

type result struct {
	Mode           string  `json:"mode"`
	Rate           int     `json:"rate"`
	Batch          int     `json:"batch"`
	Seconds        float64 `json:"seconds"`
	Requests       int64   `json:"requests"`
	Late           int64   `json:"late"`
	Errors         int64   `json:"errors"`
	RecordsSent    int64   `json:"records_sent"`
	RecordsOK      int64   `json:"records_ok"`
	DaemonAccepted float64 `json:"daemon_accepted"`
	CPUSeconds     float64 `json:"cpu_seconds"`
	CPUShare       float64 `json:"cpu_share"`
	USPerRecord    float64 `json:"us_per_record"`
	RSSMiB         float64 `json:"rss_mib"`
	LatencyP50Ms   float64 `json:"latency_p50_ms,omitempty"`
	LatencyP99Ms   float64 `json:"latency_p99_ms,omitempty"`
	LatencyP999Ms  float64 `json:"latency_p999_ms,omitempty"`
	// What reached the Brain in the window (-latency-file), and the latency from sending.
	BrainRecords     int64         `json:"brain_records,omitempty"`
	BrainLatencyN    int64         `json:"brain_latency_n,omitempty"`
	BrainP50Ms       float64       `json:"brain_latency_p50_ms,omitempty"`
	BrainP99Ms       float64       `json:"brain_latency_p99_ms,omitempty"`
	BrainP999Ms      float64       `json:"brain_latency_p999_ms,omitempty"`
	BrainMaxMs       float64       `json:"brain_latency_max_ms,omitempty"`
	StatusHistogram  map[int]int64 `json:"statuses"`
	AchievedRecPerS  float64       `json:"achieved_records_per_s"`
	GeneratorCPUSecs float64       `json:"generator_cpu_seconds"`
}

func main() {
	var c config
	flag.StringVar(&c.mode, "mode", "http", "http, otlp (OTLP/JSON) or statsd")
	flag.BoolVar(&c.stamp, "stamp", false, "each record's value is its sending time in Unix microseconds")
	flag.StringVar(&c.latencyFile, "latency-file", "", "pharos_latency_brain's output: records and latency at the Brain over the window")
	flag.StringVar(&c.timeline, "timeline", "", "append one JSON line a second: load, answers, the daemon's RSS and backlog")
	flag.StringVar(&c.url, "url", "http://127.0.0.1:9180/v1/metrics", "HTTP ingest URL")
	flag.StringVar(&c.addr, "addr", "127.0.0.1:8125", "StatsD UDP address")
	flag.StringVar(&c.metrics, "metrics", "", "the daemon's /metrics URL (counts accepted records)")
	flag.IntVar(&c.rate, "rate", 10000, "records per second")
	flag.IntVar(&c.batch, "batch", 100, "records per request or lines per datagram")
	flag.IntVar(&c.workers, "workers", 64, "concurrent HTTP requests at most")
	flag.IntVar(&c.tags, "tags", 3, "tags per record")
	flag.DurationVar(&c.duration, "duration", 20*time.Second, "measured window")
	flag.DurationVar(&c.warmup, "warmup", 3*time.Second, "load before the window")
	flag.IntVar(&c.pid, "pid", 0, "the daemon's process id")
	flag.Parse()
	if c.pid <= 0 || c.rate <= 0 || c.batch <= 0 {
		fmt.Fprintln(os.Stderr, "ingestload: -pid, -rate and -batch must be positive")
		os.Exit(2)
	}
	r, err := run(c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ingestload:", err)
		os.Exit(1)
	}
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
}

// sender sends one request of batch records, the k-th of the run; it returns how many the daemon
// accepted (HTTP; StatsD: batch) and the status.
type sender func(k int64) (accepted int, status int, err error)

func run(c config) (result, error) {
	send, closeFn, err := newSender(c)
	if err != nil {
		return result{}, err
	}
	defer closeFn()

	interval := time.Duration(float64(time.Second) * float64(c.batch) / float64(c.rate))
	total := c.warmup + c.duration
	jobs := make(chan int64, 1<<16)
	var (
		inWindow             atomic.Bool
		requests, late, errs atomic.Int64
		sent, ok             atomic.Int64
		mu                   sync.Mutex
		latencies            []time.Duration
		statuses             = map[int]int64{}
		tl                   = newTimeline(c)
		wg                   sync.WaitGroup
		workers              = c.workers
		workersActive        atomic.Int64
	)
	if c.mode == "statsd" {
		workers = 1 // one socket, datagrams in order
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range jobs {
				workersActive.Add(1)
				t0 := time.Now()
				n, status, err := send(k)
				d := time.Since(t0)
				workersActive.Add(-1)
				tl.answer(n, status, err)
				if !inWindow.Load() {
					continue
				}
				requests.Add(1)
				sent.Add(int64(c.batch))
				ok.Add(int64(n))
				mu.Lock()
				latencies = append(latencies, d)
				statuses[status]++
				mu.Unlock()
				if err != nil {
					errs.Add(1)
				}
			}
		}()
	}

	start := time.Now()
	var cpu0, cpu1 float64
	var acc0, acc1 float64
	var gen0, gen1 float64
	var windowStart, windowEnd time.Time
	var k int64
	for {
		now := time.Now()
		el := now.Sub(start)
		if windowStart.IsZero() && el >= c.warmup {
			cpu0, err = processCPU(c.pid)
			if err != nil {
				return result{}, err
			}
			gen0, _ = processCPU(os.Getpid())
			acc0 = accepted(c)
			windowStart = now
			inWindow.Store(true)
		}
		if el >= total {
			break
		}
		due := int64(el/interval) + 1
		for ; k < due; k++ {
			if int(workersActive.Load()) >= workers && !windowStart.IsZero() {
				late.Add(1)
			}
			jobs <- k
		}
		tl.tick(now)
		next := start.Add(time.Duration(k) * interval)
		time.Sleep(min(time.Until(next), 2*time.Millisecond))
	}
	windowEnd = time.Now()
	cpu1, err = processCPU(c.pid)
	if err != nil {
		return result{}, err
	}
	gen1, _ = processCPU(os.Getpid())
	close(jobs)
	wg.Wait()
	time.Sleep(300 * time.Millisecond) // StatsD: let the daemon read what is queued
	acc1 = accepted(c)

	r := result{Mode: c.mode, Rate: c.rate, Batch: c.batch, Seconds: windowEnd.Sub(windowStart).Seconds(),
		Requests: requests.Load(), Late: late.Load(), Errors: errs.Load(), RecordsSent: sent.Load(),
		RecordsOK: ok.Load(), DaemonAccepted: acc1 - acc0, CPUSeconds: cpu1 - cpu0, StatusHistogram: statuses,
		GeneratorCPUSecs: gen1 - gen0}
	r.CPUShare = r.CPUSeconds / r.Seconds
	if c.latencyFile != "" {
		// The latency Brain writes a second 1-2 s after it ends; the window's whole seconds.
		time.Sleep(2500 * time.Millisecond)
		secs, err := readBrainFile(c.latencyFile, windowStart.Unix()+1, windowEnd.Unix())
		if err != nil {
			return result{}, err
		}
		b := summarize(secs)
		r.BrainLatencyN, r.BrainP50Ms, r.BrainP99Ms, r.BrainP999Ms, r.BrainMaxMs = b.N, b.P50, b.P99, b.P999, b.MaxMs
		if b.Seconds > 0 {
			// Scaled to the window, to compare with the other counts.
			r.BrainRecords = int64(float64(b.Records) * r.Seconds / float64(b.Seconds))
		}
	}
	base := float64(r.RecordsOK)
	switch {
	case c.mode == "statsd" && c.metrics == "" && r.BrainRecords > 0:
		base = float64(r.BrainRecords)
	case c.mode == "statsd" || (c.metrics != "" && r.DaemonAccepted > 0):
		base = r.DaemonAccepted
	}
	if base > 0 {
		r.USPerRecord = r.CPUSeconds * 1e6 / base
	}
	r.AchievedRecPerS = base / r.Seconds
	r.RSSMiB = rssMiB(c.pid)
	if len(latencies) > 0 && c.mode == "http" {
		slices.Sort(latencies)
		q := func(p float64) float64 {
			return float64(latencies[int(p*float64(len(latencies)-1))]) / 1e6
		}
		r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyP999Ms = q(0.50), q(0.99), q(0.999)
	}
	return r, nil
}

// processCPU is utime + stime of pid in seconds (USER_HZ = 100).
func processCPU(pid int) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(raw[i+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100, nil
}

func rssMiB(pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// accepted reads pharos_ingest_records_accepted_total for the mode's source from the daemon.
func accepted(c config) float64 {
	if c.metrics == "" {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.metrics, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	want := `pharos_ingest_records_accepted_total{source="` + c.mode + `"} `
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), want); ok {
			x, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return x
		}
	}
	return 0
}
