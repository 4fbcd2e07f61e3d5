package otlp

import (
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/pharos-node/pharos-node/internal/otelmap"
)

// OTLP's side of the mapping: pdata walked into an otelmap.Batch. otelexport walks the Go
// SDK's metricdata into the same Batch; docs/otel.md is the mapping both follow.

// errTooManyRecords: the request maps to more records than Options.MaxRecords.
var errTooManyRecords = errors.New("otlp: request maps to too many records")

// mapMetrics appends every point of md to b; past maxRecords records it stops with
// errTooManyRecords.
func mapMetrics(m *otelmap.Mapper, b *otelmap.Batch, md pmetric.Metrics, maxRecords int) error {
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		res := m.Resource(mapAttrs(rm.Resource().Attributes()))
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				mapMetric(b, &res, ms.At(k))
				if len(b.Records) > maxRecords {
					return fmt.Errorf("%w: more than %d", errTooManyRecords, maxRecords)
				}
			}
		}
	}
	return nil
}

func point(res *otelmap.Resource, name string, i int, attrs pcommon.Map, ts pcommon.Timestamp, flags pmetric.DataPointFlags) otelmap.Point {
	return otelmap.Point{Metric: name, Index: i, Resource: res, Attrs: mapAttrs(attrs),
		TimeUnixNano: uint64(ts), NoValue: flags.NoRecordedValue()}
}

func mapMetric(b *otelmap.Batch, res *otelmap.Resource, md pmetric.Metric) {
	name := md.Name()
	switch md.Type() {
	case pmetric.MetricTypeGauge:
		numbers(b, res, name, md.Gauge().DataPoints(), func(p otelmap.Point, v float64) { b.Gauge(p, v) })
	case pmetric.MetricTypeSum:
		s := md.Sum()
		monotonic, delta := s.IsMonotonic(), s.AggregationTemporality() == pmetric.AggregationTemporalityDelta
		numbers(b, res, name, s.DataPoints(), func(p otelmap.Point, v float64) { b.Sum(p, v, monotonic, delta) })
	case pmetric.MetricTypeHistogram:
		dps := md.Histogram().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			b.Histogram(point(res, name, i, dp.Attributes(), dp.Timestamp(), dp.Flags()), otelmap.HistogramPoint{
				Count: dp.Count(), Sum: dp.Sum(), HasSum: dp.HasSum(), Min: dp.Min(), HasMin: dp.HasMin(),
				Max: dp.Max(), HasMax: dp.HasMax(), Bounds: dp.ExplicitBounds().AsRaw(), Counts: dp.BucketCounts().AsRaw()})
		}
	case pmetric.MetricTypeExponentialHistogram:
		dps := md.ExponentialHistogram().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			b.ExpHistogram(point(res, name, i, dp.Attributes(), dp.Timestamp(), dp.Flags()), otelmap.ExpHistogramPoint{
				Count: dp.Count(), Sum: dp.Sum(), HasSum: dp.HasSum(), Min: dp.Min(), HasMin: dp.HasMin(),
				Max: dp.Max(), HasMax: dp.HasMax(), Scale: dp.Scale(), ZeroCount: dp.ZeroCount(),
				ZeroThreshold: dp.ZeroThreshold(),
				PosOffset:     dp.Positive().Offset(), Positive: dp.Positive().BucketCounts().AsRaw(),
				NegOffset: dp.Negative().Offset(), Negative: dp.Negative().BucketCounts().AsRaw()})
		}
	case pmetric.MetricTypeSummary:
		dps := md.Summary().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			qv := dp.QuantileValues()
			qs := make([]otelmap.Quantile, qv.Len())
			for j := range qs {
				qs[j] = otelmap.Quantile{Quantile: qv.At(j).Quantile(), Value: qv.At(j).Value()}
			}
			b.Summary(point(res, name, i, dp.Attributes(), dp.Timestamp(), dp.Flags()),
				otelmap.SummaryPoint{Count: dp.Count(), Sum: dp.Sum(), Quantiles: qs})
		}
	default:
		b.Malformed(otelmap.Point{Metric: name, Resource: res}, "metric without data (empty type)")
	}
}

func numbers(b *otelmap.Batch, res *otelmap.Resource, name string, dps pmetric.NumberDataPointSlice, f func(otelmap.Point, float64)) {
	for i := 0; i < dps.Len(); i++ {
		dp := dps.At(i)
		p := point(res, name, i, dp.Attributes(), dp.Timestamp(), dp.Flags())
		switch dp.ValueType() {
		case pmetric.NumberDataPointValueTypeInt:
			f(p, float64(dp.IntValue()))
		case pmetric.NumberDataPointValueTypeDouble:
			f(p, dp.DoubleValue())
		default:
			if p.NoValue {
				f(p, 0) // refused as such (no_value)
				continue
			}
			b.Malformed(p, "number data point without a value")
		}
	}
}

// mapAttrs is a pcommon.Map as otelmap.Attributes; values in pcommon.Value.AsString's form.
type mapAttrs pcommon.Map

func (a mapAttrs) Len() int { return pcommon.Map(a).Len() }

func (a mapAttrs) Range(f func(key, value string) bool) {
	pcommon.Map(a).Range(func(k string, v pcommon.Value) bool { return f(k, v.AsString()) })
}
