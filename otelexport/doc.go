// Package otelexport is a metric exporter for the OpenTelemetry Go SDK
// (go.opentelemetry.io/otel/sdk/metric) that delivers a service's metrics to the Brain through
// an agent: the service keeps its OTel instrumentation and adds one reader.
//
// # Call order
//
//	a, err := agent.Start(ctx, agent.Options{...})          // the agent (package agent)
//	exp, err := otelexport.New(otelexport.Options{Deliverer: a, Registerer: reg})
//	mp := sdkmetric.NewMeterProvider(
//		sdkmetric.WithResource(res),                        // service.name becomes the source
//		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(10*time.Second))))
//	otel.SetMeterProvider(mp)                               // instrument as usual
//	...
//	err = mp.Shutdown(ctx)                                  // a last export, then Shutdown
//	err = a.Close(ctx)                                      // then the agent
//
// # The mapping
//
// docs/otel.md specifies it (package internal/otelmap implements it, for this exporter and for
// the OTLP receiver alike): Gauge to gauge, monotonic Sum to counter, non-monotonic Sum to
// gauge, histograms to NAME_bucket{le}, NAME_sum, NAME_count, NAME_min, NAME_max histogram
// records; attributes to tags, service.name to source, other resource attributes to tags.
// The exporter asks the SDK for cumulative temporality (Options.Temporality): a lost record
// then costs resolution, never part of a count.
//
// # Refusals and a busy agent
//
// A point that does not fit WIRE.md's limits (too many attributes, a non-finite value, a name
// or value too long, ...) is left out and counted by reason; the rest of the export goes
// through, and Export returns an *otelmap.RefusedError (the SDK passes it to its error
// handler). While the agent answers busy (agent.ErrBusy), Export waits BusyPause and tries
// again until its context ends; the records left then are counted (sink_full). Counters:
//
//	pharos_otelexport_points_total                    data points mapped
//	pharos_otelexport_points_refused_total{reason}    refused by the mapping (otelmap reasons)
//	pharos_otelexport_records_delivered_total         records the agent took
//	pharos_otelexport_records_refused_total{reason}   not taken: sink_full, sink_error, invalid
//
// # Concurrency
//
// Every method is safe for concurrent use; Export keeps nothing between calls.
package otelexport
