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

// SinkFunc adapts a function to the Sink interface.
type SinkFunc func(rec Record) error

// Deliver calls f(rec).
func (f SinkFunc) Deliver(rec Record) error { return f(rec) }
