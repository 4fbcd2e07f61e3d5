package fsm

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/rs/zerolog"
)

// State is one of the connection's four phases.
type State uint8

const (
	// Disconnected buffers every record and waits for the jittered retry
	// timer.
	Disconnected State = iota + 1
	// Connecting makes exactly one connection attempt, then replays the
	// backlog (disk first, then RAM) on success.
	Connecting
	// Streaming delivers each record as it arrives and drains the ring every
	// FlushInterval.
	Streaming
	// Throttled holds a backlog above MaxPending and drains DrainBatch
	// records every DrainInterval until it has caught up.
	Throttled
)

// String is the state's name, as used in logs and metric labels.
func (s State) String() string {
	switch s {
	case Disconnected:
		return "disconnected"
	case Connecting:
		return "connecting"
	case Streaming:
		return "streaming"
	case Throttled:
		return "throttled"
	default:
		return fmt.Sprintf("state(%d)", uint8(s))
	}
}

// States lists the four states in declaration order.
func States() [4]State { return [4]State{Disconnected, Connecting, Streaming, Throttled} }

// EventType names the manager's events: Deliver is the only external
// command besides ConnectionLost; the others are timer payloads (they are
// also accepted as casts, as in the original).
type EventType uint8

const (
	// EventDeliver enqueues a record.
	EventDeliver EventType = iota + 1
	// EventTick is the Disconnected retry timer.
	EventTick
	// EventAttempt is Connecting's entry timer: perform the attempt.
	EventAttempt
	// EventDrainTick is Throttled's pacing timer.
	EventDrainTick
	// EventFlushTick is Streaming's periodic flush timer.
	EventFlushTick
	// EventConnectionLost reports that the transport saw the sink go away
	// (for the Brain: a monitor DOWN), not in the original.
	EventConnectionLost
	// EventAck is a pharos_ack from the Brain (acknowledged mode only; the
	// unacknowledged modes ignore it in every state).
	EventAck
)

// String names the event for logs and tests.
func (e EventType) String() string {
	switch e {
	case EventDeliver:
		return "deliver"
	case EventTick:
		return "tick"
	case EventAttempt:
		return "attempt"
	case EventDrainTick:
		return "drain_tick"
	case EventFlushTick:
		return "flush_tick"
	case EventConnectionLost:
		return "connection_lost"
	case EventAck:
		return "ack"
	default:
		return fmt.Sprintf("event(%d)", uint8(e))
	}
}

// ManagerEvent is the content of the manager machine's events.
type ManagerEvent struct {
	Type   EventType
	Record []byte // EventDeliver only
	// SourceID and NextSeq: EventAck only.
	SourceID string
	NextSeq  uint64
	// records: an EventDeliver of several records, in order, instead of
	// Record. Only TakeInbox makes one, and only in the acknowledged mode,
	// which stores each record whatever the state: the other modes take
	// one record per event, since one of a batch can change the state.
	records [][]byte
}

type step = Result[State, ManagerEvent]

// ManagerOptions are the manager's dependencies and configuration.
type ManagerOptions struct {
	// Config is validated by NewManager.
	Config Config
	// Transport delivers records. Required in the unacknowledged modes.
	Transport Transport
	// Ring is the RAM tier. Required in the unacknowledged modes; Cap()
	// must exceed Config.MaxPending.
	Ring Ring
	// Spill is the optional disk tier of the unacknowledged modes; nil keeps
	// the manager RAM-only.
	Spill Spill
	// AckTransport sends batches. Required in the acknowledged mode.
	AckTransport AckTransport
	// Log numbers and keeps records until acknowledged. Required in the
	// acknowledged mode: the spill directory's adapter, or a MemoryLog.
	Log SeqLog
	// Clock defaults to SystemClock.
	Clock Clock
	// Rand drives the jitter; nil uses math/rand/v2's top-level functions.
	Rand Rand
	// Logger receives state changes and failures; the zero value discards.
	Logger zerolog.Logger
	// Metrics may be nil.
	Metrics *Metrics
	// Timers arms the state timeouts; the callback must end in Fire on the
	// manager's goroutine. Required. The Ergo actor supplies one that sends
	// a message to itself.
	Timers TimerFunc
	// Inbox, optional, is where the actor's handle queues records; Start
	// and TakeInbox deliver what it holds.
	Inbox *Inbox
	// Stored, optional, is called in the acknowledged mode by TakeInbox
	// with the records it took, once the Log has stored (or refused) them
	// all: the manager then refers to none of their bytes, and the caller
	// may write new records there. The Log must copy what Append stores,
	// as MemoryLog and the spill directory's adapter do. Never called in
	// the unacknowledged modes, whose ring keeps the records themselves.
	Stored func(records [][]byte)
}

// Stats are plain counters for tests and diagnostics (the metrics hold the
// same numbers).
type Stats struct {
	Delivered    uint64
	Dropped      uint64
	PossiblyLost uint64
	Reconnects   uint64
	Attempt      int

	// Acknowledged mode only.
	Acked       uint64 // records the Brain acknowledged (or had already processed)
	InFlight    uint64 // records sent and not yet acknowledged
	BatchesSent uint64 // batches sent, resends included
	Resent      uint64 // records sent again (go-back-N, reconnects)
	AckTimeouts uint64 // times the Brain was taken as lost for not acknowledging
	AcksIgnored uint64 // stale, foreign or protocol-violating acknowledgements
	SeqGaps     uint64 // holes in the log's numbering closed by renumbering
}

// Manager is the connection manager's state machine without the actor
// around it: the Ergo actor (and the tests) call Start, then Deliver,
// ConnectionLost and Fire from one goroutine. It is not safe for concurrent
// use.
type Manager struct {
	machine *Machine[State, *connData, ManagerEvent]
	data    *connData
	inbox   *Inbox
	stored  func(records [][]byte) // ManagerOptions.Stored, acked mode only
}

// connData is the machine's data.
type connData struct {
	cfg       Config
	transport Transport
	batch     BatchTransport // nil unless transport implements it
	ring      Ring
	spill     Spill
	clock     Clock
	rnd       Rand
	log       zerolog.Logger
	metrics   *Metrics

	acked *ackedData // nil in the unacknowledged modes

	attempt       int  // consecutive failed attempts; drives the backoff
	connected     bool // a connection was made and not yet lost
	connectedOnce bool
	window        deliveryWindow

	stats Stats

	droppedSinceLog int
	lastDropLog     time.Time
	spillRetryAt    time.Time
	lastSpillErr    time.Time
}

// topLevelRand adapts math/rand/v2's goroutine-safe top-level functions.
type topLevelRand struct{}

func (topLevelRand) Int64N(n int64) int64 { return rand.Int64N(n) }

// checkRingCap refuses a ring that cannot hold MaxPending records plus the
// one being delivered: below that, Streaming would evict from a ring the
// disk tier is meant to protect.
func checkRingCap(r Ring, maxPending int) error {
	if c := r.Cap(); c <= maxPending {
		return &ConfigError{Field: "MaxPending", Reason: fmt.Sprintf("must be below the ring's capacity %d, got %d", c, maxPending)}
	}
	return nil
}

// NewManager validates the options and builds a manager in Disconnected.
func NewManager(opts ManagerOptions) (*Manager, error) {
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	if opts.Config.Delivery == DeliveryAcked {
		if opts.AckTransport == nil {
			return nil, &ConfigError{Field: "AckTransport", Reason: "must not be nil in the acknowledged mode"}
		}
		if opts.Log == nil {
			return nil, &ConfigError{Field: "Log", Reason: "must not be nil in the acknowledged mode"}
		}
	} else {
		if opts.Transport == nil {
			return nil, &ConfigError{Field: "Transport", Reason: "must not be nil"}
		}
		if opts.Ring == nil {
			return nil, &ConfigError{Field: "Ring", Reason: "must not be nil"}
		}
		if err := checkRingCap(opts.Ring, opts.Config.MaxPending); err != nil {
			return nil, err
		}
	}
	if opts.Timers == nil {
		return nil, &ConfigError{Field: "Timers", Reason: "must not be nil"}
	}
	d := &connData{
		cfg:       opts.Config,
		transport: opts.Transport,
		ring:      opts.Ring,
		spill:     opts.Spill,
		clock:     opts.Clock,
		rnd:       opts.Rand,
		log:       opts.Logger,
		metrics:   opts.Metrics,
	}
	if b, ok := opts.Transport.(BatchTransport); ok {
		d.batch = b
	}
	if opts.Config.Delivery == DeliveryAcked {
		d.acked = &ackedData{
			cfg:       opts.Config.Acked,
			transport: opts.AckTransport,
			log:       opts.Log,
			sourceID:  opts.Log.SourceID(),
		}
		d.acked.setSpans(nil)
		if store, ok := opts.Log.(NumberingStore); ok {
			spans, err := store.LoadNumbering()
			if err != nil {
				return nil, fmt.Errorf("fsm: load numbering: %w", err)
			}
			if !sort.SliceIsSorted(spans, func(i, j int) bool { return spans[i].FromSeq < spans[j].FromSeq }) {
				return nil, fmt.Errorf("fsm: load numbering: %w", errSpansOrder)
			}
			d.acked.store = store
			d.acked.setSpans(slices.Clone(spans))
		}
		if marker, ok := opts.Log.(UnsentMarker); ok {
			d.acked.marker = marker
			d.acked.markerFrom, d.acked.markerSet = marker.UnsentFrom()
		}
	}
	if d.clock == nil {
		d.clock = SystemClock{}
	}
	if d.rnd == nil {
		d.rnd = topLevelRand{}
	}
	machine, err := NewMachine(MachineSpec[State, *connData, ManagerEvent]{
		Initial:        Disconnected,
		Data:           d,
		Handle:         handleEvent,
		Enter:          onEnter,
		Timers:         opts.Timers,
		OnStaleTimeout: func(TimeoutID) { d.metrics.staleTimeout() },
	})
	if err != nil {
		return nil, err
	}
	m := &Manager{machine: machine, data: d, inbox: opts.Inbox}
	if d.acked != nil {
		m.stored = opts.Stored
	}
	return m, nil
}

// Start enters Disconnected and casts the first Tick, so the first
// connection attempt is immediate (the original's schedule_first_tick).
func (m *Manager) Start() {
	m.machine.Start()
	m.machine.Cast(ManagerEvent{Type: EventTick})
	m.data.updateDepths()
	// Records a crashed incarnation accepted but never took (its
	// notification died with its mailbox).
	m.TakeInbox()
}

// TakeInbox delivers every record waiting in the inbox, oldest first, as
// Deliver would one by one. Without an inbox it does nothing.
func (m *Manager) TakeInbox() {
	if m.inbox == nil {
		return
	}
	records := m.inbox.take()
	if len(records) == 0 {
		m.inbox.recycle(records)
		return
	}
	if m.data.acked != nil {
		// One event for all: the per-event dispatch cost more than storing a record.
		// The machine handles it before Cast returns; the log copied what it stored.
		m.machine.Cast(ManagerEvent{Type: EventDeliver, records: records})
		if m.stored != nil {
			m.stored(records)
		}
	} else {
		for _, r := range records {
			m.machine.Cast(ManagerEvent{Type: EventDeliver, Record: r})
		}
	}
	m.inbox.recycle(records)
	m.data.updateDepths()
}

// Deliver enqueues one pre-encoded record. The manager keeps the slice:
// the caller must not modify it afterwards.
func (m *Manager) Deliver(record []byte) {
	m.Cast(ManagerEvent{Type: EventDeliver, Record: record})
}

// Ack hands over a pharos_ack (acknowledged mode).
func (m *Manager) Ack(sourceID string, nextSeq uint64) {
	m.Cast(ManagerEvent{Type: EventAck, SourceID: sourceID, NextSeq: nextSeq})
}

// ConnectionLost tells the manager the sink went away (e.g. the Brain's
// process or node is down). Ignored unless Streaming or Throttled.
func (m *Manager) ConnectionLost() { m.Cast(ManagerEvent{Type: EventConnectionLost}) }

// Cast hands any event to the machine; timer payloads cast this way are
// handled like the timeout itself, as in the original.
func (m *Manager) Cast(ev ManagerEvent) {
	m.machine.Cast(ev)
	m.data.updateDepths()
}

// Fire delivers an expired state timeout; false if it was stale.
func (m *Manager) Fire(id TimeoutID) bool {
	ok := m.machine.Fire(id)
	if ok {
		m.data.updateDepths()
	}
	return ok
}

// State is the current state.
func (m *Manager) State() State { return m.machine.State() }

// Stats returns the counters so far.
func (m *Manager) Stats() Stats {
	s := m.data.stats
	s.Attempt = m.data.attempt
	if m.data.acked != nil {
		s.InFlight = m.data.acked.inflightRecords()
	}
	return s
}

// Close cancels the running timer; later events are ignored.
func (m *Manager) Close() { m.machine.Close() }

// ---------------------------------------------------------------------------
// Event handling: one function per event, each switching on every state.
// ---------------------------------------------------------------------------

func handleEvent(state State, ev Event[ManagerEvent], d *connData) step {
	if d.acked != nil {
		return d.handleAcked(state, ev.Content)
	}
	switch ev.Content.Type {
	case EventDeliver:
		return d.onDeliver(state, ev.Content.Record)
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
	default: // EventAck: no acknowledgements in these modes.
		return KeepState[State, ManagerEvent]()
	}
}

func onEnter(from, to State, d *connData) []Action[ManagerEvent] {
	if from == to {
		d.metrics.setState(to)
		return nil
	}
	d.metrics.transition(from, to)
	d.log.Info().Str("from", from.String()).Str("to", to.String()).Int("attempt", d.attempt).
		Int("ring", d.ringLen()).Int("spill", d.spillLen()).Msg("connection state changed")
	return nil
}

func keep(actions ...Action[ManagerEvent]) step { return KeepState[State](actions...) }

func (d *connData) onDeliver(state State, record []byte) step {
	switch state {
	case Disconnected, Connecting, Throttled:
		// Buffering states: spill the ring before it can evict, then keep
		// the new record in RAM. The connect path replays disk, then RAM.
		d.bufferWithSpill(record)
		return keep()
	case Streaming:
		d.dropped(d.ring.Push(record))
		if err := d.flush(); err != nil {
			return d.goDisconnected(state, err)
		}
		return d.maybeThrottle()
	default:
		return keep()
	}
}

func (d *connData) onTick(state State) step {
	switch state {
	case Disconnected:
		return NextState(Connecting, SetStateTimeout(0, ManagerEvent{Type: EventAttempt}))
	default: // Connecting, Streaming, Throttled: a stale retry tick.
		return keep()
	}
}

// connect makes the one connection attempt of Connecting and counts it. On failure it returns
// the step back to Disconnected and false.
func (d *connData) connect(state State, connect func(context.Context) error) (step, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.ConnectTimeout)
	err := connect(ctx)
	cancel()
	if err != nil {
		d.metrics.connectResult(false, false)
		return d.goDisconnected(state, fmt.Errorf("connect: %w", err)), false
	}
	reconnect := d.connectedOnce
	d.metrics.connectResult(true, reconnect)
	if reconnect {
		d.stats.Reconnects++
	}
	d.connectedOnce = true
	return step{}, true
}

func (d *connData) onAttempt(state State) step {
	switch state {
	case Connecting:
		if failed, ok := d.connect(state, d.transport.Connect); !ok {
			return failed
		}
		d.connected = true
		if err := d.flush(); err != nil {
			return d.goDisconnected(state, err)
		}
		d.attempt = 0
		return d.maybeThrottle()
	default: // Disconnected, Streaming, Throttled: a stale attempt.
		return keep()
	}
}

func (d *connData) onDrainTick(state State) step {
	switch state {
	case Throttled:
		if err := d.flush(); err != nil {
			return d.goDisconnected(state, err)
		}
		return d.maybeThrottle()
	default: // Disconnected, Connecting, Streaming: stale.
		return keep()
	}
}

func (d *connData) onFlushTick(state State) step {
	switch state {
	case Streaming:
		if err := d.flush(); err != nil {
			return d.goDisconnected(state, err)
		}
		// A state timeout fires once: re-arm the periodic flush.
		return keep(SetStateTimeout(d.cfg.FlushInterval, ManagerEvent{Type: EventFlushTick}))
	default: // Disconnected, Connecting, Throttled: stale.
		return keep()
	}
}

func (d *connData) onConnectionLost(state State) step {
	switch state {
	case Streaming, Throttled:
		return d.goDisconnected(state, errConnectionLost)
	default: // Disconnected, Connecting: nothing is connected.
		return keep()
	}
}

var errConnectionLost = errors.New("connection lost")

// errSpansOrder: a NumberingStore returned spans out of order.
var errSpansOrder = errors.New("spans not ordered by FromSeq")

// maybeThrottle picks Streaming or Throttled after a successful flush, from
// the backlog left (ring plus disk) against MaxPending.
func (d *connData) maybeThrottle() step {
	if d.ring.Len()+d.spillLen() > d.cfg.MaxPending {
		return NextState(Throttled, SetStateTimeout(d.cfg.DrainInterval, ManagerEvent{Type: EventDrainTick}))
	}
	return NextState(Streaming, SetStateTimeout(d.cfg.FlushInterval, ManagerEvent{Type: EventFlushTick}))
}

// goDisconnected arms the jittered retry drawn for the current attempt
// count, then bumps it.
func (d *connData) goDisconnected(from State, cause error) step {
	if d.acked != nil {
		d.acked.disconnect()
	}
	delay := JitteredDelay(d.cfg, d.attempt, d.rnd)
	if d.attempt < math.MaxInt32 {
		d.attempt++
	}
	d.metrics.setBackoffSeconds(delay.Seconds())
	ev := d.log.Warn().Err(cause).Str("from", from.String()).Int("attempt", d.attempt).Dur("retry_in", delay)
	if d.connected {
		d.connected = false
		now := d.clock.Now()
		lost := d.window.total(now, d.cfg.FlushInterval)
		d.window.reset()
		d.stats.PossiblyLost += uint64(lost)
		d.metrics.addPossiblyLost(lost)
		ev = ev.Int("possibly_lost", lost)
	}
	ev.Msg("connection failed")
	return NextState(Disconnected, SetStateTimeout(delay, ManagerEvent{Type: EventTick}))
}

// ---------------------------------------------------------------------------
// Buffering and flushing
// ---------------------------------------------------------------------------

// bufferWithSpill keeps record while not streaming. With a disk tier, once
// the ring holds MaxPending records its whole content goes to disk before
// the push could evict anything. If the disk refuses (full), the unwritten
// remainder goes back in front of the ring, spilling pauses for BaseBackoff,
// and what the ring must evict is counted as dropped.
func (d *connData) bufferWithSpill(record []byte) {
	if d.spill != nil && d.ring.Len() >= d.cfg.MaxPending {
		now := d.clock.Now()
		if !now.Before(d.spillRetryAt) {
			recs := d.ring.DrainUpTo(d.ring.Len())
			for i, r := range recs {
				if err := d.spill.Append(r); err != nil {
					d.dropped(d.ring.PutBackFront(recs[i:]))
					d.spillRetryAt = now.Add(d.cfg.BaseBackoff)
					if now.Sub(d.lastSpillErr) >= d.cfg.DropLogInterval || d.lastSpillErr.IsZero() {
						d.lastSpillErr = now
						d.log.Error().Err(err).Int("unspilled", len(recs)-i).Msg("disk tier refused records; the ring will evict")
					}
					break
				}
			}
		}
	}
	d.dropped(d.ring.Push(record))
}

// flush replays up to DrainBatch records: the disk tier first (oldest
// first), then the ring, which is only touched once the disk is empty so
// order is kept. On a failure nothing is lost: the disk keeps what was not
// trimmed, the ring gets the remainder back in front.
func (d *connData) flush() error {
	budget := d.cfg.DrainBatch
	if d.spill != nil {
		sent, err := d.replayCold(budget)
		if err != nil {
			return err
		}
		budget -= sent
		if d.spill.Len() > 0 || budget <= 0 {
			return nil
		}
	}
	recs := d.ring.DrainUpTo(budget)
	if len(recs) == 0 {
		return nil
	}
	sent, err := d.deliver(recs)
	if err != nil {
		d.dropped(d.ring.PutBackFront(recs[sent:]))
		return err
	}
	return nil
}

// replayChunk bounds one read from the disk tier.
const replayChunk = 256

func (d *connData) replayCold(budget int) (int, error) {
	total := 0
	for total < budget {
		batch, err := d.spill.ReadOldest(min(budget-total, replayChunk))
		if err != nil {
			return total, fmt.Errorf("read disk tier: %w", err)
		}
		if len(batch) == 0 {
			return total, nil
		}
		recs := make([][]byte, len(batch))
		for i := range batch {
			recs[i] = batch[i].Data
		}
		sent, err := d.deliver(recs)
		if sent > 0 {
			if terr := d.spill.Trim(batch[sent-1].Seq); terr != nil {
				return total + sent, fmt.Errorf("trim disk tier: %w", terr)
			}
		}
		total += sent
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// errShortBatch reports a BatchTransport that returned fewer records than
// given without an error.
var errShortBatch = errors.New("batch transport delivered fewer records than given without an error")

// deliver hands recs to the transport, in order, and returns how many were
// sent before the first failure.
func (d *connData) deliver(recs [][]byte) (int, error) {
	sent, err := d.deliverRaw(recs)
	if sent > 0 {
		d.stats.Delivered += uint64(sent)
		d.metrics.addDelivered(sent)
		d.window.add(d.clock.Now(), sent, d.cfg.FlushInterval)
	}
	return sent, err
}

func (d *connData) deliverRaw(recs [][]byte) (int, error) {
	if d.batch != nil {
		ctx, cancel := context.WithTimeout(context.Background(), d.cfg.DeliverTimeout)
		n, err := d.batch.DeliverBatch(ctx, recs)
		cancel()
		n = min(max(n, 0), len(recs))
		if err == nil && n < len(recs) {
			err = errShortBatch
		}
		if err != nil {
			return n, fmt.Errorf("deliver batch: %w", err)
		}
		return n, nil
	}
	for i, r := range recs {
		ctx, cancel := context.WithTimeout(context.Background(), d.cfg.DeliverTimeout)
		err := d.transport.Deliver(ctx, r)
		cancel()
		if err != nil {
			return i, fmt.Errorf("deliver: %w", err)
		}
	}
	return len(recs), nil
}

// dropped counts ring evictions and logs them at most once per
// DropLogInterval.
func (d *connData) dropped(n int) { d.countDropped(n, nil, "ring full: records dropped") }

// countDropped counts n records lost to the sender (evicted, or refused by
// the log) and logs them, with the cause if there is one, at most once per
// DropLogInterval, with the count since the last report.
func (d *connData) countDropped(n int, cause error, msg string) {
	if n <= 0 {
		return
	}
	d.stats.Dropped += uint64(n)
	d.metrics.addDropped(n)
	d.droppedSinceLog += n
	now := d.clock.Now()
	if d.lastDropLog.IsZero() || now.Sub(d.lastDropLog) >= d.cfg.DropLogInterval {
		ev := d.log.Warn().Int("dropped", d.droppedSinceLog).Uint64("dropped_total", d.stats.Dropped)
		if cause != nil {
			ev = ev.Err(cause)
		}
		if !d.lastDropLog.IsZero() {
			ev = ev.Dur("since_last_report", now.Sub(d.lastDropLog))
		}
		ev.Msg(msg)
		d.lastDropLog = now
		d.droppedSinceLog = 0
	}
}

func (d *connData) spillLen() int {
	if d.acked != nil {
		return d.acked.log.Len()
	}
	if d.spill == nil {
		return 0
	}
	return d.spill.Len()
}

func (d *connData) ringLen() int {
	if d.ring == nil {
		return 0
	}
	return d.ring.Len()
}

func (d *connData) updateDepths() {
	if d.metrics == nil {
		return
	}
	if d.acked != nil {
		d.metrics.setAckedDepths(d.acked.inflightRecords(), d.acked.log.Len(), d.acked.log.Bytes())
		return
	}
	var spillRecords int
	var spillBytes int64
	if d.spill != nil {
		spillRecords, spillBytes = d.spill.Len(), d.spill.Bytes()
	}
	d.metrics.setDepths(d.ring.Len(), d.ring.Bytes(), spillRecords, spillBytes)
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
