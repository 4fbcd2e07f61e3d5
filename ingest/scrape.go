package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pharos-node/pharos-node/etf"
)

// Defaults of ScrapeOptions.
const (
	DefaultScrapeInterval     = 15 * time.Second
	DefaultScrapeTimeout      = 10 * time.Second
	DefaultScrapeMaxBodyBytes = 16 << 20
	DefaultScrapeMaxSamples   = 100_000
	DefaultScrapeSource       = "prometheus"
)

// scrapeAccept asks for the text format only: the protobuf and OpenMetrics forms are not parsed.
const scrapeAccept = "text/plain;version=0.0.4;q=1,*/*;q=0.1"

// ScrapeOptions configure a Scraper.
type ScrapeOptions struct {
	Common
	// Targets are the URLs scraped, http or https ("http://127.0.0.1:9100/metrics"). At least one.
	Targets []string
	// Interval is the time between the starts of two scrapes of all targets. Default
	// DefaultScrapeInterval.
	Interval time.Duration
	// Timeout bounds one scrape of one target, from request to the last record delivered. Default
	// DefaultScrapeTimeout, and never more than Interval.
	Timeout time.Duration
	// Source is the source of every record. Default DefaultScrapeSource.
	Source string
	// Client sends the requests. Default: a client of its own (a clone of http.DefaultTransport),
	// whose idle connections Run closes when it returns. Timeout bounds each request either way.
	Client *http.Client
	// MaxBodyBytes is the largest response body; a longer one fails the scrape. Default
	// DefaultScrapeMaxBodyBytes.
	MaxBodyBytes int64
	// MaxSamples is the most records one scrape may yield; more fails the scrape and nothing of it
	// is delivered. Default DefaultScrapeMaxSamples.
	MaxSamples int
}

// Scraper scrapes Prometheus text-format endpoints at an interval; see docs/ingest.md for how samples
// become metrics.
type Scraper struct {
	p            *pipeline
	targets      []string
	interval     time.Duration
	timeout      time.Duration
	source       string
	client       *http.Client
	maxBodyBytes int64
	maxSamples   int
	ownClient    bool // client was made here: Run closes its idle connections when it returns
}

// NewScraper checks opts and returns a Scraper; nothing is scraped before Run or Scrape.
func NewScraper(opts ScrapeOptions) (*Scraper, error) {
	p, err := newPipeline(KindScrape, opts.Common)
	if err != nil {
		return nil, err
	}
	if len(opts.Targets) == 0 {
		return nil, fmt.Errorf("ingest: scrape: no targets")
	}
	for _, t := range opts.Targets {
		u, err := url.Parse(t)
		if err != nil {
			return nil, fmt.Errorf("ingest: scrape: target %q: %w", t, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("ingest: scrape: target %q is not an http or https URL", t)
		}
	}
	s := &Scraper{
		p:            p,
		targets:      slices.Clone(opts.Targets),
		interval:     opts.Interval,
		timeout:      opts.Timeout,
		source:       opts.Source,
		client:       opts.Client,
		maxBodyBytes: opts.MaxBodyBytes,
		maxSamples:   opts.MaxSamples,
	}
	if s.interval <= 0 {
		s.interval = DefaultScrapeInterval
	}
	if s.timeout <= 0 {
		s.timeout = DefaultScrapeTimeout
	}
	s.timeout = min(s.timeout, s.interval)
	if s.source == "" {
		s.source = DefaultScrapeSource
	}
	if s.client == nil {
		s.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		s.ownClient = true
	}
	if s.maxBodyBytes <= 0 {
		s.maxBodyBytes = DefaultScrapeMaxBodyBytes
	}
	if s.maxSamples <= 0 {
		s.maxSamples = DefaultScrapeMaxSamples
	}
	return s, nil
}

// Run scrapes every target at once, then every Interval, until ctx is done. The targets of one round
// are scraped concurrently, each within Timeout; a round that is still running when the next is due
// delays it (ticks are dropped, never queued). Run returns nil once ctx is done and every scrape it
// started has ended.
func (s *Scraper) Run(ctx context.Context) error {
	ticker := time.NewTicker(s.interval)
	defer ticker.Stop()
	if s.ownClient {
		defer s.client.CloseIdleConnections()
	}
	for ctx.Err() == nil {
		s.round(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
	return nil
}

// round scrapes every target once, concurrently, and waits for all of them.
func (s *Scraper) round(ctx context.Context) {
	var wg sync.WaitGroup
	for _, target := range s.targets {
		wg.Go(func() { _, _ = s.Scrape(ctx, target) })
	}
	wg.Wait()
}

// Scrape scrapes one target now, within Timeout, and delivers its samples. It returns how many
// records the sink accepted, and a *ScrapeError when the scrape failed as a whole (nothing is
// delivered then). Samples refused one by one (a NaN value, a full sink) are counted and logged, not
// returned. It is safe for concurrent use.
func (s *Scraper) Scrape(ctx context.Context, target string) (accepted int, err error) {
	scrapeCtx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	start := s.p.nowMs()
	metrics, err := s.fetch(scrapeCtx, target, start)
	if err != nil {
		err = &ScrapeError{Target: target, Err: err}
		if ctx.Err() == nil { // a scrape cut short by shutdown is no failure of the target
			s.p.refuseRequest(err)
			s.p.warn("scrape failed", err, "target", target)
		}
		return 0, err
	}
	// Validate each sample, then hand the valid ones to the sink together, in order.
	valid := metrics[:0]
	var prev *etf.Metric
	for i := range metrics {
		m := metrics[i]
		if err := s.p.validateMetric(&m, prev); err != nil {
			s.p.warn("scrape: sample refused", err, "target", target, "name", m.Name)
			continue
		}
		valid = append(valid, m)
		prev = &valid[len(valid)-1]
	}
	accepted = s.p.deliverMetrics(valid, func(i int, err error) {
		s.p.warn("scrape: sample refused", err, "target", target, "name", valid[i].Name)
	})
	return accepted, nil
}

func (s *Scraper) fetch(ctx context.Context, target string, nowMs int64) ([]etf.Metric, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrScrapeFailed, err)
	}
	req.Header.Set("Accept", scrapeAccept)
	req.Header.Set("User-Agent", "pharos-node")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrScrapeFailed, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("%w: %s", ErrScrapeStatus, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.maxBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading body: %w", ErrScrapeFailed, err)
	}
	if int64(len(body)) > s.maxBodyBytes {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrScrapeTooLarge, s.maxBodyBytes)
	}
	return parseExposition(body, recordDefaults{timestampMs: nowMs, source: s.source}, s.maxSamples)
}

// parseExposition parses a text exposition with expfmt and turns each sample into a Metric (see
// docs/ingest.md): families in name order, samples in exposition order, tags sorted by key. A sample without
// a timestamp gets def.timestampMs. More than maxSamples records is ErrTooManySamples.
func parseExposition(body []byte, def recordDefaults, maxSamples int) ([]etf.Metric, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrExposition, err)
	}
	names := make([]string, 0, len(families))
	for name := range families {
		names = append(names, name)
	}
	slices.Sort(names)
	var out []etf.Metric
	var arena []etf.Tag // every sample's tags, carved from a few allocations
	emit := func(name string, kind etf.MetricKind, value float64, labels []*dto.LabelPair, extra *etf.Tag, ts int64) error {
		if len(out) >= maxSamples {
			return fmt.Errorf("%w: more than %d", ErrTooManySamples, maxSamples)
		}
		if n := len(labels) + 1; cap(arena)-len(arena) < n {
			arena = make([]etf.Tag, 0, max(1024, n))
		}
		start := len(arena)
		for _, l := range labels {
			arena = append(arena, etf.Tag{Key: l.GetName(), Value: l.GetValue()})
		}
		if extra != nil {
			arena = append(arena, *extra)
		}
		tags := arena[start:len(arena):len(arena)]
		slices.SortStableFunc(tags, func(a, b etf.Tag) int { return strings.Compare(a.Key, b.Key) })
		out = append(out, etf.Metric{Name: name, Kind: kind, Value: value, Tags: tags, TimestampMs: ts, Source: def.source})
		return nil
	}
	for _, name := range names {
		mf := families[name]
		var bucketName, sumName, countName string // once per family, not per sample
		if t := mf.GetType(); t == dto.MetricType_SUMMARY || t == dto.MetricType_HISTOGRAM || t == dto.MetricType_GAUGE_HISTOGRAM {
			bucketName, sumName, countName = name+"_bucket", name+"_sum", name+"_count"
		}
		for _, m := range mf.GetMetric() {
			ts := def.timestampMs
			if m.TimestampMs != nil {
				ts = m.GetTimestampMs()
			}
			labels := m.GetLabel()
			var err error
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				err = emit(name, etf.Counter, m.GetCounter().GetValue(), labels, nil, ts)
			case dto.MetricType_GAUGE:
				err = emit(name, etf.Gauge, m.GetGauge().GetValue(), labels, nil, ts)
			case dto.MetricType_UNTYPED:
				err = emit(name, etf.Gauge, m.GetUntyped().GetValue(), labels, nil, ts)
			case dto.MetricType_SUMMARY:
				sum := m.GetSummary()
				for _, q := range sum.GetQuantile() {
					tag := etf.Tag{Key: model.QuantileLabel, Value: formatBound(q.GetQuantile())}
					if err = emit(name, etf.Gauge, q.GetValue(), labels, &tag, ts); err != nil {
						break
					}
				}
				// expfmt leaves SampleSum and SampleCount nil when the exposition has no _sum or
				// _count line; their getters would answer 0, a sample the target never exposed.
				if err == nil && sum.SampleSum != nil {
					err = emit(sumName, etf.Counter, sum.GetSampleSum(), labels, nil, ts)
				}
				if err == nil && sum.SampleCount != nil {
					err = emit(countName, etf.Counter, float64(sum.GetSampleCount()), labels, nil, ts)
				}
			case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
				h := m.GetHistogram()
				kind := etf.Counter
				if mf.GetType() == dto.MetricType_GAUGE_HISTOGRAM {
					kind = etf.Gauge
				}
				for _, b := range h.GetBucket() {
					count := float64(b.GetCumulativeCount())
					if b.CumulativeCountFloat != nil {
						count = b.GetCumulativeCountFloat()
					}
					tag := etf.Tag{Key: model.BucketLabel, Value: formatBound(b.GetUpperBound())}
					if err = emit(bucketName, kind, count, labels, &tag, ts); err != nil {
						break
					}
				}
				count := float64(h.GetSampleCount())
				if h.SampleCountFloat != nil {
					count = h.GetSampleCountFloat()
				}
				if err == nil && h.SampleSum != nil { // as for summaries: only what was exposed
					err = emit(sumName, kind, h.GetSampleSum(), labels, nil, ts)
				}
				if err == nil && (h.SampleCount != nil || h.SampleCountFloat != nil) {
					err = emit(countName, kind, count, labels, nil, ts)
				}
			}
			if err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// formatBound writes a bucket bound or quantile as Prometheus does: "+Inf", "0.005", "1e-05".
func formatBound(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
