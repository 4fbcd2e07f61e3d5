package otelexport

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// stats are the counts Stats returns.
type stats struct {
	points, delivered atomic.Uint64
	pointsRefused     reasonCounts
	recordsRefused    reasonCounts
}

// reasonCounts counts by reason, a small fixed set.
type reasonCounts struct {
	mu sync.Mutex
	m  map[string]uint64
}

func (r *reasonCounts) add(reason string, n uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]uint64{}
	}
	r.m[reason] += n
}

func (r *reasonCounts) snapshot() map[string]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]uint64, len(r.m))
	for k, v := range r.m {
		out[k] = v
	}
	return out
}

// metrics are the exporter's Prometheus counters (docs/otel.md).
type metrics struct {
	points, delivered prometheus.Counter
	pointsRefused     *prometheus.CounterVec
	recordsRefused    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		points: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "pharos", Subsystem: "otelexport",
			Name: "points_total", Help: "OTel data points the exporter mapped."}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "pharos", Subsystem: "otelexport",
			Name: "records_delivered_total", Help: "Records the agent took from the exporter."}),
		pointsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "pharos", Subsystem: "otelexport",
			Name: "points_refused_total", Help: "OTel data points refused by the mapping, by reason."}, []string{"reason"}),
		recordsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "pharos", Subsystem: "otelexport",
			Name: "records_refused_total", Help: "Records the agent did not take, by reason."}, []string{"reason"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.points, m.delivered, m.pointsRefused, m.recordsRefused} {
		if err := reg.Register(c); err != nil { // AlreadyRegisteredError: one exporter per Registerer
			return nil, fmt.Errorf("otelexport: register counters: %w", err)
		}
	}
	return m, nil
}
