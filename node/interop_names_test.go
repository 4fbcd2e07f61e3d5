package node_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"ergo.services/ergo/gen"
	"github.com/stretchr/testify/require"

	"github.com/pharos-node/pharos-node/internal/erltest"
	"github.com/pharos-node/pharos-node/node"
)

// erlWithName starts erl under name in the Brain's cluster (same epmd) and returns its output
// and error once it ends.
func erlWithName(t *testing.T, b *erltest.Brain, flag, name string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.Release.Erl, "-noshell", "-noinput", flag, name, "-eval", "halt(0).")
	cmd.Env = b.Environ()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// A node claims its name in the local EPMD at start (port 0: nothing can connect to it): a
// second node of that name, Go or erl, is refused while it runs, and the running node's
// connection is untouched. A BEAM process that sends to one of its pids after a disconnect
// cannot connect back. Once it stops, the name is free again.
func TestInteropNamesClaimed(t *testing.T) {
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	n := startGoNode(t, b, nil)
	name := n.Name()
	alive, _, err := node.SplitNodeName(string(name))
	require.NoError(t, err)
	require.True(t, n.Stack().Registrar.Registered())
	require.Equal(t, "{port,0,6}", b.Eval(fmt.Sprintf(`erl_epmd:port_please("%s", "127.0.0.1")`, alive)))

	pid, ch := spawnProbe(t, n, "go_sink")
	c := connect(t, n, b)

	// a second Go node of the same name is refused, naming the name
	_, err = node.Start(name, node.Options{Cookie: b.Cookie, EPMDPort: b.EpmdPort, Log: gen.LogOptions{Level: gen.LogLevelError}})
	require.ErrorIs(t, err, node.ErrNameInUse)
	var inUse *node.NameInUseError
	require.ErrorAs(t, err, &inUse)
	require.Contains(t, err.Error(), fmt.Sprintf("node: name %s in use", name))
	t.Log(err)

	// so is erl, under -name and under -sname (EPMD knows the alive part only)
	out, err := erlWithName(t, b, "-name", string(name))
	require.Error(t, err, out)
	require.Contains(t, out, "in use")
	out, err = erlWithName(t, b, "-sname", alive)
	require.Error(t, err, out)
	require.Contains(t, out, "in use")

	// and a Go node cannot take the name of a running erl (the Brain's)
	_, err = node.Start(gen.Atom(b.Node), node.Options{Cookie: b.Cookie, EPMDPort: b.EpmdPort, Log: gen.LogOptions{Level: gen.LogLevelError}})
	require.ErrorIs(t, err, node.ErrNameInUse)

	// the running node's connection is untouched
	select {
	case <-c.Done():
		t.Fatalf("the connection ended: %v", c.Err())
	default:
	}
	again, ok := n.Stack().Proto.Conn(gen.Atom(b.Node))
	require.True(t, ok)
	require.Same(t, c, again)
	require.Contains(t, b.Eval("nodes(hidden)"), string(name))

	// The Brain learns a pid of ours, the connection drops, the Brain sends to that pid: its
	// node tries to connect back, learns port 0 from EPMD and fails at once.
	out = b.Eval(fmt.Sprintf(`{go_sink, '%s'} ! {ping, self()},
		receive {pong, P} -> persistent_term:put(pharos_go_pid, P), ok after 5000 -> timeout end`, string(name)))
	require.Equal(t, "ok", out)
	waitFor(t, ch, 5*time.Second, "ping", func(v any) bool { tup, ok := asTuple(v); return ok && len(tup) == 2 })
	c.Terminate(errors.New("test: disconnect"))
	require.Eventually(t, func() bool { return !strings.Contains(b.Eval("nodes(hidden)"), string(name)) }, 10*time.Second, 20*time.Millisecond)
	out = b.Eval(`T0 = erlang:monotonic_time(millisecond),
		persistent_term:get(pharos_go_pid) ! hello_after_disconnect,
		net_kernel:connect_node(node(persistent_term:get(pharos_go_pid))),
		{nodes(hidden), erlang:monotonic_time(millisecond) - T0 < 2000}`)
	require.Equal(t, "{[],true}", out, "the Brain connected back or took long to fail")
	select {
	case v := <-ch:
		t.Fatalf("a message arrived over a connection the Brain made: %#v", v)
	default:
	}

	// our own reconnect works as before
	connect(t, n, b)
	require.NoError(t, n.Send(pid, "still alive"))

	// stopped, the node frees its name
	n.Stop()
	require.Eventually(t, func() bool {
		return strings.HasPrefix(b.Eval(fmt.Sprintf(`erl_epmd:port_please("%s", "127.0.0.1")`, alive)), "noport")
	}, 5*time.Second, 20*time.Millisecond)
	n2, err := node.Start(name, node.Options{Cookie: b.Cookie, EPMDPort: b.EpmdPort, Log: gen.LogOptions{Level: gen.LogLevelWarning}})
	require.NoError(t, err)
	n2.StopForce()
}

// Without an EPMD on the host the node starts unclaimed, unless the claim is required.
func TestNamesWithoutEPMD(t *testing.T) {
	n, err := node.Start("pharos_noepmd@127.0.0.1", node.Options{Cookie: "c", EPMDPort: closedPort(t), Log: gen.LogOptions{Level: gen.LogLevelError}})
	require.NoError(t, err)
	require.False(t, n.Stack().Registrar.Registered())
	require.ErrorIs(t, n.Stack().Registrar.Unclaimed(), node.ErrEPMDUnreachable)
	n.StopForce()

	_, err = node.Start("pharos_noepmd@127.0.0.1", node.Options{Cookie: "c", EPMDPort: closedPort(t), Names: node.NamesClaimRequired})
	require.ErrorIs(t, err, node.ErrEPMDUnreachable)
}
