package otelexport

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/ingest"
	"github.com/pharos-node/pharos-node/internal/otelmap"
)

// Deliverer takes records for the Brain: an *agent.Agent. DeliverMetrics accepts metrics from
// the front and says how many; with fewer than all, its error says why the next was not taken.
type Deliverer interface {
	DeliverMetrics(ms []etf.Metric) (int, error)
}

// Errors of Export and New.
var (
	// ErrShutdown: Export after Shutdown.
	ErrShutdown = errors.New("otelexport: exporter shut down")
	// ErrNoDeliverer: Options.Deliverer is nil.
	ErrNoDeliverer = errors.New("otelexport: Options.Deliverer is nil")
)

// Reasons of records the Deliverer did not take, beside otelmap's reasons for refused points.
const (
	ReasonSinkFull  = "sink_full"  // the agent stayed busy until the export's context ended
	ReasonSinkError = "sink_error" // the agent refused for another reason (closed)
	ReasonInvalid   = "invalid"    // the agent's own limits refused a record the mapping passed
)

// DefaultBusyPause is how long Export waits before trying again while the agent is busy.
const DefaultBusyPause = 5 * time.Millisecond

// Options configure an Exporter. Only Deliverer is required.
type Options struct {
	// Deliverer is where records go: an *agent.Agent.
	Deliverer Deliverer
	// Limits, DefaultSource and ResourceTags configure the mapping (docs/otel.md). Use the
	// agent's limits.
	Limits        etf.RecordLimits
	DefaultSource string
	ResourceTags  []string
	// Temporality is what the exporter asks the SDK for. Nil: cumulative for every instrument
	// (docs/otel.md says why). sdkmetric.DeltaTemporalitySelector makes counters and histograms
	// deltas; up-down counters then stay cumulative (a delta has no gauge form).
	Temporality sdkmetric.TemporalitySelector
	// Aggregation is the SDK's default aggregation per instrument kind. Nil:
	// sdkmetric.DefaultAggregationSelector (explicit-bucket histograms).
	Aggregation sdkmetric.AggregationSelector
	// BusyPause is the wait between tries while the agent is busy. Default DefaultBusyPause.
	BusyPause time.Duration
	// Registerer gets the exporter's counters (docs/otel.md). Nil: kept, not exported.
	Registerer prometheus.Registerer
	// Now stamps points whose time is 0. Nil: time.Now.
	Now func() time.Time
}

// Exporter is a metric exporter of the OTel Go SDK (sdkmetric.Exporter) that maps every
// export to WIRE.md records and hands them to an agent.
type Exporter struct {
	deliverer   Deliverer
	mapper      *otelmap.Mapper
	temporality sdkmetric.TemporalitySelector
	aggregation sdkmetric.AggregationSelector
	busyPause   time.Duration
	shut        atomic.Bool
	stats       stats
	metrics     *metrics
}

var _ sdkmetric.Exporter = (*Exporter)(nil)

// New returns an Exporter.
func New(opts Options) (*Exporter, error) {
	if opts.Deliverer == nil {
		return nil, ErrNoDeliverer
	}
	e := &Exporter{
		deliverer: opts.Deliverer,
		mapper: otelmap.New(otelmap.Options{Limits: opts.Limits, DefaultSource: opts.DefaultSource,
			ResourceTags: opts.ResourceTags, Now: opts.Now}),
		temporality: opts.Temporality,
		aggregation: opts.Aggregation,
		busyPause:   opts.BusyPause,
	}
	if e.temporality == nil {
		e.temporality = sdkmetric.CumulativeTemporalitySelector
	}
	if e.aggregation == nil {
		e.aggregation = sdkmetric.DefaultAggregationSelector
	}
	if e.busyPause <= 0 {
		e.busyPause = DefaultBusyPause
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	e.metrics = m
	return e, nil
}

// Temporality is the temporality asked for kind: Options.Temporality's, except that an
// up-down counter is always cumulative.
func (e *Exporter) Temporality(kind sdkmetric.InstrumentKind) metricdata.Temporality {
	switch kind {
	case sdkmetric.InstrumentKindUpDownCounter, sdkmetric.InstrumentKindObservableUpDownCounter:
		return metricdata.CumulativeTemporality
	}
	return e.temporality(kind)
}

// Aggregation is Options.Aggregation's.
func (e *Exporter) Aggregation(kind sdkmetric.InstrumentKind) sdkmetric.Aggregation {
	return e.aggregation(kind)
}

// Export maps rm and delivers the records, in order. A refused point (docs/otel.md) is counted
// and left out; the others go through. While the agent is busy, Export waits and tries again
// until ctx is done; what is left then is counted (sink_full). The error, if any, is a
// *otelmap.RefusedError for the refused points and/or the delivery's error; the SDK hands it to
// its error handler.
func (e *Exporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	if e.shut.Load() {
		return ErrShutdown
	}
	b := e.mapper.NewBatch()
	mapResourceMetrics(e.mapper, b, rm)
	e.count(b)
	derr := e.deliver(ctx, b.Records)
	return errors.Join(b.Err(), derr)
}

// deliver hands recs to the Deliverer, skipping records it finds invalid, waiting while it is
// busy.
func (e *Exporter) deliver(ctx context.Context, recs []etf.Metric) error {
	var firstInvalid error
	for len(recs) > 0 {
		n, err := e.deliverer.DeliverMetrics(recs)
		e.stats.delivered.Add(uint64(n))
		e.metrics.delivered.Add(float64(n))
		recs = recs[n:]
		if err == nil {
			continue
		}
		var verr *etf.ValidationError
		switch {
		case errors.As(err, &verr):
			e.refuseRecords(ReasonInvalid, 1)
			if firstInvalid == nil {
				firstInvalid = fmt.Errorf("otelexport: the deliverer refused record %q: %w", recs[0].Name, err)
			}
			recs = recs[1:]
		case errors.Is(err, ingest.ErrSinkFull):
			t := time.NewTimer(e.busyPause)
			select {
			case <-ctx.Done():
				t.Stop()
				e.refuseRecords(ReasonSinkFull, len(recs))
				return errors.Join(firstInvalid, fmt.Errorf("otelexport: %d records not delivered: %w (%w)", len(recs), err, ctx.Err()))
			case <-t.C:
			}
		default:
			e.refuseRecords(ReasonSinkError, len(recs))
			return errors.Join(firstInvalid, fmt.Errorf("otelexport: %d records not delivered: %w", len(recs), err))
		}
	}
	return firstInvalid
}

// ForceFlush does nothing: the exporter holds nothing between exports.
func (e *Exporter) ForceFlush(context.Context) error { return nil }

// Shutdown makes later exports fail with ErrShutdown. It does not close the agent.
func (e *Exporter) Shutdown(context.Context) error {
	e.shut.Store(true)
	return nil
}

// Stats are the exporter's counts since New.
type Stats struct {
	Points         uint64            // data points mapped
	PointsRefused  map[string]uint64 // data points refused, by otelmap reason
	Delivered      uint64            // records the agent took
	RecordsRefused map[string]uint64 // records the agent did not take, by reason
}

// Stats returns the counts since New.
func (e *Exporter) Stats() Stats {
	return Stats{
		Points:         e.stats.points.Load(),
		PointsRefused:  e.stats.pointsRefused.snapshot(),
		Delivered:      e.stats.delivered.Load(),
		RecordsRefused: e.stats.recordsRefused.snapshot(),
	}
}

func (e *Exporter) count(b *otelmap.Batch) {
	e.stats.points.Add(uint64(b.Points))
	e.metrics.points.Add(float64(b.Points))
	for reason, n := range b.ByReason {
		e.stats.pointsRefused.add(reason, uint64(n))
		e.metrics.pointsRefused.WithLabelValues(reason).Add(float64(n))
	}
}

func (e *Exporter) refuseRecords(reason string, n int) {
	e.stats.recordsRefused.add(reason, uint64(n))
	e.metrics.recordsRefused.WithLabelValues(reason).Add(float64(n))
}
