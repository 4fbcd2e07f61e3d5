package otelexport_test

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/otelexport"
)

// printer stands in for an *agent.Agent: it prints what it is given.
type printer struct{}

func (printer) DeliverMetrics(ms []etf.Metric) (int, error) {
	for _, m := range ms {
		fmt.Println(m.Name, m.Kind, m.Value, m.Tags, m.Source)
	}
	return len(ms), nil
}

func Example() {
	// A service would pass its agent: otelexport.Options{Deliverer: a}.
	exp, err := otelexport.New(otelexport.Options{Deliverer: printer{}})
	if err != nil {
		panic(err)
	}
	mp := sdkmetric.NewMeterProvider(
		sdkmetric.WithResource(resource.NewSchemaless(attribute.String("service.name", "checkout"))),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(10*time.Second))))
	meter := mp.Meter("checkout")

	ctx := context.Background()
	orders, _ := meter.Int64Counter("orders")
	orders.Add(ctx, 3, metric.WithAttributes(attribute.String("region", "eu")))
	queue, _ := meter.Int64UpDownCounter("queue.depth")
	queue.Add(ctx, 5)
	queue.Add(ctx, -2)
	latency, _ := meter.Float64Histogram("latency", metric.WithExplicitBucketBoundaries(0.1, 1))
	latency.Record(ctx, 0.4)

	_ = mp.Shutdown(ctx) // exports once more, then stops
	// Output:
	// orders counter 3 [{region eu}] checkout
	// queue.depth gauge 3 [] checkout
	// latency_bucket histogram 0 [{le 0.1}] checkout
	// latency_bucket histogram 1 [{le 1}] checkout
	// latency_bucket histogram 1 [{le +Inf}] checkout
	// latency_sum histogram 0.4 [] checkout
	// latency_count histogram 1 [] checkout
	// latency_min histogram 0.4 [] checkout
	// latency_max histogram 0.4 [] checkout
}
