package node_test

import (
	"fmt"

	"ergo.services/ergo/act"
	"ergo.services/ergo/gen"
)

// probeActor is an Ergo actor for interop tests. It reports every message it gets on a channel
// and obeys a few commands sent by the test.
type probeActor struct {
	act.Actor
	out chan any
}

type (
	cmdMonitorName struct{ target gen.ProcessID }
	cmdMonitorNode struct{ node gen.Atom }
	cmdLink        struct{ to gen.PID }
	cmdUnlink      struct{ to gen.PID }
	cmdCall        struct {
		to      any
		request any
	}
	cmdSend struct {
		to      any
		message any
	}
	callResult struct {
		value any
		err   error
	}
)

func probeFactory() gen.ProcessBehavior { return &probeActor{} }

func (a *probeActor) Init(args ...any) error {
	a.out = args[0].(chan any)
	return nil
}

func (a *probeActor) HandleMessage(from gen.PID, message any) error {
	switch m := message.(type) {
	case cmdMonitorName:
		// Ergo keeps a fired monitor in the process's target list until it is demonitored.
		a.DemonitorProcessID(m.target)
		a.out <- a.MonitorProcessID(m.target)
	case cmdMonitorNode:
		a.out <- a.MonitorNode(m.node)
	case cmdLink:
		a.out <- a.LinkPID(m.to)
	case cmdUnlink:
		a.out <- a.UnlinkPID(m.to)
	case cmdCall:
		v, err := a.Call(m.to, m.request)
		a.out <- callResult{v, err}
	case cmdSend:
		a.out <- a.Send(m.to, m.message)
	default:
		// a {ping, Pid} from the BEAM is answered {pong, self()}
		if tup, ok := asTuple(message); ok && len(tup) == 2 && tup[0] == gen.Atom("ping") {
			if pid, ok := tup[1].(gen.PID); ok {
				if err := a.Send(pid, tupleOf(gen.Atom("pong"), a.PID())); err != nil {
					a.out <- fmt.Errorf("pong: %w", err)
				}
			}
		}
		a.out <- message
	}
	return nil
}
