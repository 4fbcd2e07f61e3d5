package otelmap

import (
	"fmt"
	"math"
	"strconv"

	"github.com/pharos-node/pharos-node/etf"
)

// Point is what every data point has, whatever its type: the metric it belongs to and its index
// there (for errors), its resource, attributes and time.
type Point struct {
	Metric       string
	Index        int
	Resource     *Resource
	Attrs        Attributes
	TimeUnixNano uint64
	// NoValue is OTLP's NoRecordedValue flag: the point is refused (ErrNoValue).
	NoValue bool
}

// HistogramPoint is an explicit-bucket histogram point. Counts has len(Bounds)+1 entries (the
// last for the bucket above the last bound), or none.
type HistogramPoint struct {
	Count          uint64
	Sum, Min, Max  float64
	HasSum         bool
	HasMin, HasMax bool
	Bounds         []float64
	Counts         []uint64
}

// ExpHistogramPoint is an exponential histogram point: bucket Offset+i of Positive covers
// (base^(Offset+i), base^(Offset+i+1)], base = 2^(2^-Scale); Negative mirrors it below zero.
type ExpHistogramPoint struct {
	Count          uint64
	Sum, Min, Max  float64
	HasSum         bool
	HasMin, HasMax bool
	Scale          int32
	ZeroCount      uint64
	ZeroThreshold  float64
	PosOffset      int32
	Positive       []uint64
	NegOffset      int32
	Negative       []uint64
}

// Quantile is one quantile of a SummaryPoint.
type Quantile struct{ Quantile, Value float64 }

// SummaryPoint is a summary point (OTLP only; the Go SDK makes none).
type SummaryPoint struct {
	Count     uint64
	Sum       float64
	Quantiles []Quantile
}

// Suffixes of the records of a histogram or summary point.
const (
	SuffixBucket = "_bucket"
	SuffixSum    = "_sum"
	SuffixCount  = "_count"
	SuffixMin    = "_min"
	SuffixMax    = "_max"
)

// Tag keys the mapping adds.
const (
	TagLe       = "le"
	TagQuantile = "quantile"
)

// Gauge maps a Gauge point: one gauge record.
func (b *Batch) Gauge(p Point, v float64) {
	b.single(p, etf.Gauge, v)
}

// Sum maps a Sum point: a monotonic sum is one counter record (its value as exported:
// cumulative or delta); a non-monotonic one is one gauge record when cumulative, refused
// (ErrDeltaUpDown) when delta.
func (b *Batch) Sum(p Point, v float64, monotonic, delta bool) {
	if !monotonic && delta {
		b.Points++
		b.refuse(p.Metric, p.Index, ErrDeltaUpDown)
		return
	}
	kind := etf.Gauge
	if monotonic {
		kind = etf.Counter
	}
	b.single(p, kind, v)
}

func (b *Batch) single(p Point, kind etf.MetricKind, v float64) {
	tags, ts, ok := b.begin(p)
	if !ok {
		return
	}
	start := len(b.Records)
	b.Records = append(b.Records, etf.Metric{Name: p.Metric, Kind: kind, Value: v, Tags: tags,
		TimestampMs: ts, Source: p.Resource.Source})
	b.finish(p, start)
}

// Histogram maps an explicit-bucket histogram point to histogram records: NAME_bucket with an
// le tag per bound and le="+Inf" (cumulative counts, as Prometheus), NAME_sum when the point
// has a sum, NAME_count, and NAME_min, NAME_max when it has them.
func (b *Batch) Histogram(p Point, h HistogramPoint) {
	if len(h.Bounds) > b.m.maxBuckets {
		b.Points++
		b.refuse(p.Metric, p.Index, fmt.Errorf("%w: %d bounds, limit %d", ErrTooManyBuckets, len(h.Bounds), b.m.maxBuckets))
		return
	}
	if len(h.Counts) != 0 && len(h.Counts) != len(h.Bounds)+1 {
		b.Points++
		b.refuse(p.Metric, p.Index, fmt.Errorf("%w: %d bucket counts for %d bounds", ErrMalformed, len(h.Counts), len(h.Bounds)))
		return
	}
	for _, bound := range h.Bounds {
		if math.IsNaN(bound) || math.IsInf(bound, 0) {
			b.Points++
			b.refuse(p.Metric, p.Index, &etf.ValidationError{Record: "metric", Field: "explicit_bounds", Err: etf.ErrNonFinite})
			return
		}
	}
	tags, ts, ok := b.begin(p)
	if !ok {
		return
	}
	start := len(b.Records)
	buckets := make([]etf.Tag, 0, (len(tags)+1)*(len(h.Bounds)+1))
	var cum uint64
	for i, bound := range h.Bounds {
		if len(h.Counts) > 0 {
			cum += h.Counts[i]
		}
		buckets = b.bucket(buckets, p, tags, ts, FormatBound(bound), float64(cum))
	}
	b.bucket(buckets, p, tags, ts, "+Inf", float64(h.Count))
	b.stats(p, tags, ts, h.Count, h.Sum, h.HasSum, h.Min, h.HasMin, h.Max, h.HasMax)
	b.finish(p, start)
}

// ExpHistogram maps an exponential histogram point to the same records as Histogram, with one
// NAME_bucket record per bucket that holds values (negative buckets from the most negative, the
// zero bucket as le=ZeroThreshold, positive buckets up), each le the bucket's upper bound, then
// le="+Inf".
func (b *Batch) ExpHistogram(p Point, h ExpHistogramPoint) {
	if n := populated(h.Positive) + populated(h.Negative); n > b.m.maxBuckets {
		b.Points++
		b.refuse(p.Metric, p.Index, fmt.Errorf("%w: %d populated buckets, limit %d", ErrTooManyBuckets, n, b.m.maxBuckets))
		return
	}
	tags, ts, ok := b.begin(p)
	if !ok {
		return
	}
	start := len(b.Records)
	var buckets []etf.Tag
	var cum uint64
	// Negative bucket i covers [-base^(i+1), -base^i): at most -base^i.
	for i := len(h.Negative) - 1; i >= 0; i-- {
		if h.Negative[i] == 0 {
			continue
		}
		cum += h.Negative[i]
		bound := expBound(h.Scale, int64(h.NegOffset)+int64(i))
		if math.IsInf(bound, 1) {
			continue // below -MaxFloat64: folded into the next bucket up
		}
		buckets = b.bucket(buckets, p, tags, ts, FormatBound(-bound), float64(cum))
	}
	if h.ZeroCount > 0 {
		cum += h.ZeroCount
		buckets = b.bucket(buckets, p, tags, ts, FormatBound(h.ZeroThreshold), float64(cum))
	}
	for i, n := range h.Positive {
		if n == 0 {
			continue
		}
		cum += n
		bound := expBound(h.Scale, int64(h.PosOffset)+int64(i)+1)
		if math.IsInf(bound, 1) {
			break // beyond float64: counted in +Inf
		}
		buckets = b.bucket(buckets, p, tags, ts, FormatBound(bound), float64(cum))
	}
	b.bucket(buckets, p, tags, ts, "+Inf", float64(h.Count))
	b.stats(p, tags, ts, h.Count, h.Sum, h.HasSum, h.Min, h.HasMin, h.Max, h.HasMax)
	b.finish(p, start)
}

// Summary maps a summary point as ingest maps a scraped Prometheus summary: NAME with a
// quantile tag per quantile (gauge), NAME_sum and NAME_count (counter).
func (b *Batch) Summary(p Point, s SummaryPoint) {
	if len(s.Quantiles) > b.m.maxBuckets {
		b.Points++
		b.refuse(p.Metric, p.Index, fmt.Errorf("%w: %d quantiles, limit %d", ErrTooManyBuckets, len(s.Quantiles), b.m.maxBuckets))
		return
	}
	tags, ts, ok := b.begin(p)
	if !ok {
		return
	}
	start := len(b.Records)
	src := p.Resource.Source
	for _, q := range s.Quantiles {
		b.Records = append(b.Records, etf.Metric{Name: p.Metric, Kind: etf.Gauge, Value: q.Value,
			Tags: withTag(tags, TagQuantile, FormatBound(q.Quantile)), TimestampMs: ts, Source: src})
	}
	b.Records = append(b.Records,
		etf.Metric{Name: p.Metric + SuffixSum, Kind: etf.Counter, Value: s.Sum, Tags: tags, TimestampMs: ts, Source: src},
		etf.Metric{Name: p.Metric + SuffixCount, Kind: etf.Counter, Value: float64(s.Count), Tags: tags, TimestampMs: ts, Source: src})
	b.finish(p, start)
}

// Malformed refuses a point the caller cannot read (an empty or unknown data type).
func (b *Batch) Malformed(p Point, why string) {
	b.Points++
	b.refuse(p.Metric, p.Index, fmt.Errorf("%w: %s", ErrMalformed, why))
}

// bucket appends one NAME_bucket record; its tags are tags and le, carved from buf.
func (b *Batch) bucket(buf []etf.Tag, p Point, tags []etf.Tag, ts int64, le string, v float64) []etf.Tag {
	n := len(buf)
	buf = append(buf, tags...)
	buf = append(buf, etf.Tag{Key: TagLe, Value: le})
	b.Records = append(b.Records, etf.Metric{Name: p.Metric + SuffixBucket, Kind: etf.Histogram, Value: v,
		Tags: buf[n:len(buf):len(buf)], TimestampMs: ts, Source: p.Resource.Source})
	return buf
}

// stats appends NAME_sum, NAME_count, NAME_min and NAME_max, those the point has.
func (b *Batch) stats(p Point, tags []etf.Tag, ts int64, count uint64, sum float64, hasSum bool, lo float64, hasMin bool, hi float64, hasMax bool) {
	rec := func(suffix string, v float64) {
		b.Records = append(b.Records, etf.Metric{Name: p.Metric + suffix, Kind: etf.Histogram, Value: v,
			Tags: tags, TimestampMs: ts, Source: p.Resource.Source})
	}
	if hasSum {
		rec(SuffixSum, sum)
	}
	rec(SuffixCount, float64(count))
	if hasMin {
		rec(SuffixMin, lo)
	}
	if hasMax {
		rec(SuffixMax, hi)
	}
}

// begin counts the point and builds its tags and timestamp; false: refused.
func (b *Batch) begin(p Point) ([]etf.Tag, int64, bool) {
	b.Points++
	if p.NoValue {
		b.refuse(p.Metric, p.Index, ErrNoValue)
		return nil, 0, false
	}
	tags, err := b.tags(p)
	if err != nil {
		b.refuse(p.Metric, p.Index, err)
		return nil, 0, false
	}
	ts := int64(p.TimeUnixNano / 1e6)
	if p.TimeUnixNano == 0 || p.TimeUnixNano > math.MaxInt64 {
		ts = b.m.now().UnixMilli()
	}
	return tags, ts, true
}

// finish validates the records of the point appended from start; on the first refusal it
// removes them all and refuses the point.
func (b *Batch) finish(p Point, start int) {
	for i := start; i < len(b.Records); i++ {
		if err := b.Records[i].ValidateAfter(b.prev, b.m.limits); err != nil {
			clear(b.Records[start:])
			b.Records = b.Records[:start]
			b.prev = nil
			b.refuse(p.Metric, p.Index, err)
			return
		}
		b.prev = &b.Records[i]
	}
	b.Ends = append(b.Ends, len(b.Records))
}

// tags are the point's attributes in their order, then the resource's tags whose keys the
// point does not have. More attributes than MaxTags are refused before any is read.
func (b *Batch) tags(p Point) ([]etf.Tag, error) {
	res := p.Resource
	n := 0
	if p.Attrs != nil {
		n = p.Attrs.Len()
	}
	if limit := b.m.limits.MaxTags; n > limit || res.tooMany > 0 {
		total := n + len(res.Tags) + res.tooMany
		return nil, &etf.ValidationError{Record: "metric", Field: "tags",
			Err: fmt.Errorf("%w: %d attributes with the resource's, limit %d", etf.ErrTooManyTags, total, limit)}
	}
	if n == 0 {
		return res.Tags, nil
	}
	tags := make([]etf.Tag, 0, n+len(res.Tags))
	p.Attrs.Range(func(k, v string) bool {
		tags = append(tags, etf.Tag{Key: k, Value: v})
		return true
	})
	own := tags
outer:
	for _, rt := range res.Tags {
		for _, t := range own {
			if t.Key == rt.Key {
				continue outer
			}
		}
		tags = append(tags, rt)
	}
	return tags, nil
}

// populated counts the buckets that hold values.
func populated(counts []uint64) int {
	n := 0
	for _, c := range counts {
		if c != 0 {
			n++
		}
	}
	return n
}

// withTag returns a new slice: tags and then {k, v}.
func withTag(tags []etf.Tag, k, v string) []etf.Tag {
	out := make([]etf.Tag, len(tags), len(tags)+1)
	copy(out, tags)
	return append(out, etf.Tag{Key: k, Value: v})
}

// expBound is base^index for base = 2^(2^-scale): the upper bound of bucket index-1.
func expBound(scale int32, index int64) float64 {
	return math.Exp2(float64(index) * math.Exp2(-float64(scale)))
}

// FormatBound writes a bucket bound or quantile as Prometheus does: "+Inf", "0.005", "1e-05".
func FormatBound(v float64) string {
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
