package node_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"ergo.services/ergo/gen"
	"github.com/stretchr/testify/require"

	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/internal/erltest"
	"github.com/pharos-node/pharos-node/node"
)

var nodeSeq = 0

// startGoNode starts a Pharos node in the Brain's cluster and stops it in t.Cleanup.
func startGoNode(t *testing.T, b *erltest.Brain, mutate func(*node.Options)) *node.Node {
	t.Helper()
	nodeSeq++
	opts := node.Options{
		Cookie:   b.Cookie,
		EPMDPort: b.EpmdPort,
		Log:      gen.LogOptions{Level: gen.LogLevelWarning},
	}
	if mutate != nil {
		mutate(&opts)
	}
	name := gen.Atom(fmt.Sprintf("pharos_%d_%d@127.0.0.1", time.Now().UnixNano()%100000, nodeSeq))
	n, err := node.Start(name, opts)
	require.NoError(t, err)
	t.Cleanup(func() { n.StopForce() })
	return n
}

func metricTerm(src string, seq int) etf.Tuple {
	return etf.Tuple{etf.Atom("metric"), []byte("cpu.load"), etf.Atom("gauge"), 0.5,
		etf.List{etf.Tuple{[]byte("seq"), []byte(fmt.Sprint(seq))}}, int64(1700000000000 + seq), []byte(src)}
}

func TestInteropHiddenAndSend(t *testing.T) {
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	n := startGoNode(t, b, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := n.Connect(ctx, gen.Atom(b.Node))
	require.NoError(t, err)
	t.Logf("peer flags: %s", c.PeerFlags())

	hidden := b.Eval("nodes(hidden)")
	require.Contains(t, hidden, string(n.Name()))
	require.NotContains(t, b.Eval("nodes()"), string(n.Name()))

	to := gen.ProcessID{Name: gen.Atom(b.Name), Node: gen.Atom(b.Node)}
	for i := 0; i < 100; i++ {
		require.NoError(t, n.Send(to, metricTerm("go-term", i)))
	}
	s, ok := b.WaitStats(10*time.Second, func(s erltest.Stats) bool { return s.Sources["go-term"].Received == 100 })
	require.True(t, ok, "%+v\n%s", s, b.Output())
	require.True(t, s.Sources["go-term"].Exactly(100), "%+v", s.Sources["go-term"])

	// Ergo features with no Erlang meaning fail clearly
	remote, err := n.Network().Node(gen.Atom(b.Node))
	require.NoError(t, err)
	_, err = remote.Spawn("anything", gen.ProcessOptions{})
	require.ErrorIs(t, err, node.ErrNoErlangEquivalent)
	require.ErrorIs(t, err, gen.ErrUnsupported)
	require.True(t, strings.Contains(err.Error(), "no Erlang distribution equivalent"))
	require.ErrorIs(t, remote.ApplicationStart("app", gen.ApplicationOptions{}), node.ErrNoErlangEquivalent)

	// Ergo never phones home
	_, set := n.Env(node.EnvDisableMetrics)
	require.True(t, set)
	_ = errors.Is
}

func asTuple(v any) ([]any, bool) {
	t, ok := v.(etf.Tuple)
	return []any(t), ok
}

func tupleOf(vs ...any) etf.Tuple { return etf.Tuple(vs) }

// waitFor reads the actor's channel until match accepts a value.
func waitFor(t *testing.T, ch chan any, timeout time.Duration, what string, match func(any) bool) any {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case v := <-ch:
			if match(v) {
				return v
			}
			t.Logf("%s: skipping %#v", what, v)
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
			return nil
		}
	}
}

func spawnProbe(t *testing.T, n *node.Node, name gen.Atom) (gen.PID, chan any) {
	t.Helper()
	ch := make(chan any, 1024)
	pid, err := n.SpawnRegister(name, probeFactory, gen.ProcessOptions{}, ch)
	require.NoError(t, err)
	return pid, ch
}

func connect(t *testing.T, n *node.Node, b *erltest.Brain) *node.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := n.Connect(ctx, gen.Atom(b.Node))
	require.NoError(t, err)
	return c
}

func TestInteropBeamToGoAndCalls(t *testing.T) {
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	n := startGoNode(t, b, nil)
	pid, ch := spawnProbe(t, n, "go_sink")
	c := connect(t, n, b)

	// BEAM -> Go by registered name, with a pid to answer; then BEAM -> Go by pid; then a link,
	// an unlink (UNLINK_ID) and a GROUP_LEADER, a control message this package does not implement,
	// and an unlink (UNLINK_ID) from the BEAM side.
	out := b.Eval(fmt.Sprintf(`
		{go_sink, list_to_atom("%s")} ! {ping, self()},
		receive {pong, GoPid} ->
			GoPid ! {direct, <<"bin">>, 42, 1.5, [a, b], #{k => v}},
			link(GoPid), unlink(GoPid),
			group_leader(self(), GoPid),
			GoPid ! after_unlink,
			{ok, node(GoPid)}
		after 5000 -> timeout end`, string(n.Name())))
	if out == "timeout" {
		for len(ch) > 0 {
			t.Logf("actor got %#v", <-ch)
		}
	}
	require.Equal(t, fmt.Sprintf("{ok,'%s'}", string(n.Name())), out)

	v := waitFor(t, ch, 5*time.Second, "ping", func(v any) bool {
		tup, ok := asTuple(v)
		return ok && len(tup) == 2 && tup[0] == gen.Atom("ping")
	})
	tup, _ := asTuple(v)
	beamPid, ok := tup[1].(gen.PID)
	require.True(t, ok, "%#v", tup[1])
	require.Equal(t, gen.Atom(b.Node), beamPid.Node)

	v = waitFor(t, ch, 5*time.Second, "direct", func(v any) bool {
		tup, ok := asTuple(v)
		return ok && len(tup) > 0 && tup[0] == gen.Atom("direct")
	})
	tup, _ = asTuple(v)
	require.Equal(t, []byte("bin"), tup[1])
	require.Equal(t, int64(42), tup[2])
	require.Equal(t, 1.5, tup[3])
	waitFor(t, ch, 5*time.Second, "after_unlink", func(v any) bool { return v == gen.Atom("after_unlink") })

	// the unlink did not drop the connection
	again, ok := n.Stack().Proto.Conn(gen.Atom(b.Node))
	require.True(t, ok)
	require.Same(t, c, again)
	require.Contains(t, b.Eval("nodes(hidden)"), string(n.Name()))

	// Go -> BEAM gen_server:call through Ergo's ordinary Call.
	require.NoError(t, n.Send(pid, cmdCall{to: gen.ProcessID{Name: gen.Atom(b.Name), Node: gen.Atom(b.Node)}, request: gen.Atom("ping")}))
	res := waitFor(t, ch, 10*time.Second, "call result", func(v any) bool { _, ok := v.(callResult); return ok }).(callResult)
	require.NoError(t, res.err)
	require.Equal(t, gen.Atom("pong"), res.value)

	// Probe: an existing name, then a missing one.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rtt, err := c.Probe(ctx, gen.Atom(b.Name))
	require.NoError(t, err)
	t.Logf("probe round trip %s", rtt)
	_, err = c.Probe(ctx, "no_such_process")
	require.ErrorIs(t, err, node.ErrNoSuchProcess)
	require.Equal(t, uint64(1), c.Stats().Ignored, "GROUP_LEADER was logged and ignored")
}

func TestInteropTypedErrors(t *testing.T) {
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	fast := func(t *testing.T, f func()) {
		start := time.Now()
		f()
		require.Less(t, time.Since(start), 4*time.Second)
	}

	t.Run("wrong cookie", func(t *testing.T) {
		n := startGoNode(t, b, func(o *node.Options) { o.Cookie = "not-the-cookie" })
		fast(t, func() {
			_, err := n.Connect(ctx, gen.Atom(b.Node))
			require.ErrorIs(t, err, node.ErrWrongCookie)
			var he *node.HandshakeError
			require.ErrorAs(t, err, &he)
			require.NotContains(t, err.Error(), "not-the-cookie")
			t.Log(err)
		})
	})
	t.Run("unknown node", func(t *testing.T) {
		n := startGoNode(t, b, nil)
		fast(t, func() {
			_, err := n.Connect(ctx, "nobody@127.0.0.1")
			require.ErrorIs(t, err, node.ErrNodeNotRegistered)
			t.Log(err)
		})
	})
	t.Run("epmd unreachable", func(t *testing.T) {
		n := startGoNode(t, b, func(o *node.Options) { o.EPMDPort = closedPort(t) })
		fast(t, func() {
			_, err := n.Connect(ctx, gen.Atom(b.Node))
			require.ErrorIs(t, err, node.ErrEPMDUnreachable)
			t.Log(err)
		})
	})
	t.Run("peer unreachable", func(t *testing.T) {
		n := startGoNode(t, b, func(o *node.Options) {
			o.Static = map[gen.Atom]node.StaticRoute{"ghost@127.0.0.1": {Host: "127.0.0.1", Port: uint16(closedPort(t))}}
		})
		fast(t, func() {
			_, err := n.Connect(ctx, "ghost@127.0.0.1")
			require.ErrorIs(t, err, node.ErrPeerUnreachable)
			t.Log(err)
		})
	})
}

func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func TestInteropMonitorNodeDownAndReconnect(t *testing.T) {
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	n := startGoNode(t, b, nil)
	pid, ch := spawnProbe(t, n, "go_watcher")
	brain := gen.ProcessID{Name: gen.Atom(b.Name), Node: gen.Atom(b.Node)}
	isNil := func(v any) bool { return v == nil }

	// the monitor connects on demand, through Ergo's ordinary route
	require.NoError(t, n.Send(pid, cmdMonitorName{target: brain}))
	require.Nil(t, waitFor(t, ch, 10*time.Second, "monitor", func(v any) bool { _, isErr := v.(error); return isErr || v == nil }))
	require.True(t, b.WaitMonitored(10*time.Second), "the monitor reaches the Brain process")
	b.Crash() // kills the registered Brain process; its supervisor restarts it
	down := waitFor(t, ch, 10*time.Second, "down", func(v any) bool { _, ok := v.(gen.MessageDownProcessID); return ok }).(gen.MessageDownProcessID)
	require.Equal(t, brain, down.ProcessID)
	t.Logf("down: %v", down.Reason)
	require.Contains(t, b.Eval("nodes(hidden)"), string(n.Name()), "the connection survives")

	// monitor the restarted process and the node, then kill the node
	_, ok := b.WaitStats(10*time.Second, func(s erltest.Stats) bool { return s.BrainStarts == 2 })
	require.True(t, ok)
	require.NoError(t, n.Send(pid, cmdMonitorName{target: brain}))
	require.Nil(t, waitFor(t, ch, 10*time.Second, "monitor 2", func(v any) bool { _, isErr := v.(error); return isErr || v == nil }))
	require.NoError(t, n.Send(pid, cmdMonitorNode{node: gen.Atom(b.Node)}))
	waitFor(t, ch, 10*time.Second, "monitor node", isNil)
	b.Kill9()
	var gotName, gotNode bool
	for !(gotName && gotNode) {
		v := waitFor(t, ch, 10*time.Second, "node down", func(v any) bool {
			switch v.(type) {
			case gen.MessageDownProcessID, gen.MessageDownNode:
				return true
			}
			return false
		})
		switch m := v.(type) {
		case gen.MessageDownProcessID:
			require.ErrorIs(t, m.Reason, gen.ErrNoConnection)
			gotName = true
		case gen.MessageDownNode:
			require.Equal(t, gen.Atom(b.Node), m.Name)
			gotNode = true
		}
	}

	// the Brain comes back: an ordinary send reconnects
	b.Restart()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := n.Send(brain, metricTerm("after-restart", 0))
		if err == nil {
			break
		}
		require.True(t, time.Now().Before(deadline), "no reconnect: %v", err)
		time.Sleep(200 * time.Millisecond)
	}
	s, ok := b.WaitStats(10*time.Second, func(s erltest.Stats) bool { return s.Sources["after-restart"].Received == 1 })
	require.True(t, ok, "%+v", s)
	require.Contains(t, b.Eval("nodes(hidden)"), string(n.Name()))
}

func TestInteropTicks(t *testing.T) {
	b := erltest.StartBrain(t, erltest.BrainOptions{ErlFlags: []string{"-kernel", "net_ticktime", "4"}})
	n := startGoNode(t, b, func(o *node.Options) { o.TickTime = 4 * time.Second })
	c := connect(t, n, b)

	time.Sleep(20 * time.Second) // idle: only ticks flow
	select {
	case <-c.Done():
		t.Fatalf("idle connection dropped: %v", c.Err())
	default:
	}
	require.Contains(t, b.Eval("nodes(hidden)"), string(n.Name()))
	st := c.Stats()
	require.Greater(t, st.TicksIn, uint64(3), "%+v", st)
	require.Greater(t, st.TicksOut, uint64(3), "%+v", st)

	b.Stop()
	defer b.Cont()
	start := time.Now()
	select {
	case <-c.Done():
	case <-time.After(8 * time.Second):
		t.Fatalf("a stopped Brain was not detected")
	}
	took := time.Since(start)
	t.Logf("stopped Brain detected after %s: %v", took, c.Err())
	require.ErrorIs(t, c.Err(), node.ErrPeerSilent)
	var silent *node.SilentPeerError
	require.ErrorAs(t, c.Err(), &silent)
	require.LessOrEqual(t, took, 4*time.Second+time.Second)
}

func TestInteropListeningNodeAcceptsErlang(t *testing.T) {
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	port := uint16(closedPort(t))
	n := startGoNode(t, b, func(o *node.Options) {
		o.Listen = &node.ListenOptions{Port: port, Register: true}
	})
	_, ch := spawnProbe(t, n, "go_sink")
	// the Brain finds us through EPMD and connects; we are still hidden
	out := b.Eval(fmt.Sprintf(`N = list_to_atom("%s"), {net_kernel:connect_node(N), net_adm:ping(N)}`, string(n.Name())))
	require.Equal(t, "{true,pong}", out)
	require.Contains(t, b.Eval("nodes(hidden)"), string(n.Name()))
	require.NotContains(t, b.Eval("nodes()"), string(n.Name()))
	b.Eval(fmt.Sprintf(`{go_sink, list_to_atom("%s")} ! from_listener`, string(n.Name())))
	waitFor(t, ch, 5*time.Second, "message over the accepted connection", func(v any) bool { return v == gen.Atom("from_listener") })

	// a second node of the same name cannot register with EPMD
	_, err := node.Start(n.Name(), node.Options{Cookie: b.Cookie, EPMDPort: b.EpmdPort,
		Listen: &node.ListenOptions{Port: uint16(closedPort(t)), Register: true},
		Log:    gen.LogOptions{Level: gen.LogLevelError}})
	require.ErrorIs(t, err, node.ErrNameInUse)
}
