package fsm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/tier"
)

// The acknowledged mode (Config.Delivery == DeliveryAcked): records are
// numbered by the SeqLog as they arrive, sent as pharos_batch messages with
// up to Acked.Window batches in flight, and trimmed from the log only when
// a cumulative pharos_ack covers them. doc.go, "The acknowledged mode",
// describes the numbering and the state table; this file implements them.

// ErrAckTimeout is the cause logged when the Brain stops acknowledging
// (Acked.AckTimeout without progress while something is in flight).
var ErrAckTimeout = errors.New("fsm: acknowledgement timeout")

// Reasons an acknowledgement is ignored (the label of
// pharos_fsm_acks_ignored_total).
const (
	ackIgnoredStale   = "stale"   // NextSeq below the one already accepted
	ackIgnoredForeign = "foreign" // another SourceId
	ackIgnoredBeyond  = "beyond"  // NextSeq past what was sent: a protocol error
	ackIgnoredState   = "state"   // not Streaming: the next probe learns it again
	// ackIgnoredMalformed: a term tagged pharos_ack that is not one (the
	// wrong arity, a SourceId that is no binary, a NextSeq that is no
	// non-negative 64-bit integer).
	ackIgnoredMalformed = "malformed"
)

// inflightBatch is one batch sent and not yet fully acknowledged: the
// records numbered firstWire .. firstWire+n-1.
type inflightBatch struct {
	firstWire uint64
	n         int
}

// ackedData is the acknowledged mode's part of the manager's data.
type ackedData struct {
	cfg       AckedConfig
	transport AckTransport
	log       SeqLog
	sourceID  string

	synced    bool   // the first acknowledgement since the last connect arrived
	haveAcked bool   // ackedWire holds a value the Brain sent
	ackedWire uint64 // the Brain's NextSeq, as last accepted
	nextWire  uint64 // wire number of the next record taken from the log
	highWire  uint64 // one past the highest wire number ever given (or the Brain's NextSeq)
	skipping  bool   // just after a (re)synchronisation: records below nextWire are processed
	// markerFrom, while markerSet: the log's unsent marker; records
	// numbered from it on were never sent since the log's last restart.
	markerSet  bool
	markerFrom uint64

	inflight  []inflightBatch
	readahead []tier.Record
	rpos      int
	payloads  [][]byte
	unsent    int // records in the log after the cursor (an estimate; Read is the truth)

	pendingSince time.Time // when the oldest unsent record arrived
	lastProgress time.Time // last acknowledgement progress, or when waiting started
	timerAt      time.Time // deadline of the armed state timeout; zero: none armed by this mode

	sentSinceSync uint64 // batches sent since the last synchronisation
	acksSinceSync uint64 // acknowledgements accepted since then
	staleAcks     uint64 // acknowledgements of batches sent before the last go-back

	lastAckWarn time.Time
}

// awaiting reports whether an acknowledgement is due: the probe or a batch
// is in flight.
func (a *ackedData) awaiting() bool { return !a.synced || len(a.inflight) > 0 }

// inflightRecords is the number of records sent and not acknowledged.
func (a *ackedData) inflightRecords() uint64 {
	if !a.synced {
		return 0
	}
	return a.nextWire - a.ackedWire
}

// rewind moves the log's cursor back to the oldest untrimmed record and
// numbers what follows from nextWire again. The backlog is due at once.
func (a *ackedData) rewind(now time.Time) {
	a.inflight = a.inflight[:0]
	a.log.Rewind()
	a.readahead = a.readahead[:0]
	a.rpos = 0
	a.unsent = a.log.Len()
	a.skipping = true
	a.pendingSince = now.Add(-a.cfg.BatchDelay)
}

// disconnect forgets everything tied to the connection. The records stay in
// the log; the next connection resynchronises.
func (a *ackedData) disconnect() {
	a.inflight = a.inflight[:0]
	a.synced = false
	a.timerAt = time.Time{}
	a.staleAcks = 0
}

// ---------------------------------------------------------------------------
// Event handling
// ---------------------------------------------------------------------------

// ackedMode is the acknowledged mode's discipline.
type ackedMode struct {
	*connData
	acked *ackedData
}

func newAckedMode(d *connData, opts ManagerOptions) (*ackedMode, error) {
	if opts.AckTransport == nil {
		return nil, &ConfigError{Field: "AckTransport", Reason: "must not be nil in the acknowledged mode"}
	}
	if opts.Log == nil {
		return nil, &ConfigError{Field: "Log", Reason: "must not be nil in the acknowledged mode"}
	}
	a := &ackedData{cfg: opts.Config.Acked, transport: opts.AckTransport, log: opts.Log, sourceID: opts.Log.SourceID()}
	a.markerFrom, a.markerSet = opts.Log.UnsentFrom()
	return &ackedMode{connData: d, acked: a}, nil
}

// take stores every record in one event: the per-event dispatch cost more
// than storing a record. The machine handles it before Cast returns, and
// the log copied what it stored, so the records go back to ManagerOptions.Stored.
func (d *ackedMode) take(m *Manager, records [][]byte) {
	m.machine.Cast(ManagerEvent{Type: EventDeliver, records: records})
	if m.stored != nil {
		m.stored(records)
	}
}

// disconnected forgets everything tied to the connection. The records stay
// in the log; the next connection resynchronises.
func (d *ackedMode) disconnected(ev *zerolog.Event, _ error) *zerolog.Event {
	d.acked.disconnect()
	return ev
}

func (d *ackedMode) held() int { return d.acked.log.Len() }

func (d *ackedMode) confirmation(any) (uint64, bool) { return 0, false }

func (d *ackedMode) lossReason() error {
	if lr, ok := d.acked.transport.(LossReason); ok {
		return lr.LossReason()
	}
	return nil
}

func (d *ackedMode) reconfigure(cfg Config) { d.acked.cfg = cfg.Acked }

func (d *ackedMode) prober() Prober {
	p, _ := d.acked.transport.(Prober)
	return p
}

func (d *ackedMode) peerExit(message any) bool {
	pe, ok := d.acked.transport.(PeerExits)
	return ok && pe.IsPeerExit(message)
}

func (d *ackedMode) addStats(s *Stats) { s.InFlight = d.acked.inflightRecords() }

func (d *ackedMode) updateDepths() {
	if d.metrics != nil {
		d.metrics.setAckedDepths(d.acked.inflightRecords(), d.acked.log.Len(), d.acked.log.Bytes())
	}
}

func (d *ackedMode) handle(state State, ev ManagerEvent) step {
	switch ev.Type {
	case EventDeliver:
		if ev.records != nil {
			return d.ackedDeliver(state, ev.records)
		}
		return d.ackedDeliver(state, [][]byte{ev.Record})
	case EventTick:
		return d.onTick(state)
	case EventAttempt:
		return d.ackedAttempt(state)
	case EventFlushTick:
		return d.ackedTimer(state)
	case EventConnectionLost:
		return d.onConnectionLost(state)
	case EventAck:
		return d.ackedAck(state, ev.SourceID, ev.NextSeq)
	case EventProbe:
		return d.onProbe(state)
	default: // EventDrainTick: Throttled is never entered in this mode.
		return keep()
	}
}

// ackedKeep keeps the state; in Streaming it (re)arms the timer if the next
// deadline is earlier than the armed one.
func (d *ackedMode) ackedKeep(state State) step {
	if state != Streaming {
		return keep()
	}
	return keep(d.rearm()...)
}

// ackedDeliver stores records in the log, in order, whatever the state; a
// record the log refuses is counted as dropped.
func (d *ackedMode) ackedDeliver(state State, records [][]byte) step {
	a := d.acked
	stored := 0
	var sendErr error
	for _, record := range records {
		if _, err := a.log.Append(record); err != nil {
			d.refused(err)
			continue
		}
		if a.unsent == 0 {
			a.pendingSince = d.clock.Now()
		}
		a.unsent++
		stored++
		// A full batch leaves as soon as the window has room, not after the
		// whole take, so that the Brain works on it while the rest is stored.
		// Only full batches leave from here: a partial one waits for the
		// timer (reading the clock on every record would cost more than the
		// rest of this path). After a failed send the rest is still stored.
		if sendErr == nil && state == Streaming && a.synced && a.unsent >= a.cfg.BatchSize && len(a.inflight) < a.cfg.Window {
			sendErr = d.pump()
		}
	}
	if sendErr != nil {
		return d.goDisconnected(state, sendErr)
	}
	if stored == 0 {
		return keep()
	}
	return d.ackedKeep(state)
}

// ackedAttempt connects, then sends the probe (an empty batch): the Brain
// answers with its NextSeq, which resynchronises the numbering.
func (d *ackedMode) ackedAttempt(state State) step {
	if state != Connecting {
		return keep() // stale
	}
	a := d.acked
	if failed, ok := d.connect(state, a.transport.Connect); !ok {
		return failed
	}
	ctx, cancel := context.WithTimeout(d.life, d.cfg.DeliverTimeout)
	err := a.transport.SendBatch(ctx, a.sourceID, 0, nil)
	cancel()
	if err != nil {
		return d.goDisconnected(state, fmt.Errorf("send probe: %w", err))
	}
	now := d.clock.Now()
	a.synced = false
	a.lastProgress = now
	a.timerAt = now.Add(a.cfg.AckTimeout)
	return NextState(Streaming, SetStateTimeout(a.cfg.AckTimeout, ManagerEvent{Type: EventFlushTick}))
}

// ackedTimer is Streaming's one timer: the acknowledgement deadline and the
// batch delay, whichever comes first.
func (d *ackedMode) ackedTimer(state State) step {
	if state != Streaming {
		return keep() // stale
	}
	a := d.acked
	a.timerAt = time.Time{}
	now := d.clock.Now()
	if a.awaiting() && now.Sub(a.lastProgress) >= a.cfg.AckTimeout {
		d.stats.AckTimeouts++
		d.metrics.ackTimeout()
		return d.goDisconnected(state, fmt.Errorf("%w: no progress for %v with %d records in flight", ErrAckTimeout, now.Sub(a.lastProgress), a.inflightRecords()))
	}
	if a.synced {
		if err := d.pump(); err != nil {
			return d.goDisconnected(state, err)
		}
	}
	return d.ackedKeep(state)
}

func (d *ackedMode) ackedAck(state State, sourceID string, next uint64) step {
	a := d.acked
	if state != Streaming {
		d.ignoreAck(ackIgnoredState, next)
		return keep()
	}
	if sourceID != a.sourceID {
		d.ignoreAck(ackIgnoredForeign, next)
		return d.ackedKeep(state)
	}
	if !a.synced {
		// The first acknowledgement since the connect: the probe's answer,
		// or an older one still on its way; either is the Brain's word.
		// Acknowledgements reach us in the order the Brain sent them, so
		// one below what it acknowledged before means it lost its state:
		// the records it forgot are gone here, the rest is renumbered from
		// its NextSeq, which is the best left to do.
		if a.haveAcked && next < a.ackedWire {
			d.log.Error().Uint64("next_seq", next).Uint64("acknowledged_before", a.ackedWire).
				Msg("the brain's NextSeq went back: it lost its state; records it had acknowledged are not resent")
		}
		d.resync(next)
		if err := d.pump(); err != nil {
			return d.goDisconnected(state, err)
		}
		return d.ackedKeep(state)
	}
	switch {
	case next < a.ackedWire:
		d.ignoreAck(ackIgnoredStale, next)
		return d.ackedKeep(state)
	case next > a.highWire:
		// Numbers this manager never sent: a protocol error.
		d.ignoreAck(ackIgnoredBeyond, next)
		return d.ackedKeep(state)
	case next > a.nextWire:
		// Records sent before a reconnect or a go-back, which the Brain
		// processed after all (its answer was late): skip past them. They
		// are counted as acknowledged as they are read and trimmed (sendBatch).
		a.ackedWire = next
		a.rewind(d.clock.Now())
		a.nextWire = next
		a.lastProgress = d.clock.Now()
		if err := d.pump(); err != nil {
			return d.goDisconnected(state, err)
		}
		return d.ackedKeep(state)
	}
	a.acksSinceSync++
	progress := next > a.ackedWire
	if progress {
		d.ackThrough(next)
	}
	switch {
	case a.staleAcks > 0:
		// An answer to a batch sent before the last go-back.
		a.staleAcks--
	case !progress && len(a.inflight) > 0:
		// The Brain re-acknowledged its NextSeq: a batch before the one it
		// refused was lost (say, the Brain process restarted). Go back N.
		a.staleAcks = a.sentSinceSync - a.acksSinceSync
		a.rewind(d.clock.Now())
		a.nextWire = a.ackedWire
		d.log.Info().Uint64("next_seq", next).Uint64("outstanding", a.staleAcks).Msg("brain re-acknowledged: resending from its NextSeq")
	}
	if err := d.pump(); err != nil {
		return d.goDisconnected(state, err)
	}
	return d.ackedKeep(state)
}

// resync adopts the Brain's NextSeq after a connect: it is where sending
// resumes; records below it are processed and are trimmed as they are read.
func (d *ackedMode) resync(next uint64) {
	a := d.acked
	now := d.clock.Now()
	a.synced, a.haveAcked = true, true
	a.ackedWire = next
	a.rewind(now)
	a.nextWire = next
	a.highWire = max(a.highWire, next)
	a.sentSinceSync, a.acksSinceSync, a.staleAcks = 0, 0, 0
	a.lastProgress = now
	d.attempt = 0
	d.log.Info().Str("source_id", a.sourceID).Uint64("next_seq", next).Int("unacked", a.unsent).Msg("acknowledged mode synchronised")
}

// ackThrough accepts a cumulative acknowledgement: it trims the log through
// the record numbered next-1 and forgets the batches it covers.
func (d *ackedMode) ackThrough(next uint64) {
	a := d.acked
	last := next - 1
	for _, b := range a.inflight {
		if last >= b.firstWire && last < b.firstWire+uint64(b.n) {
			if err := a.log.Trim(last); err != nil {
				// The records stay and will be resent; the Brain drops them.
				d.log.Error().Err(err).Uint64("next_seq", next).Msg("trim acknowledged records")
			}
			break
		}
	}
	k := 0
	for k < len(a.inflight) && a.inflight[k].firstWire+uint64(a.inflight[k].n) <= next {
		k++
	}
	a.inflight = a.inflight[:copy(a.inflight, a.inflight[k:])]
	acked := next - a.ackedWire
	a.ackedWire = next
	d.stats.Acked += acked
	d.metrics.addAcked(acked)
	a.lastProgress = d.clock.Now()
}

// ignoreAck counts an ignored acknowledgement and logs it, at most once per
// DropLogInterval (stale ones only at debug level: they are expected after a
// go-back or a reconnect).
func (d *ackedMode) ignoreAck(reason string, next uint64) {
	d.stats.AcksIgnored++
	d.metrics.ackIgnored(reason)
	if reason == ackIgnoredStale || reason == ackIgnoredState {
		d.log.Debug().Str("reason", reason).Uint64("next_seq", next).Msg("acknowledgement ignored")
		return
	}
	now := d.clock.Now()
	if !d.acked.lastAckWarn.IsZero() && now.Sub(d.acked.lastAckWarn) < d.cfg.DropLogInterval {
		return
	}
	d.acked.lastAckWarn = now
	d.log.Warn().Str("reason", reason).Uint64("next_seq", next).Uint64("sent_through", d.acked.nextWire).
		Uint64("acked", d.acked.ackedWire).Uint64("ignored_total", d.stats.AcksIgnored).Msg("acknowledgement ignored")
}

// refused counts a record the log did not store (full, disk refused), as
// dropped, logged at most once per DropLogInterval.
func (d *ackedMode) refused(err error) { d.countDropped(1, err, "log refused records: dropped") }
