package ingest

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// manualClock is a clock tests move by hand.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestLogSampler(t *testing.T) {
	clock := &manualClock{now: fixedClock()}
	s := &logSampler{now: clock.Now, burst: 3, period: time.Second}
	for i := range 3 {
		ok, suppressed := s.allow()
		assert.True(t, ok, i)
		assert.Zero(t, suppressed)
	}
	for range 7 {
		ok, _ := s.allow()
		assert.False(t, ok)
	}
	clock.Advance(999 * time.Millisecond)
	ok, _ := s.allow()
	assert.False(t, ok, "still within the period")
	clock.Advance(time.Millisecond)
	ok, suppressed := s.allow()
	assert.True(t, ok)
	assert.Equal(t, 8, suppressed)
	ok, suppressed = s.allow()
	assert.True(t, ok)
	assert.Zero(t, suppressed)
}

// TestRefusalLogsAreRateLimited sends 20 bad StatsD lines: 5 are logged, then, a period later, one
// more line says how many were suppressed.
func TestRefusalLogsAreRateLimited(t *testing.T) {
	var buf bytes.Buffer
	clock := &manualClock{now: fixedClock()}
	s, err := NewStatsD(StatsDOptions{Common: Common{
		Sink: &memSink{}, Now: clock.Now, Logger: zerolog.New(&buf), LogBurst: 5, LogPeriod: 10 * time.Second,
	}})
	require.NoError(t, err)
	s.HandlePacket([]byte(strings.Repeat("bad\n", 20)))
	assert.Equal(t, 5, strings.Count(buf.String(), "\n"))
	clock.Advance(10 * time.Second)
	buf.Reset()
	s.HandlePacket([]byte("bad"))
	var line struct {
		Level      string `json:"level"`
		Ingest     string `json:"ingest"`
		Reason     string `json:"reason"`
		Suppressed int    `json:"suppressed"`
		Error      string `json:"error"`
	}
	require.NoError(t, json.Unmarshal(buf.Bytes(), &line), buf.String())
	assert.Equal(t, "warn", line.Level)
	assert.Equal(t, KindStatsD, line.Ingest)
	assert.Equal(t, ReasonSyntax, line.Reason)
	assert.Equal(t, 15, line.Suppressed)
	assert.Contains(t, line.Error, `statsd line "bad"`)
}

// TestSourcesShareOneRegistry: every source registers the same counters; the second reuses them.
func TestSourcesShareOneRegistry(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	sink := &memSink{}
	h, err := NewHandler(HTTPOptions{Common: Common{Sink: sink, Registerer: reg}})
	require.NoError(t, err)
	s, err := NewStatsD(StatsDOptions{Common: Common{Sink: sink, Registerer: reg}})
	require.NoError(t, err)
	_, err = NewScraper(ScrapeOptions{Common: Common{Sink: sink, Registerer: reg}, Targets: []string{"http://127.0.0.1:1/metrics"}})
	require.NoError(t, err)
	_, err = NewHostCollector(HostOptions{Common: Common{Sink: sink, Registerer: reg}})
	require.NoError(t, err)
	assert.Same(t, h.p.counters.accepted, s.p.counters.accepted)

	s.HandlePacket([]byte("a:1|c\nb"))
	families, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			got[key] = m.GetCounter().GetValue()
		}
	}
	assert.Equal(t, map[string]float64{
		"pharos_ingest_http_inflight_bytes":                               0, // a gauge: read as 0 here
		"pharos_ingest_records_accepted_total,source=host":                0,
		"pharos_ingest_records_accepted_total,source=http":                0,
		"pharos_ingest_records_accepted_total,source=scrape":              0,
		"pharos_ingest_records_accepted_total,source=statsd":              1,
		"pharos_ingest_records_refused_total,reason=syntax,source=statsd": 1,
		"pharos_ingest_statsd_kernel_drops_total":                         0,
	}, got)
}

func TestCounterNameConflictIsAnError(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "pharos_ingest_records_accepted_total", Help: "x"}))
	_, err := NewHandler(HTTPOptions{Common: Common{Sink: &memSink{}, Registerer: reg}})
	require.Error(t, err)
}

func TestReasonOf(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{&sinkError{ErrSinkFull}, ReasonSinkFull},
		{&sinkError{assert.AnError}, ReasonSinkError},
		{ErrBodyTooLarge, ReasonTooLarge},
		{ErrPacketTooLarge, ReasonTooLarge},
		{&ScrapeError{Target: "x", Err: ErrScrapeTooLarge}, ReasonTooLarge},
		{ErrTooManyRecords, ReasonTooMany},
		{ErrMediaType, ReasonMediaType},
		{&FieldError{Field: "x", Err: ErrWrongType}, ReasonDecode},
		{assert.AnError, ReasonOther},
	} {
		assert.Equal(t, tt.want, reasonOf(tt.err), "%v", tt.err)
	}
}
