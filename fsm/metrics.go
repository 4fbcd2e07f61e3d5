package fsm

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the manager's Prometheus collectors. Create them once with
// NewMetrics and hand the same value to every restart of the manager (a
// second registration of the same names would fail). A nil *Metrics is valid
// and records nothing.
type Metrics struct {
	state           *prometheus.GaugeVec
	transitions     *prometheus.CounterVec
	backoff         prometheus.Gauge
	ringRecords     prometheus.Gauge
	ringBytes       prometheus.Gauge
	spillRecords    prometheus.Gauge
	spillBytes      prometheus.Gauge
	delivered       prometheus.Counter
	dropped         prometheus.Counter
	possiblyLost    prometheus.Counter
	reconnects      prometheus.Counter
	connectResults  *prometheus.CounterVec
	staleTimeouts   prometheus.Counter
	restarts        prometheus.Counter
	confirmed       prometheus.Counter
	confirmRounds   prometheus.Counter
	confirmTimeouts prometheus.Counter
	unconfirmed     prometheus.Gauge
	peerBusyTotal   prometheus.Counter
	backlog         prometheus.Gauge
	probes          *prometheus.CounterVec
	drainEstimate   prometheus.Gauge

	// Acknowledged mode.
	ackTimeouts    prometheus.Counter
	ackedRecords   prometheus.Counter
	inflight       prometheus.Gauge
	unackedRecords prometheus.Gauge
	unackedBytes   prometheus.Gauge
	batchesSent    prometheus.Counter
	batchRecords   prometheus.Counter
	resent         prometheus.Counter
	acksIgnored    *prometheus.CounterVec
	seqGaps        prometheus.Counter
}

// NewMetrics builds the collectors and registers them with reg. A nil reg
// builds working but unregistered collectors. constLabels (may be nil)
// distinguish several managers in one registry, e.g. {"sink": "brain"}.
func NewMetrics(reg prometheus.Registerer, constLabels prometheus.Labels) (*Metrics, error) {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "pharos", Subsystem: "fsm", Name: name, Help: help, ConstLabels: constLabels}
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts(opts(name, help)))
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts(opts(name, help)))
	}
	m := &Metrics{
		state:           prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("state", "1 for the manager's current state, 0 for the others.")), []string{"state"}),
		transitions:     prometheus.NewCounterVec(prometheus.CounterOpts(opts("transitions_total", "State changes.")), []string{"from", "to"}),
		backoff:         gauge("backoff_seconds", "Retry delay armed on the last disconnection."),
		ringRecords:     gauge("ring_records", "Records in the RAM ring."),
		ringBytes:       gauge("ring_bytes", "Bytes in the RAM ring."),
		spillRecords:    gauge("spill_records", "Records on the disk tier, not yet replayed."),
		spillBytes:      gauge("spill_bytes", "Bytes on the disk tier, not yet replayed."),
		delivered:       counter("delivered_total", "Records handed to the transport successfully."),
		dropped:         counter("dropped_total", "Records evicted from the RAM ring (no disk tier, or the disk tier refused them)."),
		possiblyLost:    counter("possibly_lost_total", "Records delivered in the last flush interval before a connection drop; distribution gives no receipt, so they may be lost (docs/wire.md)."),
		reconnects:      counter("reconnects_total", "Successful connections after the first one."),
		connectResults:  prometheus.NewCounterVec(prometheus.CounterOpts(opts("connect_attempts_total", "Connection attempts by result.")), []string{"result"}),
		staleTimeouts:   counter("stale_timeouts_total", "Timer firings dropped because their state timeout had been cancelled or replaced."),
		restarts:        counter("restarts_total", "Times the supervisor restarted the connection manager after it crashed (a panic, a kill)."),
		confirmed:       counter("confirmed_total", "Payload, term and subject modes: records a round trip through the Brain's node confirmed in the Brain's mailbox."),
		confirmRounds:   counter("confirm_rounds_total", "Payload, term and subject modes: delivery confirmation round trips started."),
		confirmTimeouts: counter("confirm_timeouts_total", "Payload, term and subject modes: round trips not answered in time (the connection was taken as lost)."),
		unconfirmed:     gauge("unconfirmed_records", "Payload, term and subject modes: records delivered and not yet confirmed."),
		backlog:         gauge("backlog_records", "Records waiting to be delivered (and, with confirmations or in the acknowledged mode, confirmed or acknowledged): the inbox, the RAM tier and the disk tier."),
		drainEstimate:   gauge("drain_seconds_estimate", "Seconds until the backlog is gone at the rate it fell over the last seconds (delivered minus arrived); 0 with no backlog, +Inf while it does not fall."),
		probes:          prometheus.NewCounterVec(prometheus.CounterOpts(opts("probes_total", "Probes of the Brain while disconnected, by result (reachable, unreachable): a reachable one brings the reconnect forward.")), []string{"result"}),
		peerBusyTotal:   counter("peer_busy_total", "Deliveries the transport refused because the Brain was busy (its mailbox over brain.queue_limit): the manager waited in Throttled."),
		ackTimeouts:     counter("ack_timeouts_total", "Acknowledged mode: times the Brain was taken as lost for not acknowledging within the ack timeout."),
		ackedRecords:    counter("acked_records_total", "Acknowledged mode: records the Brain acknowledged (or had already processed)."),
		inflight:        gauge("inflight_records", "Acknowledged mode: records sent and not yet acknowledged."),
		unackedRecords:  gauge("unacked_records", "Acknowledged mode: records held (RAM or disk) until acknowledged, in flight or not yet sent."),
		unackedBytes:    gauge("unacked_bytes", "Acknowledged mode: bytes of the records held until acknowledged."),
		batchesSent:     counter("batches_sent_total", "Acknowledged mode: pharos_batch messages sent, resends included (not the probes)."),
		batchRecords:    counter("batch_records_total", "Acknowledged mode: records sent in batches, resends included."),
		resent:          counter("resent_records_total", "Records sent again: acknowledged mode, after a go-back, a reconnect or an ack timeout; the other modes, records a drop left unconfirmed."),
		acksIgnored:     prometheus.NewCounterVec(prometheus.CounterOpts(opts("acks_ignored_total", "Acknowledged mode: pharos_ack messages ignored, by reason (stale, foreign, beyond, state, malformed).")), []string{"reason"}),
		seqGaps:         counter("seq_gaps_total", "Acknowledged mode: holes in the log's sequence numbers closed by renumbering."),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{
		m.state, m.transitions, m.backoff, m.ringRecords, m.ringBytes, m.spillRecords, m.spillBytes,
		m.delivered, m.dropped, m.possiblyLost, m.reconnects, m.connectResults, m.staleTimeouts, m.restarts,
		m.confirmed, m.confirmRounds, m.confirmTimeouts, m.unconfirmed, m.peerBusyTotal, m.backlog, m.drainEstimate, m.probes,
		m.ackTimeouts, m.ackedRecords, m.inflight, m.unackedRecords, m.unackedBytes, m.batchesSent,
		m.batchRecords, m.resent, m.acksIgnored, m.seqGaps,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("fsm: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *Metrics) setState(s State) {
	if m == nil {
		return
	}
	for _, each := range States() {
		v := 0.0
		if each == s {
			v = 1
		}
		m.state.WithLabelValues(each.String()).Set(v)
	}
}

func (m *Metrics) transition(from, to State) {
	if m == nil {
		return
	}
	m.transitions.WithLabelValues(from.String(), to.String()).Inc()
	m.setState(to)
}

func (m *Metrics) setBackoffSeconds(s float64) {
	if m != nil {
		m.backoff.Set(s)
	}
}

func (m *Metrics) setDepths(ringRecords, ringBytes int, spillRecords int, spillBytes int64) {
	if m == nil {
		return
	}
	m.ringRecords.Set(float64(ringRecords))
	m.ringBytes.Set(float64(ringBytes))
	m.spillRecords.Set(float64(spillRecords))
	m.spillBytes.Set(float64(spillBytes))
}

func (m *Metrics) addDelivered(n int) {
	if m != nil && n > 0 {
		m.delivered.Add(float64(n))
	}
}

func (m *Metrics) addDropped(n int) {
	if m != nil && n > 0 {
		m.dropped.Add(float64(n))
	}
}

func (m *Metrics) addPossiblyLost(n int) {
	if m != nil && n > 0 {
		m.possiblyLost.Add(float64(n))
	}
}

func (m *Metrics) connectResult(ok, reconnect bool) {
	if m == nil {
		return
	}
	if ok {
		m.connectResults.WithLabelValues("ok").Inc()
		if reconnect {
			m.reconnects.Inc()
		}
		return
	}
	m.connectResults.WithLabelValues("error").Inc()
}

func (m *Metrics) staleTimeout() {
	if m != nil {
		m.staleTimeouts.Inc()
	}
}

func (m *Metrics) ackTimeout() {
	if m != nil {
		m.ackTimeouts.Inc()
	}
}

func (m *Metrics) addAcked(n uint64) {
	if m != nil && n > 0 {
		m.ackedRecords.Add(float64(n))
	}
}

func (m *Metrics) batchSent(records int, resent uint64) {
	if m == nil {
		return
	}
	m.batchesSent.Inc()
	m.batchRecords.Add(float64(records))
	if resent > 0 {
		m.resent.Add(float64(resent))
	}
}

func (m *Metrics) ackIgnored(reason string) {
	if m != nil {
		m.acksIgnored.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) seqGap() {
	if m != nil {
		m.seqGaps.Inc()
	}
}

func (m *Metrics) setAckedDepths(inflight uint64, records int, bytes int64) {
	if m == nil {
		return
	}
	m.inflight.Set(float64(inflight))
	m.unackedRecords.Set(float64(records))
	m.unackedBytes.Set(float64(bytes))
}

func (m *Metrics) restart() {
	if m != nil {
		m.restarts.Inc()
	}
}

func (m *Metrics) confirmRound() {
	if m != nil {
		m.confirmRounds.Inc()
	}
}

func (m *Metrics) confirmTimeout() {
	if m != nil {
		m.confirmTimeouts.Inc()
	}
}

func (m *Metrics) addConfirmed(n int) {
	if m != nil && n > 0 {
		m.confirmed.Add(float64(n))
	}
}

func (m *Metrics) addResent(n int) {
	if m != nil && n > 0 {
		m.resent.Add(float64(n))
	}
}

func (m *Metrics) setUnconfirmed(n int) {
	if m != nil {
		m.unconfirmed.Set(float64(n))
	}
}

func (m *Metrics) peerBusy() {
	if m != nil {
		m.peerBusyTotal.Inc()
	}
}

func (m *Metrics) setBacklog(records int, drainSeconds float64) {
	if m != nil {
		m.backlog.Set(float64(records))
		m.drainEstimate.Set(drainSeconds)
	}
}

func (m *Metrics) probe(reachable bool) {
	if m == nil {
		return
	}
	if reachable {
		m.probes.WithLabelValues("reachable").Inc()
	} else {
		m.probes.WithLabelValues("unreachable").Inc()
	}
}
