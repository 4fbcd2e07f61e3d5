package node_test

import (
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"ergo.services/ergo/gen"
	"github.com/stretchr/testify/require"

	"github.com/pharos-node/pharos-node/internal/erltest"
	"github.com/pharos-node/pharos-node/node"
)

// With Options.Signals, SIGTERM and SIGINT reach the caller's channel and Ergo never sees them:
// the node keeps running. A second node started the same way takes them over again.
func TestStartSignalsToCaller(t *testing.T) {
	for round := 0; round < 2; round++ {
		ch := make(chan os.Signal, 2)
		n, err := node.Start(gen.Atom("pharos_sig_"+strconv.Itoa(round)+"@127.0.0.1"), node.Options{
			Cookie: "c", EPMDPort: closedPort(t), Signals: ch,
			Log: gen.LogOptions{Level: gen.LogLevelWarning},
		})
		require.NoError(t, err)
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
			require.NoError(t, syscall.Kill(os.Getpid(), sig))
			select {
			case got := <-ch:
				require.Equal(t, sig, got)
			case <-time.After(5 * time.Second):
				t.Fatalf("round %d: %v did not reach the caller", round, sig)
			}
		}
		// Ergo's handler, had it seen a signal, would now be stopping the node.
		time.Sleep(200 * time.Millisecond)
		require.True(t, n.IsAlive(), "round %d: Ergo stopped the node", round)
		signal.Stop(ch)
		n.StopForce()
	}
}

// ERL_EPMD_PORT is honoured when Options.EPMDPort is 0, as erl does; a malformed one fails the
// start.
func TestStartEPMDPortFromEnvironment(t *testing.T) {
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	t.Setenv("ERL_EPMD_PORT", strconv.Itoa(b.EpmdPort))
	n := startGoNode(t, b, func(o *node.Options) { o.EPMDPort = 0 })
	connect(t, n, b)

	t.Setenv("ERL_EPMD_PORT", "epmd")
	_, err := node.Start("pharos_badenv@127.0.0.1", node.Options{Cookie: b.Cookie})
	require.ErrorContains(t, err, "ERL_EPMD_PORT")
}
