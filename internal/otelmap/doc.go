// Package otelmap is the one mapping from OpenTelemetry metric data points to WIRE.md records
// (etf.Metric), shared by the OTel Go SDK exporter (package otelexport, from metricdata) and
// the OTLP receiver (package ingest/otlp, from OTLP's pdata). docs/otel.md specifies it; this
// package implements it and nothing else: it neither decodes OTLP nor delivers records.
//
// # Call order
//
//	m := otelmap.New(otelmap.Options{Limits: limits, DefaultSource: "api"})
//	b := m.NewBatch()                       // one per export or request
//	res := m.Resource(resourceAttrs)        // once per resource: source and tags
//	b.Gauge(otelmap.Point{Metric: "temp", Index: i, Resource: &res, Attrs: a, TimeUnixNano: t}, 21.5)
//	b.Sum(p, v, monotonic, delta)           // counter, gauge, or refused (delta up-down)
//	b.Histogram(p, h); b.ExpHistogram(p, e); b.Summary(p, s)
//	deliver(b.Records)                      // valid records, in point order
//	b.Points, b.Refused, b.ByReason, b.Err(), b.Message()
//
// # Promises
//
// A point is all or nothing: every record it maps to passed etf's Validate under
// Options.Limits and is in Records, or none is and the point is counted in Refused under one
// of the Reason constants (a fixed set), with a *PointError naming the metric and the point.
// More attributes than MaxTags are refused before any is read, and a resource keeps at most
// MaxTags tags, so a hostile point costs no more memory than its input. Nothing panics on any
// input.
//
// # Concurrency
//
// A Mapper is safe for concurrent use (it holds only its options); a Batch belongs to one
// goroutine.
package otelmap
