package ingest

import (
	"github.com/pharos-node/pharos-node/etf"
)

// Record is one record entering the agent: exactly one of Metric and Alert is set. A Sink receives
// only records that passed etf's Validate.
type Record struct {
	Metric *etf.Metric
	Alert  *etf.Alert
}

// MetricRecord wraps m in a Record.
func MetricRecord(m etf.Metric) Record { return Record{Metric: &m} }

// AlertRecord wraps a in a Record.
func AlertRecord(a etf.Alert) Record { return Record{Alert: &a} }

// Sink is where every source of this package hands its validated records: in the daemon, the queue
// in front of the connection manager.
//
// Deliver is called from several goroutines at once (HTTP requests, the StatsD listener, each
// scrape, the host collector), so it must be safe for concurrent use. It must not block for long:
// when it cannot take the record now it returns an error wrapping ErrSinkFull, which the HTTP
// handler reports for that record (status 503 when nothing else was wrong) and the other sources
// count. Any other error is reported and counted the same way, with reason "sink_error". The
// Record's pointers are not reused by the caller after Deliver returns, so the Sink may keep them.
type Sink interface {
	Deliver(rec Record) error
}

// MetricsSink is a Sink that also takes many metrics in one call, as agent.Agent does. The sources
// hand a decoded request, a packet's lines or a scrape's samples to DeliverMetrics when their Sink
// has it, and to Deliver one by one otherwise.
//
// DeliverMetrics takes ms in order and returns how many it took, from the front. With fewer than
// all, err says why it refused the next one (wrapping ErrSinkFull when it is full), and it has not
// looked at those after it: the caller counts that one as refused and offers the rest again. The
// metrics passed validation under the source's limits. DeliverMetrics must not keep ms, the
// metrics' Tags or their strings after it returns (nor put them in its error): the sources reuse
// those buffers for the next request or packet. agent.Agent encodes each metric at once.
type MetricsSink interface {
	Sink
	DeliverMetrics(ms []etf.Metric) (int, error)
}

// SinkFunc adapts a function to the Sink interface.
type SinkFunc func(rec Record) error

// Deliver calls f(rec).
func (f SinkFunc) Deliver(rec Record) error { return f(rec) }
