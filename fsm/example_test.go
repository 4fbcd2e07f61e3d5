package fsm_test

import (
	"fmt"
	"time"

	"github.com/pharos-node/pharos-node/fsm"
)

// A light that switches itself off after a minute, driven by hand: the
// runner owns the timers and hands expired ones back with Fire.
func ExampleMachine() {
	type light string
	type press struct{ timeout bool }

	var pending []fsm.TimeoutID // the runner's "timer wheel"
	m, err := fsm.NewMachine(fsm.MachineSpec[light, *int, press]{
		Initial: "off",
		Data:    new(int),
		Handle: func(state light, ev fsm.Event[press], presses *int) fsm.Result[light, press] {
			if ev.Content.timeout {
				return fsm.NextState[light, press]("off")
			}
			*presses++
			return fsm.NextState(light("on"), fsm.SetStateTimeout(time.Minute, press{timeout: true}))
		},
		Enter: func(from, to light, _ *int) []fsm.Action[press] {
			fmt.Printf("%s -> %s\n", from, to)
			return nil
		},
		Timers: func(after time.Duration, id fsm.TimeoutID) func() bool {
			pending = append(pending, id)
			return func() bool { return true }
		},
	})
	if err != nil {
		panic(err)
	}
	m.Start()
	m.Cast(press{})                 // on, timeout 1 armed
	m.Cast(press{})                 // still on: timeout 2 replaces 1
	fmt.Println(m.Fire(pending[0])) // stale: dropped
	fmt.Println(m.Fire(pending[1])) // current: off
	fmt.Println(*m.Data(), "presses")
	// Output:
	// off -> off
	// off -> on
	// false
	// on -> off
	// true
	// 2 presses
}
