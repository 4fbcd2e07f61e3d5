// Package ingest is how records get into Pharos Node: an HTTP JSON API, a StatsD listener, a
// Prometheus scraper and a collector of host metrics. Each source turns its input into etf.Metric or
// etf.Alert records, checks them with etf's Validate, and hands the valid ones to a Sink. A bad
// record is refused with an error of its own (a *FieldError, *LineError or *etf.ValidationError,
// wrapping an ErrXxx sentinel), never taking the good records beside it along. docs/ingest.md
// specifies the formats, the limits and the counters, and gives the reasons.
//
// # Use
//
// The daemon builds one Sink (agent.Agent) and the sources it is configured for, sharing a Common:
//
//	common := ingest.Common{Sink: sink, Logger: log, Registerer: reg}
//	h, err := ingest.NewHandler(ingest.HTTPOptions{Common: common})
//	mux.Handle("/v1/", h) // POST /v1/metrics, POST /v1/alerts
//
//	s, err := ingest.NewStatsD(ingest.StatsDOptions{Common: common})
//	go s.ListenAndServe(ctx, "127.0.0.1:8125")
//
//	sc, err := ingest.NewScraper(ingest.ScrapeOptions{Common: common,
//		Targets: []string{"http://127.0.0.1:9100/metrics"}})
//	go sc.Run(ctx)
//
//	hc, err := ingest.NewHostCollector(ingest.HostOptions{Common: common})
//	go hc.Run(ctx)
//
// The constructors check their options and start nothing. ListenAndServe, Serve and both Run
// methods return nil once ctx is done, after every goroutine they started has ended (Serve then
// flushes the StatsD sets once more); cancel ctx and wait for them to stop a source.
//
// # The Sink
//
// Sink.Deliver gets one validated Record; a MetricsSink (agent.Agent is one) also gets a request's,
// packet's or scrape's valid metrics in one DeliverMetrics call, in order. Both are called from
// many goroutines at once and must not block for long: a sink that cannot take a record returns an
// error wrapping ErrSinkFull, which the HTTP handler answers with 503 and Retry-After and the
// other sources count (reason sink_full). Nothing here retries. A Record passed to Deliver is the
// sink's to keep; what DeliverMetrics gets is not (the sources use those buffers again).
//
// # Limits
//
// Every input is bounded and each bound is an option: HTTPOptions.MaxBodyBytes, MaxRecords,
// MaxInflightBytes (the bodies of all requests held at once: over it, 429) and BodyTimeout (408);
// StatsDOptions.MaxPacketBytes, MaxSeries and MaxSetMembers (the state of gauge changes and sets);
// ScrapeOptions.MaxBodyBytes, MaxSamples and Timeout. A request, packet or scrape over a bound is
// refused whole and counted in pharos_ingest_requests_refused_total{source,reason}.
//
// # Concurrency
//
// Handler.ServeHTTP, StatsD.HandlePacket, StatsD.Flush, Scraper.Scrape and HostCollector.Collect
// are safe for concurrent use. A StatsD listener reads and delivers on the goroutine that called
// Serve, so the lines of a packet, and packets as read, reach the sink in order; the records of
// one HTTP request reach it in request order. Serve's flush of the sets runs on a goroutine of its
// own that Serve ends before it returns. The package keeps no global state: clock, logger,
// registerer and limits come in through the options.
package ingest
