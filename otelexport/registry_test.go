package otelexport_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/pharos-node/pharos-node/otelexport"
)

// The counters on a Registerer: points, refusals by reason, records delivered.
func TestCountersOnTheRegisterer(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newSetup(t, otelexport.Options{Registerer: reg}, resource.Empty())
	g, _ := s.meter.Float64Gauge("g")
	g.Record(context.Background(), 1)
	g.Record(context.Background(), 2, metric.WithAttributes(attribute.String("v", strings.Repeat("x", 2000))))
	_ = s.flush(t)
	got := map[string]float64{}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			got[key] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"pharos_otelexport_points_total":                          2,
		"pharos_otelexport_points_refused_total{reason=too_long}": 1,
		"pharos_otelexport_records_delivered_total":               1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	if _, err := otelexport.New(otelexport.Options{Deliverer: s.c, Registerer: reg}); err == nil {
		t.Fatal("a second exporter on the same Registerer")
	}
}
