package fsm

import (
	"slices"
	"testing"
	"time"
)

// A toy machine for the generic layer: a door that is open or closed.
type door uint8

const (
	closed door = iota + 1
	open
)

type doorEvent string

type doorData struct {
	log     []string
	enters  []string
	onEnter func(from, to door) []Action[doorEvent]
}

type toyRunner struct {
	clock   *fakeClock
	machine *Machine[door, *doorData, doorEvent]
	armed   []time.Duration
	stale   []TimeoutID
}

// newToy: "push" opens with a 10 ms auto-close timeout; "touch" keeps the
// state and re-arms it; "stay" goes to the same state without actions;
// "cancel" cancels the timeout; "timeout" (the payload) closes.
func newToy(t *testing.T) (*toyRunner, *doorData) {
	t.Helper()
	r := &toyRunner{clock: newFakeClock()}
	data := &doorData{}
	m, err := NewMachine(MachineSpec[door, *doorData, doorEvent]{
		Initial: closed,
		Data:    data,
		Handle: func(s door, ev Event[doorEvent], d *doorData) Result[door, doorEvent] {
			d.log = append(d.log, ev.Kind.String()+":"+string(ev.Content))
			switch ev.Content {
			case "push":
				return NextState(open, SetStateTimeout(10*time.Millisecond, doorEvent("close")))
			case "touch":
				return KeepState[door](SetStateTimeout(10*time.Millisecond, doorEvent("close")))
			case "stay":
				return NextState[door, doorEvent](s)
			case "cancel":
				return KeepState[door](CancelStateTimeout[doorEvent]())
			case "close":
				return NextState[door, doorEvent](closed)
			}
			return KeepState[door, doorEvent]()
		},
		Enter: func(from, to door, d *doorData) []Action[doorEvent] {
			d.enters = append(d.enters, doorName(from)+">"+doorName(to))
			if d.onEnter != nil {
				return d.onEnter(from, to)
			}
			return nil
		},
		Timers: func(after time.Duration, id TimeoutID) func() bool {
			r.armed = append(r.armed, after)
			return r.clock.AfterFunc(after, func() { r.machine.Fire(id) }).Stop
		},
		OnStaleTimeout: func(id TimeoutID) { r.stale = append(r.stale, id) },
	})
	if err != nil {
		t.Fatal(err)
	}
	r.machine = m
	return r, data
}

func doorName(d door) string {
	if d == open {
		return "open"
	}
	return "closed"
}

func TestMachineEnterAndTimeout(t *testing.T) {
	r, d := newToy(t)
	r.machine.Start()
	r.machine.Start() // no-op
	r.machine.Cast("push")
	if r.machine.State() != open {
		t.Fatal("not open")
	}
	r.clock.Advance(9 * time.Millisecond)
	if r.machine.State() != open {
		t.Fatal("closed early")
	}
	r.clock.Advance(time.Millisecond)
	if r.machine.State() != closed {
		t.Fatal("timeout did not close")
	}
	wantLog := []string{"cast:push", "state_timeout:close"}
	if !slices.Equal(d.log, wantLog) {
		t.Fatalf("log = %v, want %v", d.log, wantLog)
	}
	wantEnters := []string{"closed>closed", "closed>open", "open>closed"}
	if !slices.Equal(d.enters, wantEnters) {
		t.Fatalf("enters = %v, want %v", d.enters, wantEnters)
	}
}

func TestMachineKeepStateReplacesTimeout(t *testing.T) {
	r, _ := newToy(t)
	r.machine.Start()
	r.machine.Cast("push")
	r.clock.Advance(8 * time.Millisecond)
	r.machine.Cast("touch") // re-arms for 10 ms from now
	r.clock.Advance(8 * time.Millisecond)
	if r.machine.State() != open {
		t.Fatal("the replaced timeout fired")
	}
	r.clock.Advance(2 * time.Millisecond)
	if r.machine.State() != closed {
		t.Fatal("the new timeout did not fire")
	}
}

func TestMachineSameStateKeepsTimeout(t *testing.T) {
	r, d := newToy(t)
	r.machine.Start()
	r.machine.Cast("push")
	r.machine.Cast("stay") // NextState(open) while open: not a change
	if len(d.enters) != 2 {
		t.Fatalf("enter ran on a non-change: %v", d.enters)
	}
	r.clock.Advance(10 * time.Millisecond)
	if r.machine.State() != closed {
		t.Fatal("timeout lost on a same-state NextState")
	}
}

func TestMachineCancelAndStaleFiring(t *testing.T) {
	r, _ := newToy(t)
	r.machine.Start()
	r.machine.Cast("push")
	id, armed := r.machine.TimeoutArmed()
	if !armed {
		t.Fatal("not armed")
	}
	r.machine.Cast("cancel")
	if _, armed := r.machine.TimeoutArmed(); armed {
		t.Fatal("still armed")
	}
	// The Go timer was stopped, but a real one may already have sent its
	// message: deliver it by hand.
	if r.machine.Fire(id) {
		t.Fatal("stale firing accepted")
	}
	if r.machine.State() != open {
		t.Fatal("stale firing changed the state")
	}
	if !slices.Equal(r.stale, []TimeoutID{id}) {
		t.Fatalf("stale = %v", r.stale)
	}
}

func TestMachineStateChangeCancelsTimeout(t *testing.T) {
	r, d := newToy(t)
	// Entering closed from open arms nothing; check that the open timeout
	// is cancelled by a change made by a cast.
	r.machine.Start()
	r.machine.Cast("push")
	id, _ := r.machine.TimeoutArmed()
	r.machine.Cast("close")
	if r.machine.Fire(id) {
		t.Fatal("timeout survived a state change")
	}
	r.clock.Advance(time.Second)
	if len(d.log) != 2 {
		t.Fatalf("handler saw %v", d.log)
	}
}

func TestMachineEnterActions(t *testing.T) {
	r, d := newToy(t)
	// An enter callback that cancels whatever the transition armed.
	d.onEnter = func(from, to door) []Action[doorEvent] {
		if to == open {
			return []Action[doorEvent]{CancelStateTimeout[doorEvent]()}
		}
		return nil
	}
	r.machine.Start()
	r.machine.Cast("push")
	if _, armed := r.machine.TimeoutArmed(); armed {
		t.Fatal("enter actions must apply after the transition's")
	}
}

func TestMachineClose(t *testing.T) {
	r, d := newToy(t)
	r.machine.Start()
	r.machine.Cast("push")
	id, _ := r.machine.TimeoutArmed()
	r.machine.Close()
	r.machine.Close()
	r.machine.Cast("push")
	if r.machine.Fire(id) {
		t.Fatal("fired after Close")
	}
	r.clock.Advance(time.Second)
	if len(d.log) != 1 {
		t.Fatalf("handler ran after Close: %v", d.log)
	}
}

func TestMachineNegativeTimeoutIsZero(t *testing.T) {
	a := SetStateTimeout(-time.Second, doorEvent("x"))
	if a.after != 0 {
		t.Fatalf("after = %v", a.after)
	}
}

func TestNewMachineRefusesNil(t *testing.T) {
	if _, err := NewMachine(MachineSpec[door, *doorData, doorEvent]{}); err == nil {
		t.Fatal("nil handler accepted")
	}
	if _, err := NewMachine(MachineSpec[door, *doorData, doorEvent]{
		Handle: func(door, Event[doorEvent], *doorData) Result[door, doorEvent] { return KeepState[door, doorEvent]() },
	}); err == nil {
		t.Fatal("nil timers accepted")
	}
}
