package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"ergo.services/ergo/gen"
	"github.com/stretchr/testify/require"

	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/internal/erltest"
	"github.com/pharos-node/pharos-node/node"
)

// startSink starts, on the Brain, a process registered as name that never reads its mailbox
// (it waits for a stop message only), and sends its pid to the Go process to.
func startSink(t *testing.T, b *erltest.Brain, n *node.Node, name string, to gen.Atom) {
	t.Helper()
	require.Equal(t, "ok", b.Eval(fmt.Sprintf(`Me = self(),
		spawn(fun() -> register(%s, self()), Me ! ready, receive {stop_sink} -> ok end end),
		receive ready -> ok end,
		{'%s', '%s'} ! {sink, whereis(%s)}, ok`, name, string(to), string(n.Name()), name)))
}

// A confirmation (UNLINK_ID, answered UNLINK_ID_ACK by the peer's runtime) is answered after
// every message its sender sent the process before it, by pid or by registered name, has been
// put in that process's message queue: the sink, which never reads, holds exactly all of them.
// It works whether or not the two are linked (and keeps the link), and is answered also for a
// process that no longer exists.
func TestInteropConfirm(t *testing.T) {
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	n := startGoNode(t, b, nil)
	from, ch := spawnProbe(t, n, "go_confirm")
	c := connect(t, n, b)
	startSink(t, b, n, "pharos_sink", "go_confirm")
	v := waitFor(t, ch, 5*time.Second, "sink pid", func(v any) bool { tup, ok := asTuple(v); return ok && tup[0] == gen.Atom("sink") })
	tup, _ := asTuple(v)
	sink := tup[1].(gen.PID)
	queued := func() string {
		return b.Eval(`{message_queue_len, L} = process_info(whereis(pharos_sink), message_queue_len), L`)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const perRound = 5000
	msg, err := etf.Marshal(etf.Tuple{etf.Atom("m"), []byte("0123456789abcdef")})
	require.NoError(t, err)
	for round := 1; round <= 3; round++ {
		for i := 0; i < perRound; i++ {
			if i%2 == 0 {
				require.NoError(t, c.SendPID(from, sink, gen.MessageOptions{}, node.RawTerm(msg)))
			} else {
				require.NoError(t, c.SendRaw(ctx, from, "pharos_sink", node.RawTerm(msg)))
			}
		}
		switch round {
		case 1: // the answer as a message to the Ergo process
			id, err := c.Confirm(from, sink)
			require.NoError(t, err)
			v := waitFor(t, ch, 10*time.Second, "confirmation", func(v any) bool { _, ok := v.(node.MessageConfirmed); return ok })
			require.Equal(t, node.MessageConfirmed{ID: id, PID: sink}, v)
		case 2: // waiting for it
			start := time.Now()
			require.NoError(t, c.ConfirmWait(ctx, from, sink))
			t.Logf("confirmation behind %d messages: %v", perRound, time.Since(start))
		case 3: // linked: the link survives the confirmation
			require.NoError(t, n.Send(from, cmdLink{to: sink}))
			require.Nil(t, waitFor(t, ch, 5*time.Second, "link", func(v any) bool { _, isErr := v.(error); return isErr || v == nil }))
			require.NoError(t, c.ConfirmWait(ctx, from, sink))
			require.Equal(t, fmt.Sprintf("['%s']", string(n.Name())),
				b.Eval(`{links, L} = process_info(whereis(pharos_sink), links), [node(P) || P <- L]`))
		}
		require.Equal(t, fmt.Sprint(round*perRound), queued(), "round %d", round)
	}

	start := time.Now()
	for i := 0; i < 100; i++ {
		require.NoError(t, c.ConfirmWait(ctx, from, sink))
	}
	t.Logf("an idle confirmation's round trip: %v", time.Since(start)/100)

	// the sink ends: a confirmation to its pid is still answered
	require.NoError(t, n.Send(from, cmdUnlink{to: sink}))
	require.Nil(t, waitFor(t, ch, 5*time.Second, "unlink", func(v any) bool { _, isErr := v.(error); return isErr || v == nil }))
	b.Eval(`pharos_sink ! {stop_sink}, ok`)
	require.Eventually(t, func() bool { return b.Eval(`whereis(pharos_sink)`) == "undefined" }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, c.ConfirmWait(ctx, from, sink))
	select {
	case v := <-ch:
		t.Fatalf("the Ergo process got %#v (an exit from the transient link?)", v)
	default:
	}
}
