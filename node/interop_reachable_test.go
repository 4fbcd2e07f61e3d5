package node_test

import (
	"context"
	"net"
	"testing"
	"time"

	"ergo.services/ergo/gen"
	"github.com/stretchr/testify/require"

	"github.com/pharos-node/pharos-node/internal/erltest"
	"github.com/pharos-node/pharos-node/node"
)

// Reachable: a peer registered with its EPMD, or connected, or listening at its static address
// looks reachable; a peer EPMD does not know, or a closed static address, does not. It connects
// nothing.
func TestInteropReachable(t *testing.T) {
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	listening := uint16(l.Addr().(*net.TCPAddr).Port)
	n := startGoNode(t, b, func(o *node.Options) {
		o.Static = map[gen.Atom]node.StaticRoute{
			"ghost@127.0.0.1":  {Host: "127.0.0.1", Port: uint16(closedPort(t))},
			"static@127.0.0.1": {Host: "127.0.0.1", Port: listening},
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, n.Reachable(ctx, gen.Atom(b.Node)))
	require.NotContains(t, b.Eval("nodes(hidden)"), string(n.Name()), "Reachable connected")
	require.ErrorIs(t, n.Reachable(ctx, "nobody@127.0.0.1"), node.ErrNodeNotRegistered)
	require.ErrorIs(t, n.Reachable(ctx, "ghost@127.0.0.1"), node.ErrPeerUnreachable)
	require.NoError(t, n.Reachable(ctx, "static@127.0.0.1"))

	_, err = n.Connect(ctx, gen.Atom(b.Node))
	require.NoError(t, err)
	require.NoError(t, n.Reachable(ctx, gen.Atom(b.Node)), "connected")
	b.Kill9()
	require.Eventually(t, func() bool {
		return n.Reachable(ctx, gen.Atom(b.Node)) != nil
	}, 10*time.Second, 50*time.Millisecond, "a dead Brain still looks reachable")
	require.ErrorIs(t, n.Reachable(ctx, gen.Atom(b.Node)), node.ErrNodeNotRegistered)
}
