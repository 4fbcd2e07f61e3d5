package otelexport_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/internal/erltest"
	"github.com/pharos-node/pharos-node/node"
	"github.com/pharos-node/pharos-node/otelexport"
)

// brainRecord is what the test expects the Brain to have received.
type brainRecord struct {
	name, kind string
	value      float64
	tags       [][2]string
}

// The SDK exporter in a Go program with an agent: a counter, a gauge, an up-down counter and a
// histogram with attributes reach a real reference Brain as the mapping says (kinds, values,
// tags in order, source, timestamps).
func TestExporterDeliversToBrain(t *testing.T) {
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	delivery := fsm.DefaultConfig()
	delivery.BaseBackoff, delivery.MaxBackoff = 20*time.Millisecond, 300*time.Millisecond
	delivery.FlushInterval = 10 * time.Millisecond
	a, err := agent.Start(context.Background(), agent.Options{
		NodeName:    "pharos_otel_" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36) + "@127.0.0.1",
		NodeOptions: node.Options{Cookie: b.Cookie, EPMDPort: b.EpmdPort},
		Brain:       agent.Target{Node: b.Node, Name: b.Name},
		Delivery:    delivery,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	}()

	exp, err := otelexport.New(otelexport.Options{Deliverer: a})
	if err != nil {
		t.Fatal(err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", "otel-e2e"), attribute.String("service.version", "1.2"))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))))
	meter := mp.Meter("e2e")
	ctx := context.Background()
	route := metric.WithAttributes(attribute.String("route", "/pay"), attribute.Int("code", 200))
	requests, _ := meter.Int64Counter("http.requests")
	requests.Add(ctx, 2, route)
	requests.Add(ctx, 5, route)
	temp, _ := meter.Float64Gauge("room.temperature")
	temp.Record(ctx, 21.5, metric.WithAttributes(attribute.String("room", "b")))
	inflight, _ := meter.Int64UpDownCounter("jobs.inflight")
	inflight.Add(ctx, 4)
	inflight.Add(ctx, -6)
	latency, _ := meter.Float64Histogram("http.latency", metric.WithExplicitBucketBoundaries(0.1, 1))
	for _, v := range []float64{0.05, 0.5, 2} {
		latency.Record(ctx, v, route)
	}
	before := time.Now().UnixMilli()
	if err := mp.Shutdown(ctx); err != nil { // the last export
		t.Fatal(err)
	}
	after := time.Now().UnixMilli()

	routeTags := [][2]string{{"code", "200"}, {"route", "/pay"}, {"service.version", "1.2"}}
	le := func(v string) [][2]string { return append(append([][2]string{}, routeTags...), [2]string{"le", v}) }
	want := []brainRecord{
		{"http.requests", "counter", 7, routeTags},
		{"room.temperature", "gauge", 21.5, [][2]string{{"room", "b"}, {"service.version", "1.2"}}},
		{"jobs.inflight", "gauge", -2, [][2]string{{"service.version", "1.2"}}},
		{"http.latency_bucket", "histogram", 1, le("0.1")},
		{"http.latency_bucket", "histogram", 2, le("1")},
		{"http.latency_bucket", "histogram", 3, le("+Inf")},
		{"http.latency_sum", "histogram", 2.55, routeTags},
		{"http.latency_count", "histogram", 3, routeTags},
		{"http.latency_min", "histogram", 0.05, routeTags},
		{"http.latency_max", "histogram", 2, routeTags},
	}
	st, ok := b.WaitStats(20*time.Second, func(s erltest.Stats) bool { return s.Received >= int64(len(want)) })
	if !ok || st.Received != int64(len(want)) || st.Invalid != 0 {
		t.Fatalf("Brain stats %+v, want %d records", st, len(want))
	}
	checkBrainRecords(t, b.LastRecords(len(want)), want, "otel-e2e", before, after)
	if es := exp.Stats(); es.Delivered != uint64(len(want)) || len(es.PointsRefused) != 0 {
		t.Fatalf("exporter stats %+v", es)
	}
}

// checkBrainRecords compares what the Brain got with want, in any order of metrics.
func checkBrainRecords(t *testing.T, got []erltest.Record, want []brainRecord, source string, fromMs, toMs int64) {
	t.Helper()
	used := make([]bool, len(got))
	for _, w := range want {
		found := false
		for i, g := range got {
			if used[i] || g.Type != "metric" || g.Name != w.name || !sameTags(g.Tags, w.tags) {
				continue
			}
			used[i], found = true, true
			if g.Kind != w.kind || g.Value < w.value-1e-9 || g.Value > w.value+1e-9 || g.Source != source {
				t.Errorf("%s %v: got %s %v from %q, want %s %v from %q", w.name, w.tags, g.Kind, g.Value, g.Source, w.kind, w.value, source)
			}
			if g.TimestampMs < fromMs || g.TimestampMs > toMs {
				t.Errorf("%s: timestamp %d outside [%d, %d]", w.name, g.TimestampMs, fromMs, toMs)
			}
			break
		}
		if !found {
			t.Errorf("the Brain did not get %s %v", w.name, w.tags)
		}
	}
	if t.Failed() {
		t.Logf("the Brain got: %+v", got)
	}
}

func sameTags(a, b [][2]string) bool {
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
