package otlp

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	colmetricspb "go.opentelemetry.io/proto/slim/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/slim/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/slim/otlp/metrics/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/pharos-node/pharos-node/internal/otelmap"
)

// OTLP's side of the mapping: an ExportMetricsServiceRequest (OTLP's generated protobuf types,
// go.opentelemetry.io/proto/slim/otlp) walked into an otelmap.Batch. otelexport walks the Go
// SDK's metricdata into the same Batch; docs/otel.md is the mapping both follow.

// errTooManyRecords: the request maps to more records than Options.MaxRecords.
var errTooManyRecords = errors.New("otlp: request maps to too many records")

// decodeRequest reads a request body: protobuf, or OTLP/JSON through protojson, which reads
// OTLP/JSON's forms (lowerCamelCase names, 64-bit integers as strings or numbers, enums as
// numbers) and here ignores unknown fields, as OTLP asks of receivers.
func decodeRequest(body []byte, jsonBody bool) (*colmetricspb.ExportMetricsServiceRequest, error) {
	req := &colmetricspb.ExportMetricsServiceRequest{}
	var err error
	if jsonBody {
		err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(body, req)
	} else {
		err = proto.Unmarshal(body, req)
	}
	return req, err
}

// encodeResponse writes the answer in the request's encoding.
func encodeResponse(resp *colmetricspb.ExportMetricsServiceResponse, jsonBody bool) ([]byte, error) {
	if jsonBody {
		return protojson.Marshal(resp)
	}
	return proto.Marshal(resp)
}

// pointCount is the number of data points in req.
func pointCount(req *colmetricspb.ExportMetricsServiceRequest) int {
	n := 0
	for _, rm := range req.GetResourceMetrics() {
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				switch d := m.GetData().(type) {
				case *metricspb.Metric_Gauge:
					n += len(d.Gauge.GetDataPoints())
				case *metricspb.Metric_Sum:
					n += len(d.Sum.GetDataPoints())
				case *metricspb.Metric_Histogram:
					n += len(d.Histogram.GetDataPoints())
				case *metricspb.Metric_ExponentialHistogram:
					n += len(d.ExponentialHistogram.GetDataPoints())
				case *metricspb.Metric_Summary:
					n += len(d.Summary.GetDataPoints())
				}
			}
		}
	}
	return n
}

// mapRequest appends every point of req to b; past maxRecords records it stops with
// errTooManyRecords.
func mapRequest(m *otelmap.Mapper, b *otelmap.Batch, req *colmetricspb.ExportMetricsServiceRequest, maxRecords int) error {
	for _, rm := range req.GetResourceMetrics() {
		res := m.Resource(kvAttrs(rm.GetResource().GetAttributes()))
		for _, sm := range rm.GetScopeMetrics() {
			for _, md := range sm.GetMetrics() {
				mapMetric(b, &res, md)
				if len(b.Records) > maxRecords {
					return fmt.Errorf("%w: more than %d", errTooManyRecords, maxRecords)
				}
			}
		}
	}
	return nil
}

// noRecordedValue is OTLP's DataPointFlags FLAG_NO_RECORDED_VALUE.
const noRecordedValue = uint32(metricspb.DataPointFlags_DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK)

func point(res *otelmap.Resource, name string, i int, attrs []*commonpb.KeyValue, ts uint64, flags uint32) otelmap.Point {
	return otelmap.Point{Metric: name, Index: i, Resource: res, Attrs: kvAttrs(attrs), TimeUnixNano: ts,
		NoValue: flags&noRecordedValue != 0}
}

func mapMetric(b *otelmap.Batch, res *otelmap.Resource, md *metricspb.Metric) {
	name := md.GetName()
	switch d := md.GetData().(type) {
	case *metricspb.Metric_Gauge:
		numbers(b, res, name, d.Gauge.GetDataPoints(), func(p otelmap.Point, v float64) { b.Gauge(p, v) })
	case *metricspb.Metric_Sum:
		monotonic := d.Sum.GetIsMonotonic()
		delta := d.Sum.GetAggregationTemporality() == metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA
		numbers(b, res, name, d.Sum.GetDataPoints(), func(p otelmap.Point, v float64) { b.Sum(p, v, monotonic, delta) })
	case *metricspb.Metric_Histogram:
		for i, dp := range d.Histogram.GetDataPoints() {
			b.Histogram(point(res, name, i, dp.GetAttributes(), dp.GetTimeUnixNano(), dp.GetFlags()), otelmap.HistogramPoint{
				Count: dp.GetCount(), Sum: dp.GetSum(), HasSum: dp.Sum != nil, Min: dp.GetMin(), HasMin: dp.Min != nil,
				Max: dp.GetMax(), HasMax: dp.Max != nil, Bounds: dp.GetExplicitBounds(), Counts: dp.GetBucketCounts()})
		}
	case *metricspb.Metric_ExponentialHistogram:
		for i, dp := range d.ExponentialHistogram.GetDataPoints() {
			b.ExpHistogram(point(res, name, i, dp.GetAttributes(), dp.GetTimeUnixNano(), dp.GetFlags()), otelmap.ExpHistogramPoint{
				Count: dp.GetCount(), Sum: dp.GetSum(), HasSum: dp.Sum != nil, Min: dp.GetMin(), HasMin: dp.Min != nil,
				Max: dp.GetMax(), HasMax: dp.Max != nil, Scale: dp.GetScale(), ZeroCount: dp.GetZeroCount(),
				ZeroThreshold: dp.GetZeroThreshold(),
				PosOffset:     dp.GetPositive().GetOffset(), Positive: dp.GetPositive().GetBucketCounts(),
				NegOffset: dp.GetNegative().GetOffset(), Negative: dp.GetNegative().GetBucketCounts()})
		}
	case *metricspb.Metric_Summary:
		for i, dp := range d.Summary.GetDataPoints() {
			qs := make([]otelmap.Quantile, len(dp.GetQuantileValues()))
			for j, q := range dp.GetQuantileValues() {
				qs[j] = otelmap.Quantile{Quantile: q.GetQuantile(), Value: q.GetValue()}
			}
			b.Summary(point(res, name, i, dp.GetAttributes(), dp.GetTimeUnixNano(), dp.GetFlags()),
				otelmap.SummaryPoint{Count: dp.GetCount(), Sum: dp.GetSum(), Quantiles: qs})
		}
	default:
		b.Malformed(otelmap.Point{Metric: name, Resource: res}, "metric without data (empty type)")
	}
}

func numbers(b *otelmap.Batch, res *otelmap.Resource, name string, dps []*metricspb.NumberDataPoint, f func(otelmap.Point, float64)) {
	for i, dp := range dps {
		p := point(res, name, i, dp.GetAttributes(), dp.GetTimeUnixNano(), dp.GetFlags())
		switch v := dp.GetValue().(type) {
		case *metricspb.NumberDataPoint_AsInt:
			f(p, float64(v.AsInt))
		case *metricspb.NumberDataPoint_AsDouble:
			f(p, v.AsDouble)
		default:
			if p.NoValue {
				f(p, 0) // refused as such (no_value)
				continue
			}
			b.Malformed(p, "number data point without a value")
		}
	}
}

// kvAttrs is OTLP's attribute list as otelmap.Attributes, in its order, duplicates kept.
type kvAttrs []*commonpb.KeyValue

func (a kvAttrs) Len() int { return len(a) }

func (a kvAttrs) Range(f func(key, value string) bool) {
	for _, kv := range a {
		if !f(kv.GetKey(), valueString(kv.GetValue())) {
			return
		}
	}
}

// valueString is the string form of an attribute value in a tag (docs/otel.md), as the
// Collector's pdata writes it (pcommon.Value.AsString) and otelexport.ValueString for the SDK's
// values: strings as they are, booleans and integers in decimal, doubles as JSON writes them,
// bytes in base64, arrays and maps as JSON.
func valueString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		return jsonFloat(x.DoubleValue)
	case *commonpb.AnyValue_BytesValue:
		return base64.StdEncoding.EncodeToString(x.BytesValue)
	case nil:
		return ""
	}
	return jsonText(rawValue(v))
}

// rawValue is v as the Go value that encoding/json writes as its JSON form.
func rawValue(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	case *commonpb.AnyValue_BytesValue:
		return x.BytesValue // encoding/json writes base64
	case *commonpb.AnyValue_ArrayValue:
		out := make([]any, 0, len(x.ArrayValue.GetValues()))
		for _, e := range x.ArrayValue.GetValues() {
			out = append(out, rawValue(e))
		}
		return out
	case *commonpb.AnyValue_KvlistValue:
		out := make(map[string]any, len(x.KvlistValue.GetValues()))
		for _, kv := range x.KvlistValue.GetValues() {
			out[kv.GetKey()] = rawValue(kv.GetValue())
		}
		return out
	}
	return nil
}

// jsonFloat writes f as encoding/json does, and NaN and the infinities as "NaN", "Infinity",
// "-Infinity". (Inside an array or map a non-finite double makes the whole value "".)
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
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimRight(sb.String(), "\n")
}
