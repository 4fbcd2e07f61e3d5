package node_test

import (
	"context"
	"testing"
	"time"

	"ergo.services/ergo/gen"
	"github.com/stretchr/testify/require"

	"github.com/pharos-node/pharos-node/internal/erltest"
)

// A second dial to a node we are already connected to (two Connects racing, or Connect racing
// Ergo's implicit connect on a send): the BEAM answers status "alive", and answering "true"
// tells it that our live connection is dead, so it kills it. Ergo then keeps the old (now
// killed) connection and leaves the new socket unserved.
func TestInteropSecondDialKeepsTheLiveConnection(t *testing.T) {
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	n := startGoNode(t, b, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	peer := gen.Atom(b.Node)
	c, err := n.Connect(ctx, peer)
	require.NoError(t, err)
	route, err := n.Stack().Registrar.ResolveContext(ctx, peer)
	require.NoError(t, err)
	_, err = n.Network().GetNodeWithRoute(peer, gen.NetworkRoute{Route: route})
	t.Logf("second dial: %v", err)
	select {
	case <-c.Done():
		t.Fatalf("the live connection was killed by the second dial: %v", c.Err())
	case <-time.After(time.Second):
	}
	require.NoError(t, c.Err())
}
