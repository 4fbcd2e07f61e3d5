package node_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"ergo.services/ergo/act"
	"ergo.services/ergo/gen"
	"github.com/stretchr/testify/require"

	"github.com/pharos-node/pharos-node/internal/erltest"
)

// exitActor reports the exit messages it gets and its own end on a channel; it traps exits
// if told to, answers {ping, Pid} with {pong, self()}, links to a pid it is sent as
// {link_to, Pid}, and ends with reason shutdown when sent stop.
type exitActor struct {
	act.Actor
	out chan any
}

type terminated struct{ reason error }

func exitActorFactory() gen.ProcessBehavior { return &exitActor{} }

func (a *exitActor) Init(args ...any) error {
	a.out = args[0].(chan any)
	a.SetTrapExit(args[1].(bool))
	return nil
}

func (a *exitActor) HandleMessage(from gen.PID, message any) error {
	switch m := message.(type) {
	case gen.MessageExitPID:
		a.out <- m
	case gen.Atom:
		if m == "stop" {
			return gen.TerminateReasonShutdown
		}
	default:
		tup, ok := asTuple(message)
		if !ok || len(tup) != 2 {
			return nil
		}
		pid, _ := tup[1].(gen.PID)
		switch tup[0] {
		case gen.Atom("ping"):
			a.Send(pid, tupleOf(gen.Atom("pong"), a.PID()))
		case gen.Atom("link_to"):
			a.out <- a.LinkPID(pid)
		}
	}
	return nil
}

func (a *exitActor) Terminate(reason error) { a.out <- terminated{reason} }

// Exit signals from real erl reach Ergo actors with Erlang's semantics: exit/2 with normal
// leaves a process that does not trap exits running, kill ends even one that traps them (with
// reason killed), any other reason ends one that does not trap exits and is a message for one
// that does; a broken link (the linked BEAM process exits) behaves the same except that kill is
// an ordinary reason there. The BEAM side sees each ending reason through a monitor.
func TestInteropExitSignals(t *testing.T) {
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	n := startGoNode(t, b, nil)
	connect(t, n, b)

	type outcome struct {
		alive   bool   // still answers a ping afterwards
		message string // the reason of the gen.MessageExitPID it got, "" for none expected
		down    string // the reason the BEAM's monitor saw, when it ended
	}
	cases := []struct {
		signal string // "exit2" (erlang:exit/2) or "link" (a linked process exits)
		reason string
		trap   bool
		want   outcome
	}{
		{"exit2", "normal", false, outcome{alive: true}},
		{"exit2", "normal", true, outcome{alive: true, message: "normal"}},
		{"exit2", "shutdown", false, outcome{down: "shutdown"}},
		{"exit2", "shutdown", true, outcome{alive: true, message: "shutdown"}},
		{"exit2", "{custom, 42}", false, outcome{down: "{custom,42}"}},
		{"exit2", "kill", false, outcome{down: "killed"}},
		{"exit2", "kill", true, outcome{down: "killed"}},
		{"link", "normal", false, outcome{alive: true}},
		{"link", "normal", true, outcome{alive: true, message: "normal"}},
		{"link", "shutdown", false, outcome{down: "shutdown"}},
		{"link", "shutdown", true, outcome{alive: true, message: "shutdown"}},
		{"link", "kill", true, outcome{alive: true, message: "kill"}},
	}
	for i, tc := range cases {
		t.Run(fmt.Sprintf("%s %s trap=%v", tc.signal, tc.reason, tc.trap), func(t *testing.T) {
			name := gen.Atom(fmt.Sprintf("go_exit_%d", i))
			ch := make(chan any, 16)
			_, err := n.SpawnRegister(name, exitActorFactory, gen.ProcessOptions{}, ch, tc.trap)
			require.NoError(t, err)
			signal := fmt.Sprintf("exit(P, %s)", tc.reason)
			if tc.signal == "link" {
				signal = fmt.Sprintf(`Me = self(),
					L = spawn(fun() -> link(P), Me ! linked, receive go -> exit(%s) end end),
					receive linked -> ok end,
					LM = erlang:monitor(process, L), L ! go,
					receive {'DOWN', LM, process, L, _} -> ok end`, tc.reason)
			}
			got := b.Eval(fmt.Sprintf(`{'%s', '%s'} ! {ping, self()},
				P = receive {pong, Pid} -> Pid after 5000 -> exit(no_pong) end,
				M = erlang:monitor(process, P),
				%s,
				P ! {ping, self()},
				receive {'DOWN', M, process, P, R} -> {down, R}; {pong, P} -> alive after 5000 -> timeout end`,
				string(name), string(n.Name()), signal))
			if tc.want.alive {
				require.Equal(t, "alive", got)
			} else {
				require.Equal(t, "{down,"+tc.want.down+"}", got)
				v := waitFor(t, ch, 5*time.Second, "terminated", func(v any) bool { _, ok := v.(terminated); return ok })
				t.Logf("Ergo's reason: %v", v.(terminated).reason)
			}
			if tc.want.message != "" {
				v := waitFor(t, ch, 5*time.Second, "exit message", func(v any) bool { _, ok := v.(gen.MessageExitPID); return ok })
				m := v.(gen.MessageExitPID)
				require.Equal(t, tc.want.message, reasonText(m.Reason))
				require.Equal(t, gen.Atom(b.Node), m.PID.Node)
			}
			select {
			case v := <-ch:
				if _, isExit := v.(gen.MessageExitPID); isExit && !tc.trap && tc.want.alive {
					break // a normal exit arrives as a message to any process (node/conn_exits.go)
				}
				t.Fatalf("unexpected %#v", v)
			default:
			}
		})
	}

	// A link made on the Go side is symmetric: the Go actor's end reaches the linked BEAM
	// process as an exit signal ({'EXIT', GoPid, shutdown} for one that traps exits).
	t.Run("go actor ends", func(t *testing.T) {
		ch := make(chan any, 16)
		pid, err := n.SpawnRegister("go_exit_linker", exitActorFactory, gen.ProcessOptions{}, ch, false)
		require.NoError(t, err)
		require.Equal(t, "ok", b.Eval(fmt.Sprintf(`Me = self(),
			spawn(fun() -> process_flag(trap_exit, true), register(exit_watch, self()), Me ! ready,
				Loop = fun L(Got) -> receive {get, From} -> From ! {got, Got}, L(Got); Msg -> L([Msg | Got]) end end,
				Loop([]) end),
			receive ready -> ok end,
			{go_exit_linker, '%s'} ! {link_to, whereis(exit_watch)}, ok`, string(n.Name()))))
		require.Nil(t, waitFor(t, ch, 5*time.Second, "link", func(v any) bool { _, isErr := v.(error); return isErr || v == nil }))
		require.NoError(t, n.Send(pid, gen.Atom("stop")))
		waitFor(t, ch, 5*time.Second, "terminated", func(v any) bool { _, ok := v.(terminated); return ok })
		want := fmt.Sprintf("[{'EXIT','%s',shutdown}]", string(n.Name()))
		require.Eventually(t, func() bool {
			return b.Eval(`exit_watch ! {get, self()}, receive {got, G} -> [{'EXIT', node(P), R} || {'EXIT', P, R} <- G] end`) == want
		}, 5*time.Second, 50*time.Millisecond, want)
	})
}

// reasonText is an exit reason as Erlang prints it, for the few reasons the test uses.
func reasonText(err error) string {
	for _, r := range []error{gen.TerminateReasonNormal, gen.TerminateReasonShutdown, gen.TerminateReasonKill} {
		if errors.Is(err, r) {
			return map[error]string{gen.TerminateReasonNormal: "normal", gen.TerminateReasonShutdown: "shutdown", gen.TerminateReasonKill: "kill"}[r]
		}
	}
	return err.Error()
}
