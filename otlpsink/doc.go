// Package otlpsink is the OTLP transport: the connection manager (package fsm) delivers the
// agent's records to an OTLP/HTTP receiver, such as an OpenTelemetry Collector, instead of the
// Brain, through the same four states, ring, spill directory, backoff and throttling.
// docs/otel.md ("The OTLP transport") says how records map back to OTLP and why.
//
// # Call order
//
//	sink, err := otlpsink.New(otlpsink.Options{Endpoint: "http://collector:4318",
//		Registerer: reg, Logger: log})                   // MaxPoints, Compression, Header, TLS...
//	a, err := agent.Start(ctx, agent.Options{Sink: sink, SpillDir: dir, ...})
//	...
//	err = a.Close(ctx)                                  // then:
//	sink.Close()                                        // idle connections
//
// Without the agent: fsm.ActorOptions{NewTransport: sink.NewTransport, ...}.
//
// # Requests
//
// Each record (term_to_binary of an etf.Metric or etf.Alert) becomes one OTLP data point
// (POST Endpoint/v1/metrics) or, for an alert, one log record (Endpoint/v1/logs), protobuf,
// gzip unless Compression says none. The transport is an fsm.RequestTransport: the manager
// delivers once MaxPoints records wait, else every flush interval (delivery.flush_interval),
// and the transport cuts what it is given into requests of at most MaxPoints points, one signal
// each, in order. Connect probes the receiver with an empty metrics request.
//
// # Answers (OTLP/HTTP's rules)
//
//   - 2xx: delivered; partial_success's rejected points are counted (reason partial_success).
//   - 429, 408, 5xx, no answer (network error, timeout): the records are kept, the manager backs
//     off and reconnects; a Retry-After (seconds or an HTTP date, at most MaxRetryAfter) is
//     honoured: no request, the probe included, goes out before it.
//   - 401, 403, 407: kept likewise (the endpoint's credentials, not the data, are wrong).
//   - 413 for more than one point: the request is sent again in halves.
//   - any other 4xx (400, 404 for a signal the receiver does not take, ...): the request's
//     records are dropped, counted under reason http_<status>, logged (at most every 10 s).
//
// A record is done only when its request was answered: nothing is held in the transport. What
// a request carried before a timeout may reach the receiver twice (OTLP is at least once).
//
// # Metrics
//
// pharos_otlpsink_requests_total{signal,status}, pharos_otlpsink_records_sent_total{signal},
// pharos_otlpsink_dropped_total{reason}, pharos_otlpsink_request_bytes_total; Stats has the
// same counts.
//
// # Concurrency
//
// A Sink is safe for concurrent use; each transport is called by its manager's goroutine only.
package otlpsink
