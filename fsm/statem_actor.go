package fsm

import (
	"fmt"
	"time"

	"ergo.services/ergo/act"
	"ergo.services/ergo/gen"
)

// This file is the thin adapter that runs a Machine (or anything wrapping
// one, like Manager) inside an Ergo v3 act.Actor: mailbox messages become
// casts, state timeouts become messages the actor sends itself.

// Runnable is what the actor adapter drives. *Machine implements it, and so
// does *Manager.
type Runnable[E any] interface {
	// Start runs once, in the actor's loop, right after Init.
	Start()
	// Cast hands an external event over.
	Cast(event E)
	// Fire hands an expired state timeout over; stale ones are dropped.
	Fire(id TimeoutID) bool
	// Close cancels the running timer when the actor terminates.
	Close()
}

// MachineActorSpec describes one kind of machine actor. The same spec is
// used for every incarnation (supervisor restarts call New again).
type MachineActorSpec[E any] struct {
	// New builds the runnable in the actor's Init, from the actor's process
	// and the TimerFunc to put in its MachineSpec: that TimerFunc routes each
	// firing through the actor's mailbox. Required.
	New func(p gen.Process, timers TimerFunc) (Runnable[E], error)
	// Translate maps any other mailbox message to an event; false ignores it.
	// Required.
	Translate func(message any) (event E, ok bool)
	// Clock arms the timers; nil means SystemClock.
	Clock Clock
	// Intercept, optional, sees every other mailbox message before
	// Translate and returns true for the ones it handled itself (the
	// manager takes its Inbox this way: one message, many events).
	Intercept func(r Runnable[E], message any) bool
	// After, optional, runs after every mailbox message the actor handled
	// (the manager publishes its Snapshot there).
	After func(r Runnable[E])
	// OnExit, optional, runs in the actor's own goroutine when it decides
	// to terminate (its parent's exit signal, Stop), before Close and
	// before Ergo tells its links: the manager hands its tiers back there.
	OnExit func(r Runnable[E], reason error)
	// OnTerminate, optional, runs after Close when the actor terminates,
	// for whatever reason. It may run on another goroutine after the
	// actor's links (its supervisor) were told, so it must not touch what
	// a restarted incarnation uses.
	OnTerminate func(r Runnable[E], reason error)
}

// Factory returns the gen.ProcessFactory to spawn such actors with (no
// spawn arguments needed).
func (s MachineActorSpec[E]) Factory() gen.ProcessFactory {
	return func() gen.ProcessBehavior { return &machineActor[E]{spec: s} }
}

// Messages the adapter understands besides Translate's. They are Go values,
// local to the node (not registered with the network encoder), so no remote
// node can forge them.
type (
	timeoutMessage struct{ id TimeoutID }
	startMessage   struct{}
	stopMessage    struct{}
	probeMessage   struct{}
)

// Both Machine and Manager are runnable by the adapter.
var (
	_ Runnable[struct{}]     = (*Machine[uint8, struct{}, struct{}])(nil)
	_ Runnable[ManagerEvent] = (*Manager)(nil)
)

type machineActor[E any] struct {
	act.Actor
	spec     MachineActorSpec[E]
	runnable Runnable[E]
	started  bool
}

// Init builds the runnable and sends the actor its kick-off message, so
// Start runs in the actor's own loop.
func (a *machineActor[E]) Init(args ...any) error {
	if a.spec.New == nil || a.spec.Translate == nil {
		return &ConfigError{Field: "MachineActorSpec", Reason: "needs New and Translate"}
	}
	clock := a.spec.Clock
	if clock == nil {
		clock = SystemClock{}
	}
	node, self := a.Node(), a.PID()
	timers := func(after time.Duration, id TimeoutID) func() bool {
		// High priority: timer messages go to the System queue, ahead of
		// queued casts, and are not refused for a full Main queue. A firing
		// after the actor is gone fails to route and is dropped.
		t := clock.AfterFunc(after, func() {
			_ = node.SendWithPriority(self, timeoutMessage{id: id}, gen.MessagePriorityHigh)
		})
		return t.Stop
	}
	// Exit signals arrive as messages, so the actor can release its name
	// before it terminates (see exit).
	a.SetTrapExit(true)
	r, err := a.spec.New(a, timers)
	if err != nil {
		return err
	}
	a.runnable = r
	if err := a.Send(self, startMessage{}); err != nil {
		return fmt.Errorf("fsm: kick off machine actor: %w", err)
	}
	return nil
}

// HandleMessage routes the mailbox to the runnable.
//
// The actor traps exits, and exit signals follow Erlang's rules for a
// trapping gen_server: one from the parent (its supervisor, or whoever
// spawned it) terminates it with the signal's reason; any other reaches
// Intercept and Translate as a message (the manager takes the linked
// Brain's for a lost connection), and is otherwise ignored. A kill is not
// trappable: Ergo ends the process without a message.
func (a *machineActor[E]) HandleMessage(from gen.PID, message any) error {
	if !a.started {
		// The name is registered before Init, so a message can be queued
		// ahead of the kick-off: start before handling anything.
		a.started = true
		a.runnable.Start()
	}
	if err := a.handle(message); err != nil {
		return err
	}
	if a.spec.After != nil {
		a.spec.After(a.runnable)
	}
	return nil
}

func (a *machineActor[E]) handle(message any) error {
	switch m := message.(type) {
	case timeoutMessage:
		a.runnable.Fire(m.id)
		return nil
	case startMessage, probeMessage:
		return nil
	case stopMessage:
		return a.exit(gen.TerminateReasonNormal)
	case gen.MessageExitPID:
		if m.PID == a.Parent() {
			return a.exit(m.Reason)
		}
	}
	if a.spec.Intercept != nil && a.spec.Intercept(a.runnable, message) {
		return nil
	}
	if ev, ok := a.spec.Translate(message); ok {
		a.runnable.Cast(ev)
	}
	return nil
}

// exit runs OnExit, releases the registered name, then terminates with
// reason. Ergo tells a process's links (its supervisor) that it is gone
// before it removes the process's name, so a supervisor restarting the
// child at once can find the name still taken, fail, and terminate itself;
// releasing the name first closes that window for every exit the actor
// decides itself (its parent's exit signal, Stop). A kill or a panic still
// goes through Ergo's order.
func (a *machineActor[E]) exit(reason error) error {
	if a.spec.OnExit != nil {
		a.spec.OnExit(a.runnable, reason)
	}
	if a.Name() != "" {
		_ = a.UnregisterName()
	}
	return reason
}

// Terminate stops the running timer.
func (a *machineActor[E]) Terminate(reason error) {
	if a.runnable == nil {
		return
	}
	a.runnable.Close()
	if a.spec.OnTerminate != nil {
		a.spec.OnTerminate(a.runnable, reason)
	}
}
