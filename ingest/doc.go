// Package ingest is how records get into Pharos Node: an HTTP JSON API, a StatsD listener, a
// Prometheus scraper and a collector of host metrics. Each source turns its input into etf.Metric or
// etf.Alert records, checks them with etf's Validate (the rules of WIRE.md: non-empty name, finite
// value, UTF-8, distinct tag keys, length limits), and hands the valid ones to a Sink. A bad record is
// refused with an error of its own, never taking the good records beside it along.
//
// # Use
//
// The daemon builds one Sink (the queue in front of the connection manager) and the sources it is
// configured for, all sharing a Common:
//
//	common := ingest.Common{Sink: sink, Logger: log, Registerer: reg}
//	h, err := ingest.NewHandler(ingest.HTTPOptions{Common: common})
//	mux.Handle("/v1/", h) // POST /v1/metrics, POST /v1/alerts; next to /metrics and /healthz
//
//	s, err := ingest.NewStatsD(ingest.StatsDOptions{Common: common})
//	go s.ListenAndServe(ctx, "127.0.0.1:8125")
//
//	sc, err := ingest.NewScraper(ingest.ScrapeOptions{Common: common,
//		Targets: []string{"http://127.0.0.1:9100/metrics"}, Interval: 15 * time.Second})
//	go sc.Run(ctx)
//
//	hc, err := ingest.NewHostCollector(ingest.HostOptions{Common: common})
//	go hc.Run(ctx)
//
// ListenAndServe, Serve and both Run methods return nil once ctx is done, after every goroutine they
// started has ended; cancel ctx and wait for them to stop a source.
//
// # The Sink
//
// Sink.Deliver gets one validated Record at a time. It is called from many goroutines at once and
// must not block for long: when it cannot take a record it returns an error wrapping ErrSinkFull.
// The HTTP handler reports that record as refused (status 503 with Retry-After when nothing else was
// wrong); the other sources count it (reason sink_full) and move on. Nothing here retries.
//
// # HTTP: POST /v1/metrics, POST /v1/alerts
//
// The body is one JSON object or an array of them (Content-Type application/json, or none):
//
//	{"name": "cpu.load", "kind": "gauge", "value": 0.42,
//	 "tags": {"host": "a", "dc": "x"}, "timestamp_ms": 1700000000000, "source": "api"}
//	{"name": "disk.full", "severity": "critical", "message": "/var at 98%",
//	 "tags": [["host", "a"]], "timestamp_ms": 1700000000000, "source": "api"}
//
// Field names are WIRE.md's. Metrics need name, kind (counter, gauge, histogram) and value (a JSON
// number within float64: 1e999 is refused, there is no NaN); alerts need name and severity (info,
// warning, critical); message defaults to "". tags is an object of string values or an array of
// [key, value] string pairs; both keep the order written (objects are read as a token stream, never
// through a Go map), and a repeated key is refused by Validate. timestamp_ms is an integer; without
// it a record gets the time the request arrived (Common.Now). source defaults to HTTPOptions.Source.
// A null field is an absent one; an unknown or repeated field is refused, so a typo is an error
// rather than lost data. A record whose JSON is not valid UTF-8 is refused (encoding/json would
// replace the bytes silently; escaped lone surrogates do become U+FFFD).
//
// Every answer is a Response, {"accepted": N, "refused": [{"index": i, "error": "..."}]}, with "error"
// for a request refused as a whole. Status 200: all accepted. 400: some records refused for their
// content, the others delivered; or a body that is not JSON (nothing delivered). 503: records
// refused only by the sink. 413: a body over MaxBodyBytes (default 1 MiB) or more than MaxRecords
// records (default 1000); nothing delivered. 415, 405, 404: wrong Content-Type, method or path.
// Records of one request reach the sink in request order.
//
// # StatsD over UDP
//
// One line per record, several lines per datagram, separated by \n:
//
//	name:value|type[|@rate][|#key:value,key2:value2,flag][|Tseconds][|c:container]
//
// Types: c is a Counter whose value is divided by the rate (a line sampled at @0.1 counts ten
// times); g is a Gauge; ms, h and d are a Histogram observation, value as sent, rate ignored. A
// gauge value with a leading + or - is a StatsD delta against the previous value; the agent keeps no
// gauge state, so such lines are refused (ErrGaugeDelta, counted as gauge_delta) rather than sent as
// a wrong absolute value. As in Etsy StatsD, a negative gauge therefore cannot travel over StatsD
// (DogStatsD would read "-3" as absolute); send it over HTTP. Sets, DogStatsD events and service
// checks are refused (ErrStatsDType).
// Tags are DogStatsD's: key:value, or a bare key meaning an empty value; the value may contain
// colons; a key may not be empty. |T is a Unix time in seconds (|T0 counts as absent); c: is
// ignored. Records get the time the packet arrived and StatsDOptions.Source. A datagram over
// MaxPacketBytes (default 8192) is refused whole, since its end may be cut. ParseStatsDLine is the
// parser: a pure function that never panics (fuzzed). Malformed lines are counted by reason and
// logged within the rate limit.
//
// # Prometheus scraping
//
// Each target is fetched with Accept: text/plain;version=0.0.4, and the body (at most MaxBodyBytes,
// default 16 MiB) is parsed by expfmt's TextParser with UTF-8 name validation. Each sample becomes a
// Metric named after its family, with its labels as tags sorted by key, ScrapeOptions.Source as
// source, and its own timestamp or else the scrape's start:
//
//	counter                 -> Counter
//	gauge, untyped          -> Gauge (untyped could be either; a gauge is never mistaken for a rate)
//	histogram               -> name_bucket{le="0.1"} ... name_bucket{le="+Inf"}, name_sum, name_count,
//	                           all Counter (cumulative), le formatted as Prometheus does
//	gauge histogram         -> the same, as Gauge
//	summary                 -> name{quantile="0.5"} ... as Gauge, then name_sum and name_count as Counter
//
// A name_sum or name_count line missing from the exposition yields no record (never a made-up 0).
// Families are delivered in name order, samples in exposition order. A scrape that fails (transport
// error, non-200 status, body too large, malformed exposition, more than MaxSamples samples, default
// 100000) delivers nothing and counts as a refused request; a sample refused alone (a NaN value, say)
// is counted and the others are delivered. Targets of one round are scraped concurrently, each within
// Timeout (default 10 s, at most Interval, default 15 s).
//
// # Host metrics
//
// HostCollector reads /proc every Interval (default 10 s), for the default configuration of make run:
//
//	host_load1, host_load5, host_load15            Gauge   /proc/loadavg
//	host_memory_total_bytes, _free_bytes,          Gauge   /proc/meminfo (kB * 1024); MemAvailable
//	host_memory_available_bytes,                           and swap lines only where the kernel has them
//	host_swap_total_bytes, host_swap_free_bytes
//	host_uptime_seconds                            Gauge   /proc/uptime
//	host_cpu_seconds_total{mode}                   Counter /proc/stat "cpu" line / USER_HZ (100):
//	                                                       user nice system idle iowait irq softirq steal
//
// A file that cannot be read is counted and reported; the other files' metrics are still delivered.
//
// # Counters and logs
//
// With a Registerer, the sources export (several sources may share one Registerer):
//
//	pharos_ingest_records_accepted_total{source}          records the sink took
//	pharos_ingest_records_refused_total{source,reason}    records refused one by one
//	pharos_ingest_requests_refused_total{source,reason}   HTTP requests, StatsD packets, scrapes and
//	                                                      /proc reads refused or failed as a whole
//
// source is http, statsd, scrape or host; reason is one of the Reason constants, a fixed set.
// Refusals and failures are logged at warning level on Common.Logger, at most LogBurst (5) messages
// per LogPeriod (10 s) per source; the first message after a quiet spell carries "suppressed", the
// count of those dropped.
//
// # Concurrency
//
// Handler.ServeHTTP, StatsD.HandlePacket, Scraper.Scrape and HostCollector.Collect are safe for
// concurrent use. A StatsD listener reads and delivers on the goroutine that called Serve, so the
// lines of a packet, and packets as read, reach the sink in order. The package keeps no global state:
// clock, logger, registerer and limits come in through Common.
package ingest
