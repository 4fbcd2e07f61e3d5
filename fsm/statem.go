package fsm

import (
	"time"
)

// This file is the generic, Ergo-free gen_statem-style layer: a Machine holds
// the current state and data, routes every event to one handler, applies the
// handler's Result (next_state or keep_state plus actions) and owns at most one
// state timeout, guarded by a generation counter.

// EventKind tells a handler where an event came from.
type EventKind uint8

const (
	// EventCast is an external event handed to Machine.Cast.
	EventCast EventKind = iota + 1
	// EventStateTimeout is the payload of a state timeout that fired while it
	// was still the current one (stale firings never reach the handler).
	EventStateTimeout
)

// String names the kind for logs.
func (k EventKind) String() string {
	switch k {
	case EventCast:
		return "cast"
	case EventStateTimeout:
		return "state_timeout"
	default:
		return "unknown"
	}
}

// Event is what a Handler receives: its origin and its content.
type Event[E any] struct {
	Kind    EventKind
	Content E
}

// TimeoutID identifies one armed state timeout. It is the value of the
// machine's generation counter at the time the timeout was armed; the runner
// hands it back to Machine.Fire when the timer expires.
type TimeoutID uint64

// TimerFunc arms a timer that, after the given delay, makes the runner call
// Machine.Fire(id) on the machine's own goroutine (for an actor: by sending a
// message to itself). It returns a function that cancels the timer; a
// cancelled timer may still have delivered its message, which is why Fire
// checks the generation and drops stale IDs.
//
// A TimerFunc must never call Fire synchronously: the machine is inside its
// event processing when it arms a timer.
type TimerFunc func(after time.Duration, id TimeoutID) (cancel func() bool)

type actionKind uint8

const (
	actionSetStateTimeout actionKind = iota + 1
	actionCancelStateTimeout
)

// Action is a side effect requested by a handler or an enter callback. Build
// one with SetStateTimeout or CancelStateTimeout.
type Action[E any] struct {
	kind  actionKind
	after time.Duration
	event E
}

// SetStateTimeout arms the state timeout: after the delay, unless the state
// changes or another state timeout replaces it first, the handler receives
// Event{Kind: EventStateTimeout, Content: event}. A negative delay counts as
// zero. A zero delay still goes through the runner's timer, so the timeout
// is processed after the events already queued (as in gen_statem).
func SetStateTimeout[E any](after time.Duration, event E) Action[E] {
	if after < 0 {
		after = 0
	}
	return Action[E]{kind: actionSetStateTimeout, after: after, event: event}
}

// CancelStateTimeout cancels the running state timeout, if any.
func CancelStateTimeout[E any]() Action[E] {
	return Action[E]{kind: actionCancelStateTimeout}
}

// Result is a handler's verdict: move to a state (NextState) or stay
// (KeepState), plus actions applied in order.
type Result[S comparable, E any] struct {
	next    S
	change  bool
	actions []Action[E]
}

// NextState moves the machine to next. If next differs from the current
// state, the running state timeout is cancelled first and the enter callback
// runs; moving to the current state is not a state change (gen_statem
// semantics): the timeout survives unless an action replaces it.
func NextState[S comparable, E any](next S, actions ...Action[E]) Result[S, E] {
	return Result[S, E]{next: next, change: true, actions: actions}
}

// KeepState leaves the state as it is and applies the actions.
func KeepState[S comparable, E any](actions ...Action[E]) Result[S, E] {
	return Result[S, E]{actions: actions}
}

// Next reports the requested state and whether the result asks for one.
func (r Result[S, E]) Next() (S, bool) { return r.next, r.change }

// Handler is the single event handler: given the current state, the event and
// the data, it returns what to do. It usually mutates data (a pointer type)
// in place. It must not call the Machine's methods.
type Handler[S comparable, D any, E any] func(state S, event Event[E], data D) Result[S, E]

// EnterFunc is the optional state-enter callback, run after every state
// change (from != to) with the new state already current, and once by Start
// with from == to == the initial state. It can only request actions: a
// state-enter call cannot change the state. Its actions are applied after
// those of the Result that caused the change.
type EnterFunc[S comparable, D any, E any] func(from, to S, data D) []Action[E]

// MachineSpec configures a Machine.
type MachineSpec[S comparable, D any, E any] struct {
	// Initial is the state the machine starts in.
	Initial S
	// Data is the machine's data, handed to every callback.
	Data D
	// Handle is the event handler. Required.
	Handle Handler[S, D, E]
	// Enter is the optional state-enter callback.
	Enter EnterFunc[S, D, E]
	// Timers arms state timeouts. Required.
	Timers TimerFunc
	// OnStaleTimeout, if set, is told about every dropped stale firing.
	OnStaleTimeout func(id TimeoutID)
}

// Machine is a gen_statem-style state machine. It is not safe for concurrent
// use: one goroutine (an actor) owns it and calls Cast and Fire in turn.
type Machine[S comparable, D any, E any] struct {
	state   S
	data    D
	handle  Handler[S, D, E]
	enter   EnterFunc[S, D, E]
	timers  TimerFunc
	onStale func(TimeoutID)

	generation TimeoutID // bumped on every arm and every cancel
	armed      bool
	pending    E
	cancel     func() bool
	started    bool
	closed     bool
}

// NewMachine checks the spec and returns a machine in its initial state.
// Nothing runs until Start.
func NewMachine[S comparable, D any, E any](spec MachineSpec[S, D, E]) (*Machine[S, D, E], error) {
	if spec.Handle == nil {
		return nil, &ConfigError{Field: "MachineSpec.Handle", Reason: "must not be nil"}
	}
	if spec.Timers == nil {
		return nil, &ConfigError{Field: "MachineSpec.Timers", Reason: "must not be nil"}
	}
	return &Machine[S, D, E]{
		state:   spec.Initial,
		data:    spec.Data,
		handle:  spec.Handle,
		enter:   spec.Enter,
		timers:  spec.Timers,
		onStale: spec.OnStaleTimeout,
	}, nil
}

// Start runs the enter callback for the initial state (from == to ==
// initial), as gen_statem does with state_enter enabled. Calling it again is
// a no-op.
func (m *Machine[S, D, E]) Start() {
	if m.started || m.closed {
		return
	}
	m.started = true
	if m.enter != nil {
		m.apply(m.enter(m.state, m.state, m.data))
	}
}

// State is the current state.
func (m *Machine[S, D, E]) State() S { return m.state }

// Data is the machine's data.
func (m *Machine[S, D, E]) Data() D { return m.data }

// TimeoutArmed reports whether a state timeout is running, and its ID.
func (m *Machine[S, D, E]) TimeoutArmed() (TimeoutID, bool) { return m.generation, m.armed }

// Cast hands an external event to the handler. After Close it does nothing.
func (m *Machine[S, D, E]) Cast(content E) {
	if m.closed {
		return
	}
	m.dispatch(Event[E]{Kind: EventCast, Content: content})
}

// Fire is called by the runner when the timer armed with id expires. It
// returns false, and the handler is not called, when the firing is stale: the
// timeout was cancelled or replaced (by an action or a state change) after
// the timer was armed, or the machine is closed.
func (m *Machine[S, D, E]) Fire(id TimeoutID) bool {
	if m.closed || !m.armed || id != m.generation {
		if m.onStale != nil {
			m.onStale(id)
		}
		return false
	}
	m.armed = false
	m.cancel = nil
	content := m.pending
	var zero E
	m.pending = zero
	m.dispatch(Event[E]{Kind: EventStateTimeout, Content: content})
	return true
}

// Close cancels the running state timeout; later Cast and Fire calls do
// nothing.
func (m *Machine[S, D, E]) Close() {
	if m.closed {
		return
	}
	m.cancelTimeout()
	m.closed = true
}

func (m *Machine[S, D, E]) dispatch(ev Event[E]) {
	result := m.handle(m.state, ev, m.data)
	if result.change && result.next != m.state {
		from := m.state
		m.state = result.next
		m.cancelTimeout()
		m.apply(result.actions)
		if m.enter != nil {
			m.apply(m.enter(from, m.state, m.data))
		}
		return
	}
	m.apply(result.actions)
}

func (m *Machine[S, D, E]) apply(actions []Action[E]) {
	for _, a := range actions {
		switch a.kind {
		case actionSetStateTimeout:
			m.cancelTimeout()
			m.generation++
			m.armed = true
			m.pending = a.event
			m.cancel = m.timers(a.after, m.generation)
		case actionCancelStateTimeout:
			m.cancelTimeout()
		}
	}
}

// cancelTimeout stops the running timer and bumps the generation so that a
// firing already in flight is recognised as stale.
func (m *Machine[S, D, E]) cancelTimeout() {
	if !m.armed {
		return
	}
	if m.cancel != nil {
		m.cancel()
	}
	m.cancel = nil
	m.armed = false
	var zero E
	m.pending = zero
	m.generation++
}
