package main

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// timeline writes, once a second, what happened in that second: records sent and accepted,
// answers other than 200, and the receiver's RSS, CPU and (-metrics) backlog and state. For the
// outage runs (scripts/outage-bench.sh); a no-op without -timeline.
type timeline struct {
	c    config
	f    *os.File
	mu   sync.Mutex
	next time.Time
	cpu  float64
	// since the last line
	requests, ok, other int64
}

func newTimeline(c config) *timeline {
	if c.timeline == "" {
		return nil
	}
	f, err := os.OpenFile(c.timeline, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil
	}
	cpu, _ := processCPU(c.pid)
	return &timeline{c: c, f: f, next: time.Now().Truncate(time.Second).Add(time.Second), cpu: cpu}
}

func (t *timeline) answer(accepted, status int, err error) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.requests++
	t.ok += int64(accepted)
	if status != http.StatusOK || err != nil {
		t.other++
	}
}

// tick writes a line when a second is over; the sampling runs on its own goroutine so the load
// keeps its pace.
func (t *timeline) tick(now time.Time) {
	if t == nil || now.Before(t.next) {
		return
	}
	t.mu.Lock()
	line := map[string]any{"t": t.next.Unix() - 1, "requests": t.requests, "accepted": t.ok, "not_ok": t.other}
	t.requests, t.ok, t.other = 0, 0, 0
	t.next = now.Truncate(time.Second).Add(time.Second)
	t.mu.Unlock()
	go t.sample(line)
}

var timelineMetrics = []string{"pharos_fsm_backlog_records", "pharos_fsm_drain_seconds_estimate", "pharos_fsm_ring_records",
	"pharos_fsm_spill_records", "pharos_fsm_dropped_total", "pharos_fsm_unconfirmed_records", "pharos_fsm_peer_busy_total",
	"pharos_fsm_delivered_total", "pharos_fsm_probes_total"}

func (t *timeline) sample(line map[string]any) {
	line["rss_mib"] = rssMiB(t.c.pid)
	if cpu, err := processCPU(t.c.pid); err == nil {
		t.mu.Lock()
		line["cpu_s"] = cpu - t.cpu
		t.cpu = cpu
		t.mu.Unlock()
	}
	if t.c.metrics != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 900*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, t.c.metrics, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				text := sc.Text()
				if v, ok := strings.CutPrefix(text, "pharos_fsm_state{state=\""); ok {
					if name, val, ok := strings.Cut(v, "\"} "); ok && strings.TrimSpace(val) == "1" {
						line["state"] = name
					}
					continue
				}
				for _, m := range timelineMetrics {
					if rest, ok := strings.CutPrefix(text, m); ok && (strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, "{")) {
						_, val, _ := strings.Cut(rest, " ")
						if x, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
							key := strings.TrimPrefix(m, "pharos_fsm_")
							if math.IsInf(x, 0) {
								line[key] = "inf"
								continue
							}
							if prev, ok := line[key].(float64); ok {
								x += prev // label sets summed
							}
							line[key] = x
						}
					}
				}
			}
			resp.Body.Close()
		}
	}
	out, err := json.Marshal(line)
	if err != nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	_, _ = t.f.Write(append(out, '\n'))
}
