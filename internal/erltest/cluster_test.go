package erltest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestClusterSharesDeduplication: three Brain nodes share the mnesia store. A batch acknowledged
// by one node and resent, overlapping, to another is processed once over the cluster; a node
// killed with -9 and restarted comes back with the store as the others left it, in the pg group
// again.
func TestClusterSharesDeduplication(t *testing.T) {
	c := StartCluster(t, ClusterOptions{Nodes: 3})
	nodes := c.Nodes()
	b1, b2 := nodes[0], nodes[1]
	st := b1.ClusterStats()
	assert.Len(t, st.Nodes, 3, "mnesia runs on every node: %v", st.Nodes)
	members := func(b *Brain) string {
		return b.Eval("length(pg:get_members(pharos, pharos_brains))")
	}
	require.True(t, pollUntil(10*time.Second, 50*time.Millisecond, func() bool { return members(b1) == "3" }),
		"pg group: %s members", members(b1))

	out := b1.Client(erlMetric + fmt.Sprintf(`
		B2 = {pharos_brain, '%s'},
		Bins = [term_to_binary(M(<<"k1">>, S)) || S <- lists:seq(0, 199)],
		Brain ! {pharos_batch, self(), <<"sid">>, 0, lists:sublist(Bins, 100)},
		receive {pharos_ack, <<"sid">>, A1} -> io:format("ack1=~p~n", [A1]) after 5000 -> exit(no_ack1) end,
		Brain ! {pharos_batch, self(), <<"sid">>, 100, []},
		receive {pharos_ack, <<"sid">>, A0} -> io:format("probe1=~p~n", [A0]) after 5000 -> exit(no_probe) end,
		true = net_kernel:connect_node('%s'),
		B2 ! {pharos_batch, self(), <<"sid">>, 0, []},
		receive {pharos_ack, <<"sid">>, P2} -> io:format("probe2=~p~n", [P2]) after 5000 -> exit(no_probe2) end,
		B2 ! {pharos_batch, self(), <<"sid">>, 50, lists:nthtail(50, Bins)},
		receive {pharos_ack, <<"sid">>, A2} -> io:format("ack2=~p~n", [A2]) after 5000 -> exit(no_ack2) end`, b2.Node, b2.Node))
	assert.Contains(t, out, "ack1=100")
	assert.Contains(t, out, "probe2=100", "the second node sees the first's NextSeq")
	assert.Contains(t, out, "ack2=200")

	b1.Kill9()
	st = b2.ClusterStats()
	assert.Equal(t, int64(200), st.Acked["sid"])
	assert.True(t, st.Keys["k1"].Exactly(200), "%+v", st.Keys["k1"])
	b1.Restart()
	require.True(t, pollUntil(20*time.Second, 100*time.Millisecond, func() bool {
		return len(b1.ClusterStats().Nodes) == 3
	}), "the restarted node runs mnesia with the others again")
	st = b1.ClusterStats()
	assert.Equal(t, int64(200), st.Acked["sid"], "the restarted node has the store as the others left it")
	assert.True(t, st.Keys["k1"].Exactly(200), "%+v", st.Keys["k1"])
	require.True(t, pollUntil(10*time.Second, 50*time.Millisecond, func() bool { return members(b2) == "3" }),
		"pg group after the restart: %s members", members(b2))

	b4 := c.AddNode()
	require.True(t, pollUntil(20*time.Second, 100*time.Millisecond, func() bool {
		return len(b4.ClusterStats().Nodes) == 4
	}))
	assert.Equal(t, int64(200), b4.ClusterStats().Acked["sid"], "a node that joins copies the store")
	assert.True(t, strings.Contains(b4.Eval("lists:member(node(), mnesia:table_info(pharos_acked, disc_copies))"), "true"))
}
