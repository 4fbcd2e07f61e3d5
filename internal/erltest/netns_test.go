package erltest

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pharos-node/pharos-node/internal/netfault"
)

// TestBrainInANamespace: a Brain and its epmd inside a network namespace, at the namespace's
// address, with a short net_ticktime; its control port answers during a blackhole of the link.
func TestBrainInANamespace(t *testing.T) {
	ns := netfault.New(t)
	b := StartBrain(t, BrainOptions{Name: "brain_ns", Netns: ns, Host: ns.Addr.String(), TickTime: 4 * time.Second})
	assert.Equal(t, ns.Addr.String(), b.Host)
	assert.Contains(t, b.Node, "@"+ns.Addr.String())
	assert.Equal(t, "4", b.Eval("net_kernel:get_net_ticktime()"))

	epmd := net.JoinHostPort(ns.Addr.String(), strconv.Itoa(b.EpmdPort))
	c, err := net.DialTimeout("tcp", epmd, 2*time.Second)
	require.NoError(t, err, "the host reaches the epmd at the namespace's address")
	c.Close()

	out := b.Client(erlMetric + `[Brain ! term_to_binary(M(<<"ns">>, S)) || S <- lists:seq(0, 99)], io:format("sent")`)
	require.Contains(t, out, "sent")
	s, ok := b.WaitStats(10*time.Second, func(s Stats) bool { return s.Sources["ns"].Next == 100 })
	require.True(t, ok, "stats: %+v", s)

	require.NoError(t, ns.Blackhole())
	_, err = net.DialTimeout("tcp", epmd, 300*time.Millisecond)
	require.Error(t, err, "the link is faulted")
	assert.Equal(t, int64(100), b.Stats().Sources["ns"].Next, "the control port is not on the link")
	require.NoError(t, ns.Heal())

	b.Restart()
	assert.Equal(t, "4", b.Eval("net_kernel:get_net_ticktime()"), "a restart keeps the namespace and the tick time")
}

func TestBrainPlacementErrors(t *testing.T) {
	for _, tc := range []struct {
		opts BrainOptions
		want string
	}{
		{BrainOptions{TickTime: 1500 * time.Millisecond}, "whole seconds"},
		{BrainOptions{TickTime: 500 * time.Millisecond}, "whole seconds"},
		{BrainOptions{Netns: fakeNetns{}}, "needs Host"},
		{BrainOptions{Netns: fakeNetns{}, Host: "10.0.0.2", Epmd: &Epmd{}}, "must run in the Brain's network namespace"},
		{BrainOptions{Epmd: &Epmd{ns: fakeNetns{}}}, "set Netns"},
	} {
		err := tc.opts.placement()
		require.Error(t, err, "%+v", tc.opts)
		assert.Contains(t, err.Error(), tc.want)
	}
	o := BrainOptions{TickTime: 4 * time.Second}
	require.NoError(t, o.placement())
	assert.Equal(t, "127.0.0.1", o.Host)
}

type fakeNetns struct{}

func (fakeNetns) Command(argv ...string) []string { return argv }
func (fakeNetns) DialContext(context.Context, string, string) (net.Conn, error) {
	return nil, net.ErrClosed
}
