// Package otlp is an OTLP/HTTP metrics receiver (OpenTelemetry Protocol, specification 1.x):
// OpenTelemetry SDKs and Collectors export to it, and it hands WIRE.md records to an ingest.Sink
// (in the daemon, the agent), on its own listener (ingest.otlp.listen, 127.0.0.1:4318 by
// convention) beside the Pharos JSON endpoint.
//
// # Use
//
//	h, err := otlp.NewHandler(otlp.Options{Common: common, Source: "otlp"})
//	mux.Handle("/v1/", h)                    // POST /v1/metrics; /v1/traces, /v1/logs: 404
//
// # Requests
//
// POST /v1/metrics with Content-Type application/x-protobuf or application/json (OTLP's JSON:
// lowerCamelCase fields, 64-bit integers as strings, enums as numbers), optionally
// Content-Encoding gzip; the body is an ExportMetricsServiceRequest, decoded into OTLP's own
// generated types (go.opentelemetry.io/proto/slim/otlp) by protobuf-go, protojson for JSON
// (docs/otel.md says why not the Collector's pdata). The body is bounded as sent and as
// inflated (MaxBodyBytes, default 16 MiB), the records one request maps to too (MaxRecords,
// default 100,000), and the buckets of one histogram point (MaxBuckets).
//
// # The mapping
//
// The one of docs/otel.md, shared with the SDK exporter (package otelexport) through
// internal/otelmap: Gauge to gauge, monotonic Sum to counter (cumulative or delta, as sent),
// non-monotonic Sum to gauge (a delta one is refused), histograms to NAME_bucket{le},
// NAME_sum, NAME_count, NAME_min, NAME_max, summaries as ingest's scraper maps them;
// attributes to tags, service.name to source (else Options.Source), other resource attributes
// to tags. The records are validated under Common.Limits, the limits of every ingest source.
//
// # Answers
//
// 200 with an ExportMetricsServiceResponse in the request's encoding; refused data points are
// counted in its partial_success (rejected_data_points, and an error_message naming the first
// ones), the others delivered. 503 with Retry-After when the sink is full and nothing of the
// request was delivered (a retry duplicates nothing). 400 (undecodable body), 413 (over a
// limit), 415 (content type or encoding), 405, 404 with a google.rpc.Status body; nothing
// delivered.
//
// # Counters
//
// Through ingest.Pipeline, under source="otlp": pharos_ingest_records_accepted_total (records),
// pharos_ingest_records_refused_total (data points refused by the mapping, under otelmap's
// reasons; records the sink refused, sink_full or sink_error), and
// pharos_ingest_requests_refused_total (the Reason constants of this package).
//
// # Concurrency
//
// Handler.ServeHTTP is safe for concurrent use. Records of one request reach the sink in
// request order.
package otlp
