package fsm

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/tier"
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

// What a reader of the manager's Snapshot reports when no machine state
// applies; never states of the machine.
const (
	// NotRunning: no manager process is up (between a crash and its
	// supervisor's restart, or after the supervisor gave up).
	NotRunning State = iota + 5
	// Closed: the manager was stopped for good (agent.Close).
	Closed
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
	case NotRunning:
		return "not_running"
	case Closed:
		return "closed"
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
	// EventConfirmed is the answer to a delivery confirmation's round trip
	// (unacknowledged modes with a Confirmer only; the acknowledged mode
	// ignores it).
	EventConfirmed
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
	case EventConfirmed:
		return "confirmed"
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
	// ID: EventConfirmed only, the round trip's.
	ID uint64
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
	// Context bounds every transport call besides its own timeout: when it
	// is done, a call in progress returns at once (the Service cancels it
	// at Stop). Nil means context.Background().
	Context context.Context
	// Transport delivers records. Required in the unacknowledged modes.
	Transport Transport
	// Ring is the RAM tier. Required in the unacknowledged modes; Cap()
	// must exceed Config.MaxPending.
	Ring Ring
	// Spill is the optional disk tier of the unacknowledged modes; nil keeps
	// the manager RAM-only.
	Spill Spill
	// Unconfirmed holds what was delivered and not yet confirmed, with a
	// Transport that is a Confirmer; like Ring it outlives restarts. Nil: one
	// of the manager's own (lost with a crash of the actor).
	Unconfirmed *tier.Unconfirmed
	// AckTransport sends batches. Required in the acknowledged mode.
	AckTransport AckTransport
	// Log numbers and keeps records until acknowledged. Required in the
	// acknowledged mode: a *spill.Log, or a tier.MemoryLog.
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
	// as tier.MemoryLog and spill.Log do. Never called in the
	// unacknowledged modes, whose ring keeps the records themselves.
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
	// Transitions counts state changes: Transitions[from-1][to-1].
	Transitions [4][4]uint64

	// Unacknowledged modes with delivery confirmations only.
	Confirmed       uint64 // records a round trip confirmed in the peer's mailbox
	ConfirmRounds   uint64 // round trips started
	ConfirmTimeouts uint64 // round trips not answered within Confirm.Timeout
	Unconfirmed     uint64 // records delivered and not yet confirmed (a gauge)

	// Acknowledged mode only.
	Acked       uint64 // records the Brain acknowledged (or had already processed)
	InFlight    uint64 // records sent and not yet acknowledged
	BatchesSent uint64 // batches sent, resends included
	Resent      uint64 // records sent again (go-back-N, reconnects; unconfirmed ones at a drop)
	AckTimeouts uint64 // times the Brain was taken as lost for not acknowledging
	AcksIgnored uint64 // stale, foreign, malformed or protocol-violating acknowledgements
	SeqGaps     uint64 // renumberings: the log's numbers did not follow the Brain's
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
	live    *LiveConfig            // the Service's, for Reconfigure's message
	zl      zerolog.Logger         // the actor's: this incarnation's logger
	inc     uint64                 // the actor's: this incarnation's number with Status
}

// connData is the machine's data: what both delivery disciplines share.
// The discipline itself (unacked.go, acked.go) is mode.
type connData struct {
	cfg     Config
	life    context.Context
	clock   Clock
	rnd     Rand
	log     zerolog.Logger
	metrics *Metrics
	mode    deliveryMode

	attempt       int  // consecutive failed attempts; drives the backoff
	connected     bool // a connection was made and not yet lost
	connectedOnce bool

	stats Stats

	droppedSinceLog int
	lastDropLog     time.Time
}

// deliveryMode is one delivery discipline over the one Machine: the
// unacknowledged modes (unackedMode) or the acknowledged mode (ackedMode).
type deliveryMode interface {
	// handle is the machine's handler for this discipline.
	handle(state State, ev ManagerEvent) step
	// disconnected forgets what was tied to the connection, which failed
	// for cause, adding what it knows to the log line about it.
	disconnected(ev *zerolog.Event, cause error) *zerolog.Event
	// take stores records taken from the inbox, oldest first.
	take(m *Manager, records [][]byte)
	// updateDepths sets the depth gauges.
	updateDepths()
	// held is how many records the tiers hold (not the inbox).
	held() int
	// stats adds the discipline's gauges to s.
	addStats(s *Stats)
	// peerExit tells whether an exit signal says the peer is gone (PeerExits).
	peerExit(message any) bool
	// confirmation reads a Confirmer's round-trip answer.
	confirmation(message any) (id uint64, ok bool)
	// reconfigure takes the discipline's part of a new configuration.
	reconfigure(cfg Config)
	// lossReason is why the transport's connection ended (LossReason), if known.
	lossReason() error
}

// topLevelRand adapts math/rand/v2's goroutine-safe top-level functions.
type topLevelRand struct{}

func (topLevelRand) Int64N(n int64) int64 { return rand.Int64N(n) }

// NewManager validates the options and builds a manager in Disconnected.
func NewManager(opts ManagerOptions) (*Manager, error) {
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	d := &connData{
		cfg:     opts.Config,
		life:    opts.Context,
		clock:   opts.Clock,
		rnd:     opts.Rand,
		log:     opts.Logger,
		metrics: opts.Metrics,
	}
	if d.life == nil {
		d.life = context.Background()
	}
	if d.clock == nil {
		d.clock = SystemClock{}
	}
	if d.rnd == nil {
		d.rnd = topLevelRand{}
	}
	var err error
	if opts.Config.Delivery == DeliveryAcked {
		d.mode, err = newAckedMode(d, opts)
	} else {
		d.mode, err = newUnackedMode(d, opts)
	}
	if err != nil {
		return nil, err
	}
	if opts.Timers == nil {
		return nil, &ConfigError{Field: "Timers", Reason: "must not be nil"}
	}
	machine, err := NewMachine(MachineSpec[State, *connData, ManagerEvent]{
		Initial:        Disconnected,
		Data:           d,
		Handle:         func(state State, ev Event[ManagerEvent], d *connData) step { return d.mode.handle(state, ev.Content) },
		Enter:          onEnter,
		Timers:         opts.Timers,
		OnStaleTimeout: func(TimeoutID) { d.metrics.staleTimeout() },
	})
	if err != nil {
		return nil, err
	}
	m := &Manager{machine: machine, data: d, inbox: opts.Inbox}
	if opts.Config.Delivery == DeliveryAcked {
		m.stored = opts.Stored
	}
	return m, nil
}

// Start enters Disconnected and casts the first Tick, so the first
// connection attempt is immediate (the original's schedule_first_tick).
func (m *Manager) Start() {
	m.machine.Start()
	m.machine.Cast(ManagerEvent{Type: EventTick})
	m.data.mode.updateDepths()
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
	if len(records) > 0 {
		m.data.mode.take(m, records)
		m.data.mode.updateDepths()
	}
	m.inbox.recycle(records)
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

// AckIgnored counts an acknowledgement that could not be read (a malformed
// pharos_ack), with its reason, in the acknowledged mode's counters.
func (m *Manager) AckIgnored(reason string) {
	m.data.stats.AcksIgnored++
	m.data.metrics.ackIgnored(reason)
}

// ConnectionLost tells the manager the sink went away (e.g. the Brain's
// process or node is down). Ignored unless Streaming or Throttled.
func (m *Manager) ConnectionLost() { m.Cast(ManagerEvent{Type: EventConnectionLost}) }

// Cast hands any event to the machine; timer payloads cast this way are
// handled like the timeout itself, as in the original.
func (m *Manager) Cast(ev ManagerEvent) {
	m.machine.Cast(ev)
	m.data.mode.updateDepths()
}

// Fire delivers an expired state timeout; false if it was stale.
func (m *Manager) Fire(id TimeoutID) bool {
	ok := m.machine.Fire(id)
	if ok {
		m.data.mode.updateDepths()
	}
	return ok
}

// State is the current state.
func (m *Manager) State() State { return m.machine.State() }

// Stats returns the counters so far.
func (m *Manager) Stats() Stats {
	s := m.data.stats
	s.Attempt = m.data.attempt
	m.data.mode.addStats(&s)
	return s
}

// Reconfigure takes a new tuning (Service.Reconfigure checked it): the
// next timers, batches and round trips use it; the delivery discipline is
// the one the manager was built with.
func (m *Manager) Reconfigure(cfg Config) {
	cfg.Delivery = m.data.cfg.Delivery
	m.data.cfg = cfg
	m.data.mode.reconfigure(cfg)
}

// Held is how many records the manager's tiers hold (the ring and the disk,
// or the acknowledged mode's log), not counting its inbox.
func (m *Manager) Held() int { return m.data.mode.held() }

// Close cancels the running timer; later events are ignored.
func (m *Manager) Close() { m.machine.Close() }

// ---------------------------------------------------------------------------
// What both disciplines share: entering states, connecting, losing the
// connection, counting drops.
// ---------------------------------------------------------------------------

func onEnter(from, to State, d *connData) []Action[ManagerEvent] {
	if from == to {
		d.metrics.setState(to)
		return nil
	}
	d.metrics.transition(from, to)
	if from >= Disconnected && from <= Throttled && to >= Disconnected && to <= Throttled {
		d.stats.Transitions[from-1][to-1]++
	}
	d.log.Info().Str("from", from.String()).Str("to", to.String()).Int("attempt", d.attempt).
		Int("held", d.mode.held()).Msg("connection state changed")
	return nil
}

func keep(actions ...Action[ManagerEvent]) step { return KeepState[State](actions...) }

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
	ctx, cancel := context.WithTimeout(d.life, d.cfg.ConnectTimeout)
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
	d.connected = true
	return step{}, true
}

func (d *connData) onConnectionLost(state State) step {
	switch state {
	case Streaming, Throttled:
		cause := errConnectionLost
		if err := d.mode.lossReason(); err != nil {
			cause = fmt.Errorf("%w: %w", errConnectionLost, err)
		}
		return d.goDisconnected(state, cause)
	default: // Disconnected, Connecting: nothing is connected.
		return keep()
	}
}

var errConnectionLost = errors.New("connection lost")

// LossReason is optionally implemented by a transport that knows why its
// connection ended (an inbound frame over the limit, the peer silent past
// the tick time): the manager logs it with the lost connection.
type LossReason interface {
	LossReason() error
}

// goDisconnected arms the jittered retry drawn for the current attempt
// count, then bumps it.
func (d *connData) goDisconnected(from State, cause error) step {
	delay := JitteredDelay(d.cfg, d.attempt, d.rnd)
	if d.attempt < math.MaxInt32 {
		d.attempt++
	}
	d.metrics.setBackoffSeconds(delay.Seconds())
	ev := d.log.Warn().Err(cause).Str("from", from.String()).Int("attempt", d.attempt).Dur("retry_in", delay)
	ev = d.mode.disconnected(ev, cause)
	d.connected = false
	ev.Msg("connection failed")
	return NextState(Disconnected, SetStateTimeout(delay, ManagerEvent{Type: EventTick}))
}

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
