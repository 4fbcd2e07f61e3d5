package otlpsink

import (
	"errors"
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
		e.cur = &metricspb.Metric{Name: m.Name}
		e.curKind, e.curMono = m.Kind, mono
		if m.Kind == etf.Counter {
			e.cur.Data = &metricspb.Metric_Sum{Sum: &metricspb.Sum{AggregationTemporality: e.temporality, IsMonotonic: mono}}
		} else {
			e.cur.Data = &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{}}
		}
		e.sm.Metrics = append(e.sm.Metrics, e.cur)
	}
	p := &metricspb.NumberDataPoint{
		Attributes:   attributes(m.Tags, 0),
		TimeUnixNano: e.timeOf(m.TimestampMs),
		Value:        &metricspb.NumberDataPoint_AsDouble{AsDouble: m.Value},
	}
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
