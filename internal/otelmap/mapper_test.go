package otelmap_test

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/internal/otelmap"
)

// kv is a list of attributes in order, duplicates allowed (as OTLP's bytes allow).
type kv [][2]string

func (a kv) Len() int { return len(a) }

func (a kv) Range(f func(k, v string) bool) {
	for _, p := range a {
		if !f(p[0], p[1]) {
			return
		}
	}
}

var fixedNow = time.UnixMilli(1_800_000_000_000)

func newMapper(o otelmap.Options) *otelmap.Mapper {
	o.Now = func() time.Time { return fixedNow }
	return otelmap.New(o)
}

func line(m etf.Metric) string {
	return fmt.Sprintf("%s %s %v %v %s %d", m.Name, m.Kind, m.Value, m.Tags, m.Source, m.TimestampMs)
}

func lines(ms []etf.Metric) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = line(m)
	}
	return out
}

func expectLines(t *testing.T, got []etf.Metric, want ...string) {
	t.Helper()
	g := lines(got)
	if strings.Join(g, "\n") != strings.Join(want, "\n") {
		t.Fatalf("records:\n%s\nwant:\n%s", strings.Join(g, "\n"), strings.Join(want, "\n"))
	}
}

const ts = uint64(1_700_000_000_123_456_789) // ns; 1700000000123 ms

func TestResourceSourceAndTags(t *testing.T) {
	m := newMapper(otelmap.Options{DefaultSource: "dflt"})
	res := m.Resource(kv{{"telemetry.sdk.name", "opentelemetry"}, {"host.name", "h1"}, {"service.name", "api"}, {"env", "prod"}})
	b := m.NewBatch()
	b.Gauge(otelmap.Point{Metric: "g", Resource: &res, Attrs: kv{{"env", "dev"}, {"a", "1"}}, TimeUnixNano: ts}, 1)
	b.Gauge(otelmap.Point{Metric: "h", Resource: &res, TimeUnixNano: 0}, 2)
	empty := m.Resource(kv{{"service.name", ""}})
	b.Gauge(otelmap.Point{Metric: "i", Resource: &empty, TimeUnixNano: ts}, 3)
	expectLines(t, b.Records,
		"g gauge 1 [{env dev} {a 1} {host.name h1}] api 1700000000123",
		"h gauge 2 [{host.name h1} {env prod}] api 1800000000000",
		"i gauge 3 [] dflt 1700000000123")
}

func TestSums(t *testing.T) {
	m := newMapper(otelmap.Options{})
	res := m.Resource(nil)
	b := m.NewBatch()
	p := otelmap.Point{Metric: "s", Resource: &res, TimeUnixNano: ts}
	b.Sum(p, 5, true, false)
	b.Sum(p, 2, true, true)
	b.Sum(p, -3, false, false)
	b.Sum(p, -1, false, true)
	expectLines(t, b.Records,
		"s counter 5 [] unknown_service 1700000000123",
		"s counter 2 [] unknown_service 1700000000123",
		"s gauge -3 [] unknown_service 1700000000123")
	if b.Points != 4 || b.Refused != 1 || b.ByReason[otelmap.ReasonUnsupported] != 1 || !errors.Is(b.Err(), otelmap.ErrDeltaUpDown) {
		t.Fatalf("points %d refused %d %v %v", b.Points, b.Refused, b.ByReason, b.Err())
	}
	if len(b.Ends) != 3 || b.Ends[2] != 3 {
		t.Fatalf("ends %v", b.Ends)
	}
}

func TestHistogramWithoutSumOrBuckets(t *testing.T) {
	m := newMapper(otelmap.Options{})
	res := m.Resource(kv{{"service.name", "svc"}})
	b := m.NewBatch()
	b.Histogram(otelmap.Point{Metric: "h", Resource: &res, Attrs: kv{{"k", "v"}}, TimeUnixNano: ts},
		otelmap.HistogramPoint{Count: 4, Bounds: []float64{1e-05, 2.5}})
	expectLines(t, b.Records,
		"h_bucket histogram 0 [{k v} {le 1e-05}] svc 1700000000123",
		"h_bucket histogram 0 [{k v} {le 2.5}] svc 1700000000123",
		"h_bucket histogram 4 [{k v} {le +Inf}] svc 1700000000123",
		"h_count histogram 4 [{k v}] svc 1700000000123")
}

func TestExpHistogramNegativeZeroPositive(t *testing.T) {
	m := newMapper(otelmap.Options{})
	res := m.Resource(nil)
	b := m.NewBatch()
	// Scale 1: base sqrt(2). Negative offset -1: buckets -1 and 0 hold |v| in (2^-0.5, 1] and
	// (1, 2^0.5]; positive offset 2: bucket 2 holds (2, 2^1.5], bucket 3 is empty, bucket 4
	// holds (4, 2^2.5].
	b.ExpHistogram(otelmap.Point{Metric: "e", Resource: &res, TimeUnixNano: ts}, otelmap.ExpHistogramPoint{
		Count: 9, Sum: 3, HasSum: true, Scale: 1, ZeroCount: 2, ZeroThreshold: 0.001,
		NegOffset: -1, Negative: []uint64{1, 2}, PosOffset: 2, Positive: []uint64{3, 0, 1}})
	le := func(v float64) string { return otelmap.FormatBound(v) }
	expectLines(t, b.Records,
		"e_bucket histogram 2 [{le -1}] unknown_service 1700000000123",
		"e_bucket histogram 3 [{le "+le(-math.Exp2(-0.5))+"}] unknown_service 1700000000123",
		"e_bucket histogram 5 [{le 0.001}] unknown_service 1700000000123",
		"e_bucket histogram 8 [{le "+le(math.Pow(2, 1.5))+"}] unknown_service 1700000000123",
		"e_bucket histogram 9 [{le "+le(math.Pow(2, 2.5))+"}] unknown_service 1700000000123",
		"e_bucket histogram 9 [{le +Inf}] unknown_service 1700000000123",
		"e_sum histogram 3 [] unknown_service 1700000000123",
		"e_count histogram 9 [] unknown_service 1700000000123")
}

func TestSummary(t *testing.T) {
	m := newMapper(otelmap.Options{})
	res := m.Resource(nil)
	b := m.NewBatch()
	b.Summary(otelmap.Point{Metric: "rpc", Resource: &res, TimeUnixNano: ts}, otelmap.SummaryPoint{Count: 10, Sum: 4.5,
		Quantiles: []otelmap.Quantile{{Quantile: 0.5, Value: 0.3}, {Quantile: 0.99, Value: 1.2}}})
	expectLines(t, b.Records,
		"rpc gauge 0.3 [{quantile 0.5}] unknown_service 1700000000123",
		"rpc gauge 1.2 [{quantile 0.99}] unknown_service 1700000000123",
		"rpc_sum counter 4.5 [] unknown_service 1700000000123",
		"rpc_count counter 10 [] unknown_service 1700000000123")
}

// Every refusal reason, each point beside a good one that goes through.
func TestRefusalsByReason(t *testing.T) {
	m := newMapper(otelmap.Options{MaxBuckets: 4})
	res := m.Resource(kv{{"service.name", "svc"}})
	many := make(kv, 65)
	for i := range many {
		many[i] = [2]string{fmt.Sprintf("k%d", i), "v"}
	}
	hugeRes := m.Resource(many) // 65 tags on the resource: kept to 64, every point refused
	for _, tc := range []struct {
		name   string
		add    func(b *otelmap.Batch)
		reason string
	}{
		{"NaN", func(b *otelmap.Batch) { b.Gauge(otelmap.Point{Metric: "x", Resource: &res}, math.NaN()) }, otelmap.ReasonNonFinite},
		{"infinite sum", func(b *otelmap.Batch) {
			b.Histogram(otelmap.Point{Metric: "x", Resource: &res}, otelmap.HistogramPoint{Count: 1, Sum: math.Inf(1), HasSum: true})
		}, otelmap.ReasonNonFinite},
		{"NaN bound", func(b *otelmap.Batch) {
			b.Histogram(otelmap.Point{Metric: "x", Resource: &res}, otelmap.HistogramPoint{Count: 1, Bounds: []float64{math.NaN()}, Counts: []uint64{0, 1}})
		}, otelmap.ReasonNonFinite},
		{"65 attributes", func(b *otelmap.Batch) { b.Gauge(otelmap.Point{Metric: "x", Resource: &res, Attrs: many}, 1) }, otelmap.ReasonTooManyTags},
		{"65 resource attributes", func(b *otelmap.Batch) { b.Gauge(otelmap.Point{Metric: "x", Resource: &hugeRes}, 1) }, otelmap.ReasonTooManyTags},
		{"long name", func(b *otelmap.Batch) { b.Gauge(otelmap.Point{Metric: strings.Repeat("n", 256), Resource: &res}, 1) }, otelmap.ReasonTooLong},
		{"long value", func(b *otelmap.Batch) {
			b.Gauge(otelmap.Point{Metric: "x", Resource: &res, Attrs: kv{{"k", strings.Repeat("v", 1025)}}}, 1)
		}, otelmap.ReasonTooLong},
		{"duplicate key", func(b *otelmap.Batch) {
			b.Gauge(otelmap.Point{Metric: "x", Resource: &res, Attrs: kv{{"k", "1"}, {"k", "2"}}}, 1)
		}, otelmap.ReasonInvalid},
		{"bad UTF-8", func(b *otelmap.Batch) { b.Gauge(otelmap.Point{Metric: "x\xff", Resource: &res}, 1) }, otelmap.ReasonInvalid},
		{"empty name", func(b *otelmap.Batch) { b.Gauge(otelmap.Point{Metric: "", Resource: &res}, 1) }, otelmap.ReasonInvalid},
		{"le attribute", func(b *otelmap.Batch) {
			b.Histogram(otelmap.Point{Metric: "x", Resource: &res, Attrs: kv{{"le", "1"}}}, otelmap.HistogramPoint{Count: 1})
		}, otelmap.ReasonInvalid},
		{"no value", func(b *otelmap.Batch) { b.Gauge(otelmap.Point{Metric: "x", Resource: &res, NoValue: true}, 0) }, otelmap.ReasonNoValue},
		{"delta up-down", func(b *otelmap.Batch) { b.Sum(otelmap.Point{Metric: "x", Resource: &res}, 1, false, true) }, otelmap.ReasonUnsupported},
		{"counts and bounds", func(b *otelmap.Batch) {
			b.Histogram(otelmap.Point{Metric: "x", Resource: &res}, otelmap.HistogramPoint{Count: 1, Bounds: []float64{1}, Counts: []uint64{1}})
		}, otelmap.ReasonMalformed},
		{"empty type", func(b *otelmap.Batch) { b.Malformed(otelmap.Point{Metric: "x", Resource: &res}, "empty") }, otelmap.ReasonMalformed},
		{"too many bounds", func(b *otelmap.Batch) {
			b.Histogram(otelmap.Point{Metric: "x", Resource: &res}, otelmap.HistogramPoint{Count: 1, Bounds: []float64{1, 2, 3, 4, 5}})
		}, otelmap.ReasonTooMany},
		{"too many exponential buckets", func(b *otelmap.Batch) {
			b.ExpHistogram(otelmap.Point{Metric: "x", Resource: &res}, otelmap.ExpHistogramPoint{Count: 5, Positive: []uint64{1, 1, 1}, Negative: []uint64{1, 1}})
		}, otelmap.ReasonTooMany},
		{"too many quantiles", func(b *otelmap.Batch) {
			b.Summary(otelmap.Point{Metric: "x", Resource: &res}, otelmap.SummaryPoint{Quantiles: make([]otelmap.Quantile, 5)})
		}, otelmap.ReasonTooMany},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := m.NewBatch()
			b.Gauge(otelmap.Point{Metric: "good", Resource: &res, TimeUnixNano: ts}, 1)
			tc.add(b)
			b.Gauge(otelmap.Point{Metric: "good2", Resource: &res, TimeUnixNano: ts}, 2)
			if b.Points != 3 || b.Refused != 1 || b.ByReason[tc.reason] != 1 {
				t.Fatalf("points %d refused %d by %v, want reason %s; %v", b.Points, b.Refused, b.ByReason, tc.reason, b.Err())
			}
			if len(b.Records) != 2 || b.Records[0].Name != "good" || b.Records[1].Name != "good2" || len(b.Ends) != 2 {
				t.Fatalf("records %v, ends %v", lines(b.Records), b.Ends)
			}
			var pe *otelmap.PointError
			if !errors.As(b.Err(), &pe) || pe.Metric == "" && tc.name != "empty name" {
				t.Fatalf("error %v", b.Err())
			}
			if !strings.Contains(b.Message(), "1 of 3 data points refused") {
				t.Fatalf("message %q", b.Message())
			}
		})
	}
}
