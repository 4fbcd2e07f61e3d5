package otelexport

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/pharos-node/pharos-node/internal/otelmap"
)

// The SDK's side of the mapping: metricdata walked into an otelmap.Batch. ingest/otlp walks
// OTLP's pdata into the same Batch; docs/otel.md is the mapping both follow.

// mapResourceMetrics appends every point of rm to b.
func mapResourceMetrics(m *otelmap.Mapper, b *otelmap.Batch, rm *metricdata.ResourceMetrics) {
	if rm == nil {
		return
	}
	var res otelmap.Resource
	if rm.Resource != nil {
		res = m.Resource(setAttrs{rm.Resource.Set()})
	} else {
		res = m.Resource(nil)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, md := range sm.Metrics {
			mapMetric(b, &res, md)
		}
	}
}

func mapMetric(b *otelmap.Batch, res *otelmap.Resource, md metricdata.Metrics) {
	switch d := md.Data.(type) {
	case metricdata.Gauge[int64]:
		gauge(b, res, md.Name, d)
	case metricdata.Gauge[float64]:
		gauge(b, res, md.Name, d)
	case metricdata.Sum[int64]:
		sum(b, res, md.Name, d)
	case metricdata.Sum[float64]:
		sum(b, res, md.Name, d)
	case metricdata.Histogram[int64]:
		histogram(b, res, md.Name, d)
	case metricdata.Histogram[float64]:
		histogram(b, res, md.Name, d)
	case metricdata.ExponentialHistogram[int64]:
		expHistogram(b, res, md.Name, d)
	case metricdata.ExponentialHistogram[float64]:
		expHistogram(b, res, md.Name, d)
	case metricdata.Summary:
		for i, dp := range d.DataPoints {
			qs := make([]otelmap.Quantile, len(dp.QuantileValues))
			for j, q := range dp.QuantileValues {
				qs[j] = otelmap.Quantile{Quantile: q.Quantile, Value: q.Value}
			}
			b.Summary(point(res, md.Name, i, dp.Attributes, dp.Time.UnixNano()),
				otelmap.SummaryPoint{Count: dp.Count, Sum: dp.Sum, Quantiles: qs})
		}
	default:
		b.Malformed(otelmap.Point{Metric: md.Name, Resource: res}, "unknown data type")
	}
}

func point(res *otelmap.Resource, name string, i int, attrs attribute.Set, unixNano int64) otelmap.Point {
	var ts uint64
	if unixNano > 0 {
		ts = uint64(unixNano)
	}
	return otelmap.Point{Metric: name, Index: i, Resource: res, Attrs: setAttrs{&attrs}, TimeUnixNano: ts}
}

func gauge[N int64 | float64](b *otelmap.Batch, res *otelmap.Resource, name string, d metricdata.Gauge[N]) {
	for i, dp := range d.DataPoints {
		b.Gauge(point(res, name, i, dp.Attributes, dp.Time.UnixNano()), float64(dp.Value))
	}
}

func sum[N int64 | float64](b *otelmap.Batch, res *otelmap.Resource, name string, d metricdata.Sum[N]) {
	delta := d.Temporality == metricdata.DeltaTemporality
	for i, dp := range d.DataPoints {
		b.Sum(point(res, name, i, dp.Attributes, dp.Time.UnixNano()), float64(dp.Value), d.IsMonotonic, delta)
	}
}

func histogram[N int64 | float64](b *otelmap.Batch, res *otelmap.Resource, name string, d metricdata.Histogram[N]) {
	for i, dp := range d.DataPoints {
		h := otelmap.HistogramPoint{Count: dp.Count, Sum: float64(dp.Sum), HasSum: true,
			Bounds: dp.Bounds, Counts: dp.BucketCounts}
		if v, ok := dp.Min.Value(); ok {
			h.Min, h.HasMin = float64(v), true
		}
		if v, ok := dp.Max.Value(); ok {
			h.Max, h.HasMax = float64(v), true
		}
		b.Histogram(point(res, name, i, dp.Attributes, dp.Time.UnixNano()), h)
	}
}

func expHistogram[N int64 | float64](b *otelmap.Batch, res *otelmap.Resource, name string, d metricdata.ExponentialHistogram[N]) {
	for i, dp := range d.DataPoints {
		h := otelmap.ExpHistogramPoint{Count: dp.Count, Sum: float64(dp.Sum), HasSum: true, Scale: dp.Scale,
			ZeroCount: dp.ZeroCount, ZeroThreshold: dp.ZeroThreshold,
			PosOffset: dp.PositiveBucket.Offset, Positive: dp.PositiveBucket.Counts,
			NegOffset: dp.NegativeBucket.Offset, Negative: dp.NegativeBucket.Counts}
		if v, ok := dp.Min.Value(); ok {
			h.Min, h.HasMin = float64(v), true
		}
		if v, ok := dp.Max.Value(); ok {
			h.Max, h.HasMax = float64(v), true
		}
		b.ExpHistogram(point(res, name, i, dp.Attributes, dp.Time.UnixNano()), h)
	}
}

// setAttrs is an attribute.Set as otelmap.Attributes (the SDK's sets are sorted by key and
// hold each key once).
type setAttrs struct{ s *attribute.Set }

func (a setAttrs) Len() int { return a.s.Len() }

func (a setAttrs) Range(f func(key, value string) bool) {
	it := a.s.Iter()
	for it.Next() {
		kv := it.Attribute()
		if !f(string(kv.Key), ValueString(kv.Value)) {
			return
		}
	}
}

// ValueString is the string form of an attribute value in a tag, the same as OTLP's pdata
// gives (pcommon.Value.AsString): strings as they are, booleans and integers in decimal,
// doubles as JSON writes them, bytes in base64, arrays and maps as JSON.
func ValueString(v attribute.Value) string {
	switch v.Type() {
	case attribute.STRING:
		return v.AsString()
	case attribute.BOOL:
		return strconv.FormatBool(v.AsBool())
	case attribute.INT64:
		return strconv.FormatInt(v.AsInt64(), 10)
	case attribute.FLOAT64:
		return jsonFloat(v.AsFloat64())
	case attribute.BYTESLICE:
		return base64.StdEncoding.EncodeToString(v.AsByteSlice())
	case attribute.EMPTY:
		return ""
	}
	return jsonText(rawValue(v))
}

// rawValue is v as the Go value encoding/json writes as OTLP's JSON form of it.
func rawValue(v attribute.Value) any {
	switch v.Type() {
	case attribute.BYTESLICE:
		return base64.StdEncoding.EncodeToString(v.AsByteSlice())
	case attribute.SLICE:
		out := make([]any, 0, len(v.AsSlice()))
		for _, e := range v.AsSlice() {
			out = append(out, rawValue(e))
		}
		return out
	case attribute.MAP:
		out := make(map[string]any, len(v.AsMap()))
		for _, kv := range v.AsMap() {
			out[string(kv.Key)] = rawValue(kv.Value)
		}
		return out
	case attribute.EMPTY:
		return nil
	}
	return v.AsInterface()
}

// jsonFloat writes f as pdata does: as encoding/json would, "NaN", "Infinity", "-Infinity".
// (Inside an array or map a non-finite double makes the whole value "", as in pdata.)
func jsonFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return jsonText(f)
}

func jsonText(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimRight(buf.String(), "\n")
}
