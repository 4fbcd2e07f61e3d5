package otelexport_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/internal/otelmap"
	"github.com/pharos-node/pharos-node/otelexport"
)

// collector is a Deliverer that keeps what it is given; busy makes it refuse the next n calls.
type collector struct {
	mu   sync.Mutex
	got  []etf.Metric
	busy int
	err  error // returned (after busy runs out) instead of accepting
}

func (c *collector) DeliverMetrics(ms []etf.Metric) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.busy != 0 {
		if c.busy > 0 {
			c.busy--
		}
		return 0, agent.ErrBusy
	}
	if c.err != nil {
		return 0, c.err
	}
	c.got = append(c.got, ms...)
	return len(ms), nil
}

func (c *collector) records() []etf.Metric {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]etf.Metric(nil), c.got...)
}

// byName finds the record named name whose tags include want.
func byName(t *testing.T, recs []etf.Metric, name string, want ...etf.Tag) etf.Metric {
	t.Helper()
	for _, r := range recs {
		if r.Name == name && hasTags(r.Tags, want) {
			return r
		}
	}
	t.Fatalf("no record %s with tags %v in %v", name, want, recs)
	return etf.Metric{}
}

func hasTags(tags, want []etf.Tag) bool {
	for _, w := range want {
		found := false
		for _, t := range tags {
			found = found || t == w
		}
		if !found {
			return false
		}
	}
	return true
}

// setup is a MeterProvider whose periodic reader exports to an exporter of c; flush exports.
type setup struct {
	c     *collector
	exp   *otelexport.Exporter
	mp    *sdkmetric.MeterProvider
	meter metric.Meter
}

func newSetup(t *testing.T, opts otelexport.Options, res *resource.Resource, mpOpts ...sdkmetric.Option) *setup {
	t.Helper()
	c := &collector{}
	if opts.Deliverer == nil {
		opts.Deliverer = c
	}
	exp, err := otelexport.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if res == nil {
		res = resource.NewSchemaless(attribute.String("service.name", "checkout"), attribute.String("deployment.environment", "test"),
			attribute.String("telemetry.sdk.language", "go"))
	}
	mpOpts = append(mpOpts, sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))))
	mp := sdkmetric.NewMeterProvider(mpOpts...)
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return &setup{c: c, exp: exp, mp: mp, meter: mp.Meter("test")}
}

func (s *setup) flush(t *testing.T) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.mp.ForceFlush(ctx)
}

func TestCounterIsCumulativeCounter(t *testing.T) {
	s := newSetup(t, otelexport.Options{}, nil)
	c, _ := s.meter.Int64Counter("requests")
	ctx := context.Background()
	c.Add(ctx, 3, metric.WithAttributes(attribute.String("route", "/a")))
	c.Add(ctx, 4, metric.WithAttributes(attribute.String("route", "/a")))
	before := time.Now().UnixMilli()
	if err := s.flush(t); err != nil {
		t.Fatal(err)
	}
	after := time.Now().UnixMilli()
	c.Add(ctx, 1, metric.WithAttributes(attribute.String("route", "/a")))
	if err := s.flush(t); err != nil {
		t.Fatal(err)
	}
	recs := s.c.records()
	if len(recs) != 2 {
		t.Fatalf("records %v, want 2", recs)
	}
	r := recs[0]
	want := []etf.Tag{{Key: "route", Value: "/a"}, {Key: "deployment.environment", Value: "test"}}
	if r.Name != "requests" || r.Kind != etf.Counter || r.Value != 7 || r.Source != "checkout" || !equalTags(r.Tags, want) {
		t.Fatalf("record %+v", r)
	}
	if r.TimestampMs < before || r.TimestampMs > after {
		t.Fatalf("timestamp %d outside [%d, %d]", r.TimestampMs, before, after)
	}
	if recs[1].Value != 8 {
		t.Fatalf("second export %v, want the cumulative 8", recs[1].Value)
	}
}

func TestDeltaTemporalityOption(t *testing.T) {
	s := newSetup(t, otelexport.Options{Temporality: sdkmetric.DeltaTemporalitySelector}, nil)
	ctx := context.Background()
	c, _ := s.meter.Int64Counter("requests")
	ud, _ := s.meter.Int64UpDownCounter("queue")
	c.Add(ctx, 3)
	ud.Add(ctx, 5)
	_ = s.flush(t)
	c.Add(ctx, 1)
	ud.Add(ctx, -2)
	_ = s.flush(t)
	recs := s.c.records()
	var counts, levels []float64
	for _, r := range recs {
		switch r.Name {
		case "requests":
			counts = append(counts, r.Value)
		case "queue":
			levels = append(levels, r.Value)
		}
	}
	if len(counts) != 2 || counts[0] != 3 || counts[1] != 1 {
		t.Fatalf("delta counter values %v, want [3 1]", counts)
	}
	if len(levels) != 2 || levels[0] != 5 || levels[1] != 3 {
		t.Fatalf("up-down counter values %v, want the cumulative levels [5 3]", levels)
	}
}

func TestGaugeAndUpDownCounterAreGauges(t *testing.T) {
	s := newSetup(t, otelexport.Options{}, nil)
	ctx := context.Background()
	g, _ := s.meter.Float64Gauge("temperature")
	g.Record(ctx, 21.5, metric.WithAttributes(attribute.String("room", "b"), attribute.Int("floor", 2)))
	ud, _ := s.meter.Int64UpDownCounter("inflight")
	ud.Add(ctx, 5)
	ud.Add(ctx, -7)
	if err := s.flush(t); err != nil {
		t.Fatal(err)
	}
	recs := s.c.records()
	temp := byName(t, recs, "temperature")
	want := []etf.Tag{{Key: "floor", Value: "2"}, {Key: "room", Value: "b"}, {Key: "deployment.environment", Value: "test"}}
	if temp.Kind != etf.Gauge || temp.Value != 21.5 || !equalTags(temp.Tags, want) {
		t.Fatalf("gauge %+v", temp)
	}
	inflight := byName(t, recs, "inflight")
	if inflight.Kind != etf.Gauge || inflight.Value != -2 {
		t.Fatalf("up-down counter %+v, want gauge -2", inflight)
	}
}

func TestHistogramRecords(t *testing.T) {
	s := newSetup(t, otelexport.Options{}, nil)
	h, _ := s.meter.Float64Histogram("latency", metric.WithExplicitBucketBoundaries(0.1, 0.5, 1))
	ctx := context.Background()
	for _, v := range []float64{0.05, 0.2, 0.3, 0.7, 3} {
		h.Record(ctx, v, metric.WithAttributes(attribute.String("route", "/a")))
	}
	if err := s.flush(t); err != nil {
		t.Fatal(err)
	}
	recs := s.c.records()
	route := etf.Tag{Key: "route", Value: "/a"}
	want := []struct {
		name, le string
		v        float64
	}{
		{"latency_bucket", "0.1", 1}, {"latency_bucket", "0.5", 3}, {"latency_bucket", "1", 4}, {"latency_bucket", "+Inf", 5},
		{"latency_sum", "", 4.25}, {"latency_count", "", 5}, {"latency_min", "", 0.05}, {"latency_max", "", 3},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d: %v", len(recs), len(want), recs)
	}
	for i, w := range want {
		r := recs[i]
		tags := []etf.Tag{route, {Key: "deployment.environment", Value: "test"}}
		if w.le != "" {
			tags = append(tags, etf.Tag{Key: "le", Value: w.le})
		}
		if r.Name != w.name || r.Kind != etf.Histogram || math.Abs(r.Value-w.v) > 1e-9 || !equalTags(r.Tags, tags) {
			t.Errorf("record %d: %+v, want %s %v %v", i, r, w.name, w.v, tags)
		}
	}
}

func TestExponentialHistogramRecords(t *testing.T) {
	view := sdkmetric.NewView(sdkmetric.Instrument{Name: "size"},
		sdkmetric.Stream{Aggregation: sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 160, MaxScale: 0}})
	s := newSetup(t, otelexport.Options{}, nil, sdkmetric.WithView(view))
	h, _ := s.meter.Float64Histogram("size")
	ctx := context.Background()
	// Scale 0: base 2; bucket i holds (2^i, 2^(i+1)].
	for _, v := range []float64{-3, 0, 1.5, 3, 3.5, 100} {
		h.Record(ctx, v)
	}
	if err := s.flush(t); err != nil {
		t.Fatal(err)
	}
	recs := s.c.records()
	var les []string
	var counts []float64
	for _, r := range recs {
		if r.Name == "size_bucket" {
			les = append(les, r.Tags[len(r.Tags)-1].Value)
			counts = append(counts, r.Value)
		}
	}
	// -3 in [-4, -2): le -2; 0 in the zero bucket: le 0; 1.5 in (1, 2]; 3 and 3.5 in (2, 4];
	// 100 in (64, 128].
	wantLes := []string{"-2", "0", "2", "4", "128", "+Inf"}
	wantCounts := []float64{1, 2, 3, 5, 6, 6}
	if strings.Join(les, " ") != strings.Join(wantLes, " ") || !equalFloats(counts, wantCounts) {
		t.Fatalf("buckets le %v counts %v, want %v %v", les, counts, wantLes, wantCounts)
	}
	if r := byName(t, recs, "size_sum"); r.Value != 105 || r.Kind != etf.Histogram {
		t.Fatalf("sum %+v", r)
	}
	if r := byName(t, recs, "size_count"); r.Value != 6 {
		t.Fatalf("count %+v", r)
	}
}

func TestResourceTagsOption(t *testing.T) {
	res := resource.NewSchemaless(attribute.String("service.name", "svc"), attribute.String("host.name", "h1"),
		attribute.String("k8s.pod.name", "p"), attribute.String("telemetry.sdk.name", "opentelemetry"))
	s := newSetup(t, otelexport.Options{ResourceTags: []string{"host.name"}}, res)
	c, _ := s.meter.Int64Counter("n")
	c.Add(context.Background(), 1, metric.WithAttributes(attribute.String("host.name", "override")))
	_ = s.flush(t)
	r := byName(t, s.c.records(), "n")
	if r.Source != "svc" || !equalTags(r.Tags, []etf.Tag{{Key: "host.name", Value: "override"}}) {
		t.Fatalf("record %+v: the point's attribute wins over the resource's, only listed keys", r)
	}
}

func TestNoServiceNameUsesDefaultSource(t *testing.T) {
	s := newSetup(t, otelexport.Options{DefaultSource: "fallback"}, resource.Empty())
	c, _ := s.meter.Int64Counter("n")
	c.Add(context.Background(), 1)
	_ = s.flush(t)
	if r := byName(t, s.c.records(), "n"); r.Source != "fallback" || len(r.Tags) != 0 {
		t.Fatalf("record %+v", r)
	}
}

func TestAttributeValueForms(t *testing.T) {
	s := newSetup(t, otelexport.Options{}, resource.Empty())
	c, _ := s.meter.Int64Counter("n")
	c.Add(context.Background(), 1, metric.WithAttributes(
		attribute.Bool("b", true), attribute.Int64("i", -3), attribute.Float64("f", 0.25),
		attribute.Float64("big", 1e21), attribute.StringSlice("ss", []string{"x", "<y>"}),
		attribute.Int64Slice("is", []int64{1, 2}), attribute.String("s", "plain")))
	_ = s.flush(t)
	r := byName(t, s.c.records(), "n")
	want := []etf.Tag{{Key: "b", Value: "true"}, {Key: "big", Value: "1e+21"}, {Key: "f", Value: "0.25"},
		{Key: "i", Value: "-3"}, {Key: "is", Value: "[1,2]"}, {Key: "s", Value: "plain"}, {Key: "ss", Value: `["x","<y>"]`}}
	if !equalTags(r.Tags, want) {
		t.Fatalf("tags %v, want %v", r.Tags, want)
	}
}

// Points that do not fit WIRE.md's limits are refused, counted by reason; the others go through.
func TestRefusedPointsAreCountedAndTheRestDelivered(t *testing.T) {
	s := newSetup(t, otelexport.Options{}, resource.Empty())
	ctx := context.Background()
	g, _ := s.meter.Float64Gauge("g")
	g.Record(ctx, 1, metric.WithAttributes(attribute.String("ok", "1")))
	g.Record(ctx, math.NaN(), metric.WithAttributes(attribute.String("ok", "nan")))
	g.Record(ctx, math.Inf(1), metric.WithAttributes(attribute.String("ok", "inf")))
	many := make([]attribute.KeyValue, 65)
	for i := range many {
		many[i] = attribute.Int("k"+strings.Repeat("x", i), i)
	}
	g.Record(ctx, 2, metric.WithAttributes(many...))
	g.Record(ctx, 3, metric.WithAttributes(attribute.String("ok", strings.Repeat("v", 1025))))
	long, _ := s.meter.Float64Histogram(strings.Repeat("n", 250)) // 250 bytes fit; NAME_bucket does not
	long.Record(ctx, 1)
	err := s.flush(t)
	var rerr *otelmap.RefusedError
	if !errors.As(err, &rerr) || rerr.Refused != 5 {
		t.Fatalf("flush error %v, want 5 refused points", err)
	}
	recs := s.c.records()
	if len(recs) != 1 || recs[0].Value != 1 {
		t.Fatalf("delivered %v, want the one good point", recs)
	}
	st := s.exp.Stats()
	want := map[string]uint64{otelmap.ReasonNonFinite: 2, otelmap.ReasonTooManyTags: 1, otelmap.ReasonTooLong: 2}
	if st.Points != 6 || !equalCounts(st.PointsRefused, want) || st.Delivered != 1 {
		t.Fatalf("stats %+v, want 6 points, refused %v, 1 delivered", st, want)
	}
}

func TestBusyAgentIsWaitedFor(t *testing.T) {
	s := newSetup(t, otelexport.Options{BusyPause: time.Millisecond}, nil)
	s.c.busy = 3
	c, _ := s.meter.Int64Counter("n")
	c.Add(context.Background(), 1)
	if err := s.flush(t); err != nil {
		t.Fatal(err)
	}
	if len(s.c.records()) != 1 {
		t.Fatalf("records %v", s.c.records())
	}
}

func TestBusyAgentUntilTheDeadlineIsCounted(t *testing.T) {
	c := &collector{busy: -1} // busy forever
	exp, err := otelexport.New(otelexport.Options{Deliverer: c, BusyPause: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	n, _ := mp.Meter("test").Int64Counter("n")
	n.Add(context.Background(), 1)
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := exp.Export(ctx, &rm); !errors.Is(err, agent.ErrBusy) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("export error %v, want ErrBusy and the deadline", err)
	}
	if st := exp.Stats(); st.RecordsRefused[otelexport.ReasonSinkFull] != 1 || st.Delivered != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestClosedAgentIsCounted(t *testing.T) {
	s := newSetup(t, otelexport.Options{}, nil)
	s.c.err = agent.ErrClosed
	c, _ := s.meter.Int64Counter("n")
	c.Add(context.Background(), 1)
	if err := s.flush(t); !errors.Is(err, agent.ErrClosed) {
		t.Fatalf("flush error %v", err)
	}
	if st := s.exp.Stats(); st.RecordsRefused[otelexport.ReasonSinkError] != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestShutdown(t *testing.T) {
	exp, err := otelexport.New(otelexport.Options{Deliverer: &collector{}})
	if err != nil {
		t.Fatal(err)
	}
	_ = exp.Shutdown(context.Background())
	if err := exp.Export(context.Background(), nil); !errors.Is(err, otelexport.ErrShutdown) {
		t.Fatalf("export after shutdown: %v", err)
	}
	if _, err := otelexport.New(otelexport.Options{}); !errors.Is(err, otelexport.ErrNoDeliverer) {
		t.Fatalf("New without a deliverer: %v", err)
	}
}

func equalTags(a, b []etf.Tag) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func equalCounts(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}
