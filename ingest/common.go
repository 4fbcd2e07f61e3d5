package ingest

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/etf"
)

// Source kinds, the values of the source label of the ingest counters.
const (
	KindHTTP   = "http"
	KindStatsD = "statsd"
	KindScrape = "scrape"
	KindHost   = "host"
)

// Defaults of Common.
const (
	DefaultLogBurst  = 5
	DefaultLogPeriod = 10 * time.Second
)

// Common holds what every source of this package takes: where records go and the dependencies the
// daemon injects. Only Sink is required.
type Common struct {
	// Sink receives every validated record. Required.
	Sink Sink
	// Logger receives refusals and failures, at most LogBurst messages per LogPeriod per source; the
	// next message after a quiet period says how many were suppressed. The zero Logger logs nothing.
	Logger zerolog.Logger
	// Registerer gets the ingest counters (see docs/ingest.md). Nil: the counters are kept but not exported.
	// Several sources may share one Registerer: the second one reuses the counters already there.
	Registerer prometheus.Registerer
	// Now is the clock that stamps records that carry no timestamp. Nil: time.Now.
	Now func() time.Time
	// Limits are the record limits passed to etf's Validate. Zero fields take etf's defaults.
	Limits etf.RecordLimits
	// LogBurst and LogPeriod bound the log rate. Zero: DefaultLogBurst, DefaultLogPeriod.
	LogBurst  int
	LogPeriod time.Duration
}

// pipeline is the part every source shares: validate, deliver, count, log.
type pipeline struct {
	kind     string
	sink     Sink
	limits   etf.RecordLimits
	now      func() time.Time
	log      zerolog.Logger
	sampler  *logSampler
	counters *counters
	accepted prometheus.Counter
	batch    MetricsSink // sink, when it takes batches; else nil
}

func newPipeline(kind string, c Common) (*pipeline, error) {
	if c.Sink == nil {
		return nil, fmt.Errorf("ingest: %s: %w", kind, errNoSink)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.LogBurst <= 0 {
		c.LogBurst = DefaultLogBurst
	}
	if c.LogPeriod <= 0 {
		c.LogPeriod = DefaultLogPeriod
	}
	cs, err := newCounters(c.Registerer)
	if err != nil {
		return nil, err
	}
	return &pipeline{
		kind:     kind,
		sink:     c.Sink,
		limits:   c.Limits,
		now:      c.Now,
		log:      c.Logger.With().Str("ingest", kind).Logger(),
		sampler:  &logSampler{now: c.Now, burst: c.LogBurst, period: c.LogPeriod},
		counters: cs,
		accepted: cs.accepted.WithLabelValues(kind),
		batch:    batchSink(c.Sink),
	}, nil
}

func batchSink(s Sink) MetricsSink {
	b, _ := s.(MetricsSink)
	return b
}

var errNoSink = errors.New("Common.Sink is nil")

// nowMs is the pipeline clock in Unix milliseconds.
func (p *pipeline) nowMs() int64 { return p.now().UnixMilli() }

// deliverMetric validates m and hands it to the sink. The error, if any, is counted as a refusal.
func (p *pipeline) deliverMetric(m etf.Metric) error {
	if err := m.Validate(p.limits); err != nil {
		p.refuse(err)
		return err
	}
	return p.deliver(MetricRecord(m))
}

// validateMetric validates m, which follows prev in a batch (nil: none, or prev not valid), and
// counts a refusal.
func (p *pipeline) validateMetric(m, prev *etf.Metric) error {
	if err := m.ValidateAfter(prev, p.limits); err != nil {
		p.refuse(err)
		return err
	}
	return nil
}

// deliverMetrics hands ms, which passed validateMetric, to the sink in order: in one call to a
// MetricsSink (one more after each refusal), else one by one. For each metric the sink refused it
// counts the refusal and calls refused with the metric's index in ms and a *sinkError. It returns
// how many the sink took.
func (p *pipeline) deliverMetrics(ms []etf.Metric, refused func(i int, err error)) int {
	accepted := 0
	if p.batch == nil {
		for i := range ms {
			if err := p.sink.Deliver(MetricRecord(ms[i])); err != nil {
				err = &sinkError{err}
				p.refuse(err)
				refused(i, err)
				continue
			}
			accepted++
		}
	} else {
		for done := 0; done < len(ms); {
			n, err := p.batch.DeliverMetrics(ms[done:])
			n = min(max(n, 0), len(ms)-done)
			accepted += n
			done += n
			if done == len(ms) {
				break
			}
			if err == nil {
				err = fmt.Errorf("ingest: the sink took %d of %d metrics and gave no reason", n, len(ms)-done+n)
			}
			err = &sinkError{err}
			p.refuse(err)
			refused(done, err)
			done++
		}
	}
	p.accepted.Add(float64(accepted))
	return accepted
}

// deliverAlert validates a and hands it to the sink.
func (p *pipeline) deliverAlert(a etf.Alert) error {
	if err := a.Validate(p.limits); err != nil {
		p.refuse(err)
		return err
	}
	return p.deliver(AlertRecord(a))
}

func (p *pipeline) deliver(rec Record) error {
	if err := p.sink.Deliver(rec); err != nil {
		err = &sinkError{err}
		p.refuse(err)
		return err
	}
	p.accepted.Inc()
	return nil
}

// refuse counts one refused record.
func (p *pipeline) refuse(err error) {
	p.counters.refused.WithLabelValues(p.kind, reasonOf(err)).Inc()
}

// refuseRequest counts one refused request, packet, scrape or collection.
func (p *pipeline) refuseRequest(err error) {
	p.counters.requestsRefused.WithLabelValues(p.kind, reasonOf(err)).Inc()
}

// warn logs err at warning level, within the rate limit, with the string fields kv (key, value, ...).
func (p *pipeline) warn(msg string, err error, kv ...string) {
	ev := p.log.Warn()
	if ev == nil { // logging disabled
		return
	}
	ok, suppressed := p.sampler.allow()
	if !ok {
		ev.Discard()
		return
	}
	ev = ev.Err(err).Str("reason", reasonOf(err))
	for i := 0; i+1 < len(kv); i += 2 {
		ev = ev.Str(kv[i], kv[i+1])
	}
	if suppressed > 0 {
		ev = ev.Int("suppressed", suppressed)
	}
	ev.Msg(msg)
}

// counters are the ingest counters; see docs/ingest.md for their names.
type counters struct {
	accepted        *prometheus.CounterVec // source
	refused         *prometheus.CounterVec // source, reason
	requestsRefused *prometheus.CounterVec // source, reason
}

func newCounters(reg prometheus.Registerer) (*counters, error) {
	c := &counters{
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "pharos", Subsystem: "ingest", Name: "records_accepted_total",
			Help: "Records validated and handed to the sink, by source kind.",
		}, []string{"source"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "pharos", Subsystem: "ingest", Name: "records_refused_total",
			Help: "Records refused (invalid, malformed or not taken by the sink), by source kind and reason.",
		}, []string{"source", "reason"}),
		requestsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "pharos", Subsystem: "ingest", Name: "requests_refused_total",
			Help: "Whole HTTP requests, StatsD packets, scrapes or host collections refused or failed, by source kind and reason.",
		}, []string{"source", "reason"}),
	}
	var err error
	if c.accepted, err = registerCounterVec(reg, c.accepted); err != nil {
		return nil, err
	}
	if c.refused, err = registerCounterVec(reg, c.refused); err != nil {
		return nil, err
	}
	if c.requestsRefused, err = registerCounterVec(reg, c.requestsRefused); err != nil {
		return nil, err
	}
	return c, nil
}

// registerCounterVec registers v with reg, or returns the identical vector already registered there.
func registerCounterVec(reg prometheus.Registerer, v *prometheus.CounterVec) (*prometheus.CounterVec, error) {
	if reg == nil {
		return v, nil
	}
	err := reg.Register(v)
	if err == nil {
		return v, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
			return existing, nil
		}
	}
	return nil, fmt.Errorf("ingest: register counters: %w", err)
}

// registerCounter registers c with reg, or returns the identical counter already registered there.
func registerCounter(reg prometheus.Registerer, c prometheus.Counter) (prometheus.Counter, error) {
	if reg == nil {
		return c, nil
	}
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(prometheus.Counter); ok {
			return existing, nil
		}
	}
	return nil, fmt.Errorf("ingest: register counter: %w", err)
}

// logSampler lets through at most burst messages per period and counts the others.
type logSampler struct {
	now    func() time.Time
	burst  int
	period time.Duration

	mu          sync.Mutex
	windowStart time.Time
	inWindow    int
	suppressed  int
}

// allow reports whether a message may be logged now and, if so, how many were suppressed since the
// last one that was.
func (s *logSampler) allow() (ok bool, suppressed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.windowStart.IsZero() || now.Sub(s.windowStart) >= s.period || now.Before(s.windowStart) {
		s.windowStart = now
		s.inWindow = 0
	}
	if s.inWindow >= s.burst {
		s.suppressed++
		return false, 0
	}
	s.inWindow++
	suppressed, s.suppressed = s.suppressed, 0
	return true, suppressed
}
