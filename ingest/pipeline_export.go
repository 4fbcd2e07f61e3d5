package ingest

import (
	"time"

	"github.com/pharos-node/pharos-node/etf"
)

// KindOTLP is the source label of the OTLP receiver (package ingest/otlp).
const KindOTLP = "otlp"

// Pipeline is the path every source of this package shares (deliver to the Sink, count, log
// within the rate limit), for a source that lives in another package (ingest/otlp). Records go
// to the same counters as this package's sources, under the source label kind; refusals are
// counted under a reason the caller names, from a fixed set of its own.
type Pipeline struct{ p *pipeline }

// NewPipeline returns the Pipeline of a source of kind kind (its source label).
func NewPipeline(kind string, c Common) (*Pipeline, error) {
	p, err := newPipeline(kind, c)
	if err != nil {
		return nil, err
	}
	return &Pipeline{p: p}, nil
}

// DeliverValid hands m, which already passed etf's Validate under Limits, to the Sink and counts
// it: accepted, or refused with reason sink_full or sink_error. The error wraps the Sink's (so
// errors.Is(err, ErrSinkFull) tells a full sink).
func (p *Pipeline) DeliverValid(m etf.Metric) error { return p.p.deliver(MetricRecord(m)) }

// CountRefused counts n records (or data points) refused for reason.
func (p *Pipeline) CountRefused(reason string, n int) {
	p.p.counters.refused.WithLabelValues(p.p.kind, reason).Add(float64(n))
}

// CountRequestRefused counts one request refused as a whole for reason.
func (p *Pipeline) CountRequestRefused(reason string) {
	p.p.counters.requestsRefused.WithLabelValues(p.p.kind, reason).Inc()
}

// Warn logs err at warning level within the rate limit, with reason and the string fields kv
// (key, value, ...).
func (p *Pipeline) Warn(msg, reason string, err error, kv ...string) {
	ev := p.p.log.Warn()
	if ev == nil {
		return
	}
	ok, suppressed := p.p.sampler.allow()
	if !ok {
		ev.Discard()
		return
	}
	ev = ev.Err(err).Str("reason", reason)
	for i := 0; i+1 < len(kv); i += 2 {
		ev = ev.Str(kv[i], kv[i+1])
	}
	if suppressed > 0 {
		ev = ev.Int("suppressed", suppressed)
	}
	ev.Msg(msg)
}

// Now is Common.Now.
func (p *Pipeline) Now() time.Time { return p.p.now() }

// Limits are Common.Limits.
func (p *Pipeline) Limits() etf.RecordLimits { return p.p.limits }
