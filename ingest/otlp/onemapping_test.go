package otlp_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/ingest/otlp"
	"github.com/pharos-node/pharos-node/otelexport"
)

// deliverer keeps what the SDK exporter delivers.
type deliverer struct {
	mu  sync.Mutex
	got []etf.Metric
}

func (d *deliverer) DeliverMetrics(ms []etf.Metric) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.got = append(d.got, ms...)
	return len(ms), nil
}

// One mapping, two inputs: the same instruments, read by two readers of one MeterProvider, one
// exporting through otelexport (the SDK's metricdata) and one over OTLP/HTTP to the receiver
// (OTLP's pdata), give the same records: names, kinds, values, tags in order, sources.
func TestSDKExporterAndReceiverMapAlike(t *testing.T) {
	s := &sink{}
	srv := newServer(t, s, otlp.Options{})
	d := &deliverer{}
	exp, err := otelexport.New(otelexport.Options{Deliverer: d})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	httpExp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(srv.URL+otlp.MetricsPath),
		otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false}))
	if err != nil {
		t.Fatal(err)
	}
	view := sdkmetric.NewView(sdkmetric.Instrument{Name: "exp.*"},
		sdkmetric.Stream{Aggregation: sdkmetric.AggregationBase2ExponentialHistogram{MaxSize: 20, MaxScale: 3}})
	res := resource.NewSchemaless(attribute.String("service.name", "twin"), attribute.Bool("canary", true),
		attribute.Int64Slice("zones", []int64{1, 2}))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithView(view),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(httpExp, sdkmetric.WithInterval(time.Hour))))
	meter := mp.Meter("twin")
	attrs := metric.WithAttributes(attribute.String("s", "x"), attribute.Float64("f", 0.1), attribute.Bool("b", false),
		attribute.StringSlice("list", []string{"a", "<b>"}), attribute.Int("i", -7))
	c, _ := meter.Float64Counter("c")
	c.Add(ctx, 1.5, attrs)
	ud, _ := meter.Int64UpDownCounter("ud")
	ud.Add(ctx, -4, attrs)
	g, _ := meter.Int64Gauge("g")
	g.Record(ctx, 9, attrs)
	h, _ := meter.Int64Histogram("h", metric.WithExplicitBucketBoundaries(1, 10, 100))
	e, _ := meter.Float64Histogram("exp.h")
	for _, v := range []int64{0, 5, 50, 500, -3} {
		h.Record(ctx, v, attrs)
		e.Record(ctx, float64(v)/7, attrs)
	}
	if err := mp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	strip := func(ms []etf.Metric) []string {
		out := make([]string, len(ms))
		for i, m := range ms {
			out[i] = fmt.Sprintf("%s %s %v %v %s", m.Name, m.Kind, m.Value, m.Tags, m.Source)
		}
		return out
	}
	viaSDK, viaOTLP := strip(d.got), strip(s.records())
	if len(viaSDK) < 20 || fmt.Sprint(viaSDK) != fmt.Sprint(viaOTLP) {
		t.Fatalf("otelexport:\n%v\nOTLP receiver:\n%v", viaSDK, viaOTLP)
	}
	t.Logf("%d records alike, e.g. %s", len(viaSDK), viaSDK[0])
}
