package otlpsink

import (
	"errors"
	"slices"
	"time"

	collogspb "go.opentelemetry.io/proto/slim/otlp/collector/logs/v1"
	colmetricspb "go.opentelemetry.io/proto/slim/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/slim/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/slim/otlp/logs/v1"
	metricspb "go.opentelemetry.io/proto/slim/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/slim/otlp/resource/v1"

	"github.com/pharos-node/pharos-node/etf"
)

// The mapping back from WIRE.md records to OTLP (docs/otel.md, "The OTLP transport"): one
// record, one data point or log record.
//
//	metric gauge      Gauge point, the value as a double
//	metric counter    Sum point, Options.Temporality, monotonic unless the value is negative
//	metric histogram  Gauge point: one series of a Prometheus-style histogram (NAME_bucket{le},
//	                  NAME_sum, NAME_count, ...) or a StatsD observation, name and tags as they are
//	alert             LogRecord on /v1/logs: event_name and attribute alert.name the alert's
//	                  name, body the message, severity info/warning/critical as INFO/WARN/ERROR
//
// Tags become string attributes in their order, source the resource's service.name,
// timestamp_ms the point's time_unix_nano. Consecutive records of one source share a resource,
// consecutive points of one name, kind and monotonicity a Metric: order is kept.

// ScopeName is the instrumentation scope every request names.
const ScopeName = "github.com/pharos-node/pharos-node/otlpsink"

// AttrAlertName is the attribute holding an alert's name (also its event_name).
const AttrAlertName = "alert.name"

// signal is what a record becomes.
type signal uint8

const (
	signalNone    signal = iota // not a record: counted, dropped
	signalMetrics               // a data point on /v1/metrics
	signalLogs                  // a log record on /v1/logs
)

func (s signal) String() string {
	if s == signalLogs {
		return "logs"
	}
	return "metrics"
}

// request is one request's content: the records it covers, from the front of what next was
// given, decodable or not.
type request struct {
	sig         signal
	records     int // records covered
	points      int // data points or log records in the request
	undecodable int // records covered that are neither a metric nor an alert
	metrics     *colmetricspb.ExportMetricsServiceRequest
	logs        *collogspb.ExportLogsServiceRequest
}

// encoder builds requests from records. It belongs to one transport (one goroutine).
type encoder struct {
	temporality metricspb.AggregationTemporality
	scope       *commonpb.InstrumentationScope
	now         func() time.Time
	m           etf.Metric
	a           etf.Alert

	// the request being built
	rm      *metricspb.ResourceMetrics
	sm      *metricspb.ScopeMetrics
	cur     *metricspb.Metric
	curKind etf.MetricKind
	curMono bool
	rl      *logspb.ResourceLogs
	sl      *logspb.ScopeLogs
	source  string

	// What a metrics request is built of, reused from one request to the next (the previous
	// one is encoded and sent before next builds another): no allocation per point once warm.
	metrics slab[metricspb.Metric]
	gauges  slab[metricspb.Gauge]
	gaugeW  slab[metricspb.Metric_Gauge]
	sums    slab[metricspb.Sum]
	sumW    slab[metricspb.Metric_Sum]
	points  slab[metricspb.NumberDataPoint]
	doubles slab[metricspb.NumberDataPoint_AsDouble]
	kvs     slab[commonpb.KeyValue]
	vals    slab[commonpb.AnyValue]
	strs    slab[commonpb.AnyValue_StringValue]
	ptrs    []*commonpb.KeyValue // attribute lists are carved from it
}

// slab hands out zeroed values from a backing array reused after reset. A value handed out
// before the array grew stays where it was (the request holding it keeps it alive).
type slab[T any] struct {
	items []T
	n     int
}

func (s *slab[T]) next() *T {
	if s.n == len(s.items) {
		s.items = slices.Grow(s.items, max(len(s.items), 64))[:len(s.items)+1]
	}
	p := &s.items[s.n]
	s.n++
	var zero T
	*p = zero
	return p
}

func (s *slab[T]) reset() { s.n = 0 }

// reset makes every slab's values available again.
func (e *encoder) reset() {
	e.metrics.reset()
	e.gauges.reset()
	e.gaugeW.reset()
	e.sums.reset()
	e.sumW.reset()
	e.points.reset()
	e.doubles.reset()
	e.kvs.reset()
	e.vals.reset()
	e.strs.reset()
	e.ptrs = e.ptrs[:0]
}

func newEncoder(t Temporality, now func() time.Time) *encoder {
	tp := metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE
	if t == Delta {
		tp = metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA
	}
	return &encoder{temporality: tp, scope: &commonpb.InstrumentationScope{Name: ScopeName}, now: now}
}

// decode reads rec into e.m or e.a.
func (e *encoder) decode(rec []byte) signal {
	err := etf.DecodeMetric(rec, &e.m)
	if err == nil {
		return signalMetrics
	}
	if errors.Is(err, etf.ErrNotRecord) && etf.DecodeAlert(rec, &e.a) == nil {
		return signalLogs
	}
	return signalNone
}

// next builds the request for the front of recs: records of one signal (undecodable ones
// among them are skipped and counted), at most maxPoints points. It stops before a record of
// the other signal.
func (e *encoder) next(recs [][]byte, maxPoints int) request {
	var r request
	e.rm, e.sm, e.cur, e.rl, e.sl = nil, nil, nil, nil, nil
	e.reset()
	for _, rec := range recs {
		if r.points >= maxPoints {
			break
		}
		sig := e.decode(rec)
		if sig == signalNone {
			r.records++
			r.undecodable++
			continue
		}
		if r.sig == signalNone {
			r.sig = sig
		} else if sig != r.sig {
			break
		}
		if sig == signalMetrics {
			if r.metrics == nil {
				r.metrics = &colmetricspb.ExportMetricsServiceRequest{}
			}
			e.addMetric(r.metrics)
		} else {
			if r.logs == nil {
				r.logs = &collogspb.ExportLogsServiceRequest{}
			}
			e.addAlert(r.logs)
		}
		r.records++
		r.points++
	}
	return r
}

func (e *encoder) timeOf(ms int64) uint64 {
	if ms <= 0 {
		return uint64(e.now().UnixNano())
	}
	return uint64(ms) * uint64(time.Millisecond)
}

func (e *encoder) addMetric(req *colmetricspb.ExportMetricsServiceRequest) {
	m := &e.m
	if e.rm == nil || e.source != m.Source {
		e.source = m.Source
		e.sm = &metricspb.ScopeMetrics{Scope: e.scope}
		e.rm = &metricspb.ResourceMetrics{Resource: resourceOf(m.Source), ScopeMetrics: []*metricspb.ScopeMetrics{e.sm}}
		req.ResourceMetrics = append(req.ResourceMetrics, e.rm)
		e.cur = nil
	}
	mono := m.Value >= 0
	if e.cur == nil || e.cur.Name != m.Name || e.curKind != m.Kind || (m.Kind == etf.Counter && e.curMono != mono) {
		e.cur = e.metrics.next()
		e.cur.Name = m.Name
		e.curKind, e.curMono = m.Kind, mono
		if m.Kind == etf.Counter {
			sum := e.sums.next()
			sum.AggregationTemporality, sum.IsMonotonic = e.temporality, mono
			w := e.sumW.next()
			w.Sum = sum
			e.cur.Data = w
		} else {
			w := e.gaugeW.next()
			w.Gauge = e.gauges.next()
			e.cur.Data = w
		}
		e.sm.Metrics = append(e.sm.Metrics, e.cur)
	}
	v := e.doubles.next()
	v.AsDouble = m.Value
	p := e.points.next()
	p.Attributes, p.TimeUnixNano, p.Value = e.attributes(m.Tags), e.timeOf(m.TimestampMs), v
	switch d := e.cur.Data.(type) {
	case *metricspb.Metric_Sum:
		d.Sum.DataPoints = append(d.Sum.DataPoints, p)
	case *metricspb.Metric_Gauge:
		d.Gauge.DataPoints = append(d.Gauge.DataPoints, p)
	}
}

func (e *encoder) addAlert(req *collogspb.ExportLogsServiceRequest) {
	a := &e.a
	if e.rl == nil || e.source != a.Source {
		e.source = a.Source
		e.sl = &logspb.ScopeLogs{Scope: e.scope}
		e.rl = &logspb.ResourceLogs{Resource: resourceOf(a.Source), ScopeLogs: []*logspb.ScopeLogs{e.sl}}
		req.ResourceLogs = append(req.ResourceLogs, e.rl)
	}
	attrs := attributes(a.Tags, 1)
	named := false
	for _, t := range a.Tags {
		named = named || t.Key == AttrAlertName
	}
	if !named {
		attrs = append(attrs, stringKV(AttrAlertName, a.Name))
	}
	t := e.timeOf(a.TimestampMs)
	e.sl.LogRecords = append(e.sl.LogRecords, &logspb.LogRecord{
		TimeUnixNano:         t,
		ObservedTimeUnixNano: t,
		SeverityNumber:       severityNumber(a.Severity),
		SeverityText:         a.Severity.String(),
		Body:                 &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: a.Message}},
		Attributes:           attrs,
		EventName:            a.Name,
	})
}

func severityNumber(s etf.Severity) logspb.SeverityNumber {
	switch s {
	case etf.Info:
		return logspb.SeverityNumber_SEVERITY_NUMBER_INFO
	case etf.Warning:
		return logspb.SeverityNumber_SEVERITY_NUMBER_WARN
	case etf.Critical:
		return logspb.SeverityNumber_SEVERITY_NUMBER_ERROR
	}
	return logspb.SeverityNumber_SEVERITY_NUMBER_UNSPECIFIED
}

// ServiceName is the resource attribute a record's source becomes.
const ServiceName = "service.name"

func resourceOf(source string) *resourcepb.Resource {
	if source == "" {
		return &resourcepb.Resource{}
	}
	return &resourcepb.Resource{Attributes: []*commonpb.KeyValue{stringKV(ServiceName, source)}}
}

// attributes turns tags into string attributes, from the slabs.
func (e *encoder) attributes(tags []etf.Tag) []*commonpb.KeyValue {
	if len(tags) == 0 {
		return nil
	}
	if cap(e.ptrs)-len(e.ptrs) < len(tags) {
		e.ptrs = make([]*commonpb.KeyValue, 0, max(2*cap(e.ptrs), 1024, len(tags)))
	}
	start := len(e.ptrs)
	for _, t := range tags {
		str := e.strs.next()
		str.StringValue = t.Value
		val := e.vals.next()
		val.Value = str
		kv := e.kvs.next()
		kv.Key, kv.Value = t.Key, val
		e.ptrs = append(e.ptrs, kv)
	}
	return e.ptrs[start:len(e.ptrs):len(e.ptrs)]
}

// attributes turns tags into string attributes, with room for extra more.
func attributes(tags []etf.Tag, extra int) []*commonpb.KeyValue {
	if len(tags)+extra == 0 {
		return nil
	}
	kvs := make([]commonpb.KeyValue, len(tags))
	vals := make([]commonpb.AnyValue, len(tags))
	strs := make([]commonpb.AnyValue_StringValue, len(tags))
	out := make([]*commonpb.KeyValue, len(tags), len(tags)+extra)
	for i, t := range tags {
		strs[i].StringValue = t.Value
		vals[i].Value = &strs[i]
		kvs[i].Key, kvs[i].Value = t.Key, &vals[i]
		out[i] = &kvs[i]
	}
	return out
}

func stringKV(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}
