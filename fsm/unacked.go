package fsm

import (
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/tier"
)

// The unacknowledged modes (Config.Delivery == DeliveryUnacked: payload,
// term and subject, which differ only in the transport): records wait in
// the Ring (and, past MaxPending, on the Spill) and go out through the
// Transport. Distribution gives no receipt: with a Transport that is a
// Confirmer, delivered records stay held (tier.Unconfirmed, or untrimmed
// on disk) until a round trip confirms they reached the peer's mailbox
// (confirm.go); without one, what was written in the last FlushInterval
// before a drop is counted as possibly lost. docs/design.md has the state
// table; this file implements it.

// unackedMode is the unacknowledged modes' discipline.
type unackedMode struct {
	*connData
	transport Transport
	batch     BatchTransport // nil unless transport implements it
	ring      Ring
	spill     Spill
	window    deliveryWindow // without confirmations: what was written lately
	confirm   *confirmer     // nil: no confirmations
	budget    *ramBudget     // the inbox's RAM budget (overflow policy refuse), or nil
	cold      []tier.Record  // read buffer of the disk tier's replay
	coldData  [][]byte

	// minBatch > 0: a RequestTransport; Streaming waits for this backlog
	// (or the flush timer), and a delivery is a receipt.
	minBatch int

	// skipThrough: records of the disk tier numbered up to it are on the wire,
	// waiting for their confirmation, and are not read again (skipping).
	skipThrough  uint64
	skipping     bool
	flushDue     time.Time // Streaming: when the periodic flush is due
	timerAt      time.Time // Streaming: the deadline the armed timer is for
	spillRetryAt time.Time
	lastSpillErr time.Time
	lastBusyLog  time.Time
}

// checkRingCap refuses a ring that cannot hold MaxPending records plus the
// one being delivered: below that, Streaming would evict from a ring the
// disk tier is meant to protect.
func checkRingCap(r Ring, maxPending int) error {
	if c := r.Cap(); c <= maxPending {
		return &ConfigError{Field: "MaxPending", Reason: fmt.Sprintf("must be below the ring's capacity %d, got %d", c, maxPending)}
	}
	return nil
}

func newUnackedMode(d *connData, opts ManagerOptions) (*unackedMode, error) {
	if opts.Transport == nil {
		return nil, &ConfigError{Field: "Transport", Reason: "must not be nil"}
	}
	if opts.Ring == nil {
		return nil, &ConfigError{Field: "Ring", Reason: "must not be nil"}
	}
	if err := checkRingCap(opts.Ring, opts.Config.MaxPending); err != nil {
		return nil, err
	}
	u := &unackedMode{connData: d, transport: opts.Transport, ring: opts.Ring, spill: opts.Spill}
	if opts.Inbox != nil {
		u.budget = opts.Inbox.budget
	}
	if b, ok := opts.Transport.(BatchTransport); ok {
		u.batch = b
	}
	if r, ok := opts.Transport.(RequestTransport); ok {
		u.minBatch = max(r.MinBatch(), 1)
	}
	if c, ok := opts.Transport.(Confirmer); ok && opts.Config.Confirm.Enabled() {
		pending := opts.Unconfirmed
		if pending == nil {
			pending = &tier.Unconfirmed{}
		}
		u.confirm = &confirmer{c: c, cfg: opts.Config.Confirm, pending: pending}
		// What a crashed incarnation left unconfirmed: its connection is gone.
		if n := u.settle(); n > 0 {
			d.log.Warn().Int("unconfirmed", n).Bool("resent", u.confirm.cfg.ResendUnconfirmed).
				Msg("records a crashed connection manager left unconfirmed")
		}
	}
	return u, nil
}

func (d *unackedMode) handle(state State, ev ManagerEvent) step {
	switch ev.Type {
	case EventDeliver:
		if ev.records != nil {
			return d.onDeliver(state, ev.records)
		}
		return d.onDeliver(state, [][]byte{ev.Record})
	case EventTick:
		return d.onTick(state)
	case EventAttempt:
		return d.onAttempt(state)
	case EventDrainTick:
		return d.onDrainTick(state)
	case EventFlushTick:
		return d.onFlushTick(state)
	case EventConnectionLost:
		return d.onConnectionLost(state)
	case EventConfirmed:
		return d.onConfirmed(state, ev.ID)
	case EventProbe:
		return d.onProbe(state)
	default: // EventAck: no acknowledgements in these modes.
		return keep()
	}
}

// take hands the records to the machine in runs, one event each, so that a
// run is flushed once and not once per record (one DeliverBatch, one
// deadline, one wake-up of the connection's writer). One record can change
// the state, and the records after it are then the new state's: in Streaming
// a run ends with the record that takes the backlog past MaxPending (the one
// after which a flush that sends nothing would throttle), and the rest goes
// to whatever state that run left; a buffering state takes the rest at once
// (buffering changes no state). A delivery failure in the middle of a run
// leaves the run's unsent records in the ring, where one by one some would
// have been spilled first: the same records in the same order, and the ring
// still holds at most MaxPending+1 (TestPropertyTakeInRunsIsPerRecord).
func (d *unackedMode) take(m *Manager, records [][]byte) {
	for len(records) > 0 {
		n := len(records)
		if m.machine.State() == Streaming {
			n = min(n, max(1, d.cfg.MaxPending+1-d.backlog()))
			n = d.fitRingBytes(records[:n])
		}
		m.machine.Cast(ManagerEvent{Type: EventDeliver, records: records[:n]})
		records = records[n:]
	}
}

// fitRingBytes is how many of recs, at least one, the ring takes without
// evicting for its byte bound: a run is pushed whole before its flush, and
// one larger than the ring's free bytes would evict records that one by one
// would have been sent.
func (d *unackedMode) fitRingBytes(recs [][]byte) int {
	room := d.ring.CapBytes() - d.ring.Bytes()
	for i, r := range recs {
		if room -= len(r); room < 0 {
			return max(i, 1)
		}
	}
	return len(recs)
}

// disconnected settles what a lost connection left unconfirmed (resent,
// or counted as possibly lost). A failure that left the connection up (the
// Brain busy, a round trip slow to answer) settles nothing: what was sent
// on it is on its way and its answers will come (confirm.go). Without
// confirmations, what was delivered in the last FlushInterval is counted
// as possibly lost (docs/wire.md): distribution gives no receipt. The disk
// tier's cursor goes back to its oldest untrimmed record.
func (d *unackedMode) disconnected(ev *zerolog.Event, cause error) *zerolog.Event {
	d.timerAt = time.Time{}
	if d.confirm != nil {
		if !errors.Is(cause, errConnectionLost) && !d.confirm.c.Lost() {
			d.confirm.wait(d.clock.Now())
			d.rewindDisk() // read again from the oldest record not on the wire
			if n := d.confirm.pending.Len(); n > 0 {
				ev = ev.Int("unconfirmed_on_the_wire", n)
			}
			return ev
		}
		n := d.settle()
		if n > 0 && d.confirm.cfg.ResendUnconfirmed {
			ev = ev.Int("unconfirmed_resent", n)
		} else if n > 0 {
			ev = ev.Int("possibly_lost", n)
		}
		return ev
	}
	if d.spill != nil {
		d.spill.Rewind()
	}
	if !d.connected {
		return ev
	}
	lost := d.window.total(d.clock.Now(), d.cfg.FlushInterval)
	d.window.reset()
	d.stats.PossiblyLost += uint64(lost)
	d.metrics.addPossiblyLost(lost)
	return ev.Int("possibly_lost", lost)
}

// onDeliver takes a run of records (see take). In Streaming they are pushed
// and flushed once, with the budget the per-record flushes would have had
// together (DrainBatch each).
func (d *unackedMode) onDeliver(state State, records [][]byte) step {
	switch state {
	case Disconnected, Connecting, Throttled:
		// Buffering states: spill the ring before it can evict, then keep
		// the new record in RAM. The connect path replays disk, then RAM.
		for _, r := range records {
			d.bufferWithSpill(r)
		}
		return keep()
	case Streaming:
		for _, r := range records {
			d.dropped(d.ring.Push(r))
		}
		if d.minBatch > 0 && d.backlog() < min(d.minBatch, d.cfg.DrainBatch, d.cfg.MaxPending) {
			// The flush timer, or a full batch, sends it; an idle timer
			// (idleFlushEvery) is brought forward to the next flush.
			return keep(d.rearm(d.clock.Now())...)
		}
		budget := d.cfg.DrainBatch
		if len(records) > 1 {
			budget = satMul(d.cfg.DrainBatch, len(records))
		}
		if err := d.flushBudget(budget, false); err != nil {
			return d.failed(state, err)
		}
		return d.maybeThrottle(state)
	default:
		return keep()
	}
}

func (d *unackedMode) onAttempt(state State) step {
	switch state {
	case Connecting:
		if failed, ok := d.connect(state, d.transport.Connect); !ok {
			return failed
		}
		if c := d.confirm; c != nil && c.pending.Len() > 0 && c.c.Lost() {
			// The connection they went out on ended while disconnected.
			if n := d.settle(); n > 0 {
				d.log.Warn().Int("unconfirmed", n).Bool("resent", c.cfg.ResendUnconfirmed).
					Msg("the connection records went out on ended before they were confirmed")
			}
		}
		err := d.flushAndConfirm(false)
		if err == nil || errors.Is(err, ErrPeerBusy) {
			d.attempt = 0 // connected: a busy peer is no failed attempt
		}
		if err != nil {
			return d.failed(state, err)
		}
		return d.maybeThrottle(state)
	default: // Disconnected, Streaming, Throttled: a stale attempt.
		return keep()
	}
}

func (d *unackedMode) onDrainTick(state State) step {
	switch state {
	case Throttled:
		if err := d.confirmTimedOut(); err != nil {
			return d.goDisconnected(state, err)
		}
		// A drain turn is already paced: its records' round trip leaves at once.
		if err := d.flushAndConfirm(true); err != nil {
			return d.failed(state, err)
		}
		return d.maybeThrottle(state)
	default: // Disconnected, Connecting, Streaming: stale.
		return keep()
	}
}

func (d *unackedMode) onFlushTick(state State) step {
	switch state {
	case Streaming:
		// One timer for the periodic flush and the confirmations' deadlines:
		// whichever it fired for, it flushes (early is harmless) and starts
		// the periodic flush's interval again.
		d.timerAt = time.Time{}
		now := d.clock.Now()
		if err := d.confirmTimedOut(); err != nil {
			return d.goDisconnected(state, err)
		}
		d.flushDue = now.Add(d.cfg.FlushInterval)
		if err := d.flush(); err != nil {
			return d.failed(state, err)
		}
		if err := d.confirmDue(now, false); err != nil {
			return d.goDisconnected(state, err)
		}
		return keep(d.rearm(now)...)
	default: // Disconnected, Connecting, Throttled: stale.
		return keep()
	}
}

// failed is where a failed flush leads. A busy peer (an error wrapping
// ErrPeerBusy: the transport refused to send more, e.g. the Brain's mailbox is
// over its limit) keeps the connection: what was not sent stays held, and
// Throttled waits for the next drain turn (and for the answers to round trips
// in flight, whose round trip leaves at once). Any other failure disconnects.
func (d *unackedMode) failed(state State, err error) step {
	if !errors.Is(err, ErrPeerBusy) {
		return d.goDisconnected(state, err)
	}
	d.rewindDisk()
	d.stats.Busy++
	d.metrics.peerBusy()
	now := d.clock.Now()
	// What went out before the refusal gets its round trip now: a round
	// trip is a signal, not a message, and the drain waits for its answer.
	if cerr := d.confirmDue(now, true); cerr != nil {
		return d.goDisconnected(state, cerr)
	}
	if d.lastBusyLog.IsZero() || now.Sub(d.lastBusyLog) >= d.cfg.DropLogInterval {
		d.lastBusyLog = now
		d.log.Info().Err(err).Int("backlog", d.backlog()).Uint64("busy_total", d.stats.Busy).
			Msg("the peer is busy: delivery paused until the next drain turn")
	}
	d.timerAt = time.Time{}
	tick := SetStateTimeout(d.cfg.DrainInterval, ManagerEvent{Type: EventDrainTick})
	if state == Throttled {
		return keep(tick)
	}
	return NextState(Throttled, tick)
}

// rewindDisk makes the disk tier's next read start at its oldest record not
// on the wire (delivered records are trimmed at once without confirmations,
// and skipped with them until confirmed).
func (d *unackedMode) rewindDisk() {
	if d.spill == nil {
		return
	}
	d.spill.Rewind()
	if d.confirm != nil {
		d.skipThrough, d.skipping = d.confirm.pending.SpillThrough()
	}
}

// maybeThrottle picks Streaming or Throttled after a successful flush, from
// the backlog left (ring plus disk) against MaxPending. Staying in
// Streaming keeps the armed timer unless a deadline came earlier.
func (d *unackedMode) maybeThrottle(from State) step {
	if d.backlog() > d.cfg.MaxPending {
		d.timerAt = time.Time{}
		if from == Throttled {
			return keep(SetStateTimeout(d.cfg.DrainInterval, ManagerEvent{Type: EventDrainTick}))
		}
		return NextState(Throttled, SetStateTimeout(d.cfg.DrainInterval, ManagerEvent{Type: EventDrainTick}))
	}
	now := d.clock.Now()
	if from != Streaming {
		d.timerAt = time.Time{}
		d.flushDue = now.Add(d.cfg.FlushInterval)
		return NextState(Streaming, d.rearm(now)...)
	}
	return keep(d.rearm(now)...)
}

// idleFlushEvery: with nothing waiting in the ring or on disk, the periodic
// flush comes once every this many FlushIntervals: records are flushed as
// they arrive, and an idle daemon need not wake ten times a second.
const idleFlushEvery = 10

// rearm returns a SetStateTimeout for Streaming's earliest deadline (the
// periodic flush, the open round's, the oldest round trip's timeout) if it
// is earlier than the one armed. A timer that fires for another deadline than
// its own simply re-arms.
func (d *unackedMode) rearm(now time.Time) []Action[ManagerEvent] {
	next := d.flushDue
	if d.backlog() == 0 {
		next = next.Add((idleFlushEvery - 1) * d.cfg.FlushInterval)
	}
	if c := d.confirm; c != nil {
		if due, ok := c.due(); ok && due.Before(next) {
			next = due
		}
	}
	if !d.timerAt.IsZero() && !next.Before(d.timerAt) {
		return nil
	}
	d.timerAt = next
	return []Action[ManagerEvent]{SetStateTimeout(max(next.Sub(now), 0), ManagerEvent{Type: EventFlushTick})}
}

// ---------------------------------------------------------------------------
// Buffering and flushing
// ---------------------------------------------------------------------------

// bufferWithSpill keeps record while not streaming. With a disk tier, once
// the ring holds MaxPending records its whole content goes to disk before
// the push could evict anything. If the disk refuses (full), the unwritten
// remainder goes back in front of the ring, spilling pauses for BaseBackoff,
// and what the ring must evict is counted as dropped.
func (d *unackedMode) bufferWithSpill(record []byte) {
	if d.spill != nil && d.ring.Len() >= d.cfg.MaxPending {
		now := d.clock.Now()
		if !now.Before(d.spillRetryAt) {
			recs := append(d.requeueUnconfirmed(), d.ring.DrainUpTo(d.ring.Len())...)
			spilled := len(recs)
			for i, r := range recs {
				if err := d.spill.Append(r); err != nil {
					spilled = i
					d.dropped(d.ring.PutBackFront(recs[i:]))
					d.spillRetryAt = now.Add(d.cfg.BaseBackoff)
					if now.Sub(d.lastSpillErr) >= d.cfg.DropLogInterval || d.lastSpillErr.IsZero() {
						d.lastSpillErr = now
						d.log.Error().Err(err).Int("unspilled", len(recs)-i).Msg("disk tier refused records; the ring will evict")
					}
					break
				}
			}
			d.budget.release(recs[:spilled])
		}
	}
	d.dropped(d.ring.Push(record))
}

// dropped counts ring evictions and logs them at most once per
// DropLogInterval.
func (d *unackedMode) dropped(n int) { d.countDropped(n, nil, "ring full: records dropped") }

// backlog is what waits to be delivered: the ring and the disk tier (on
// disk, records delivered and not yet confirmed included).
func (d *unackedMode) backlog() int {
	n := d.ring.Len()
	if d.spill != nil {
		n += d.spill.Len()
	}
	return n
}

// held is every record the tiers hold: the backlog, and the records from
// the ring delivered and not yet confirmed.
func (d *unackedMode) held() int {
	n := d.backlog()
	if d.confirm != nil {
		n += d.confirm.pending.RAMLen()
	}
	return n
}

func (d *unackedMode) addStats(s *Stats) {
	if d.confirm != nil {
		s.Unconfirmed = uint64(d.confirm.pending.Len())
	}
}

func (d *unackedMode) peerExit(message any) bool {
	pe, ok := d.transport.(PeerExits)
	return ok && pe.IsPeerExit(message)
}

func (d *unackedMode) prober() Prober {
	p, _ := d.transport.(Prober)
	return p
}

func (d *unackedMode) lossReason() error {
	if lr, ok := d.transport.(LossReason); ok {
		return lr.LossReason()
	}
	return nil
}

func (d *unackedMode) reconfigure(cfg Config) {
	if d.confirm != nil {
		d.confirm.cfg = cfg.Confirm
	}
}

func (d *unackedMode) confirmation(message any) (uint64, bool) {
	if d.confirm == nil {
		return 0, false
	}
	return d.confirm.c.Confirmation(message)
}

func (d *unackedMode) updateDepths() {
	if d.metrics == nil {
		return
	}
	var spillRecords int
	var spillBytes int64
	if d.spill != nil {
		spillRecords, spillBytes = d.spill.Len(), d.spill.Bytes()
	}
	d.metrics.setDepths(d.ring.Len(), d.ring.Bytes(), spillRecords, spillBytes)
	if d.confirm != nil {
		d.metrics.setUnconfirmed(d.confirm.pending.Len())
	}
}

// deliveryWindow remembers how many records were delivered recently, in at
// most ~17 buckets per span, to count what was written in the last flush
// interval before a drop.
type deliveryWindow struct {
	buckets []deliveryBucket
}

type deliveryBucket struct {
	at time.Time
	n  int
}

func (w *deliveryWindow) prune(now time.Time, span time.Duration) {
	keep := 0
	for keep < len(w.buckets) && now.Sub(w.buckets[keep].at) > span {
		keep++
	}
	if keep > 0 {
		w.buckets = append(w.buckets[:0], w.buckets[keep:]...)
	}
}

func (w *deliveryWindow) add(now time.Time, n int, span time.Duration) {
	w.prune(now, span)
	if last := len(w.buckets) - 1; last >= 0 && now.Sub(w.buckets[last].at) < span/16 {
		w.buckets[last].n += n
		return
	}
	w.buckets = append(w.buckets, deliveryBucket{at: now, n: n})
}

func (w *deliveryWindow) total(now time.Time, span time.Duration) int {
	w.prune(now, span)
	sum := 0
	for _, b := range w.buckets {
		sum += b.n
	}
	return sum
}

func (w *deliveryWindow) reset() { w.buckets = w.buckets[:0] }
