package otlpsink

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons a record is dropped: the values of pharos_otlpsink_dropped_total's reason label, a
// fixed set: ReasonUndecodable, ReasonPartialSuccess, and "http_" plus the status of a 4xx
// answer that drops a request (ReasonStatus).
const (
	ReasonUndecodable    = "undecodable"     // neither a metric nor an alert record
	ReasonPartialSuccess = "partial_success" // refused by the receiver in a 2xx answer's partial_success
)

// ReasonStatus is the drop reason of an HTTP status: "http_400".
func ReasonStatus(status int) string { return "http_" + strconv.Itoa(status) }

// Stats are the sink's counters since New, over every transport it built.
type Stats struct {
	Requests  uint64            // requests answered (any status), probes included
	Sent      uint64            // data points and log records a 2xx answer accepted
	Rejected  uint64            // of those sent in 2xx answers, refused in partial_success
	Throttled uint64            // answers asking to retry (429, 5xx)
	Failed    uint64            // requests without an answer (network errors, timeouts)
	Dropped   map[string]uint64 // records dropped, by reason (partial_success included)
}

// counters are Stats, safe for concurrent use, and the Prometheus collectors.
type counters struct {
	requests, sent, rejected, throttled, failed atomic.Uint64

	mu      sync.Mutex
	dropped map[string]uint64

	reqs    *prometheus.CounterVec // signal, status ("200", "503", "error")
	records *prometheus.CounterVec // signal: accepted points and log records
	drops   *prometheus.CounterVec // reason
	bytes   prometheus.Counter
}

func newCounters(reg prometheus.Registerer) (*counters, error) {
	c := &counters{
		dropped: map[string]uint64{},
		reqs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pharos_otlpsink_requests_total",
			Help: "OTLP/HTTP requests by signal and answer: the HTTP status, or error when none came"}, []string{"signal", "status"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pharos_otlpsink_records_sent_total",
			Help: "Records the OTLP receiver accepted (2xx, less partial_success), by signal"}, []string{"signal"}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pharos_otlpsink_dropped_total",
			Help: "Records dropped by the OTLP transport, by reason (a 4xx answer, partial_success, undecodable)"}, []string{"reason"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "pharos_otlpsink_request_bytes_total",
			Help: "Request body bytes sent to the OTLP receiver, as sent (compressed)"}),
	}
	if reg != nil {
		for _, col := range []prometheus.Collector{c.reqs, c.records, c.drops, c.bytes} {
			if err := reg.Register(col); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

func (c *counters) request(sig signal, status int, bytes int) {
	c.requests.Add(1)
	c.bytes.Add(float64(bytes))
	c.reqs.WithLabelValues(sig.String(), strconv.Itoa(status)).Inc()
}

func (c *counters) failure(sig signal) {
	c.failed.Add(1)
	c.reqs.WithLabelValues(sig.String(), "error").Inc()
}

func (c *counters) accepted(sig signal, n int) {
	c.sent.Add(uint64(n))
	c.records.WithLabelValues(sig.String()).Add(float64(n))
}

func (c *counters) drop(reason string, n int) {
	if n <= 0 {
		return
	}
	c.mu.Lock()
	c.dropped[reason] += uint64(n)
	c.mu.Unlock()
	c.drops.WithLabelValues(reason).Add(float64(n))
}

func (c *counters) stats() Stats {
	s := Stats{Requests: c.requests.Load(), Sent: c.sent.Load(), Rejected: c.rejected.Load(),
		Throttled: c.throttled.Load(), Failed: c.failed.Load(), Dropped: map[string]uint64{}}
	c.mu.Lock()
	for k, v := range c.dropped {
		s.Dropped[k] = v
	}
	c.mu.Unlock()
	return s
}
