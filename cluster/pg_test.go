package cluster_test

import (
	"testing"
	"time"

	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/cluster"
	"github.com/pharos-node/pharos-node/internal/erltest"
)

// TestPGDiscovery: the agent finds the Brains in the pg group through a seed, acknowledged
// mode, shard routing. A fourth Brain node joins mid-stream and receives its share from then
// on; a Brain leaves the group cleanly (its node keeps running) and its share moves to the
// others; the seed in use is killed with -9 and discovery goes on through the next seed (a
// Brain that joins the group again is found). Every record is processed exactly once, in order
// per key. Run with pg:monitor/2 (the default) and with polling (the path of OTP 25.0).
func TestPGDiscovery(t *testing.T) {
	for _, poll := range []bool{false, true} {
		name := "monitor"
		if poll {
			name = "poll"
		}
		t.Run(name, func(t *testing.T) { testPGDiscovery(t, poll) })
	}
}

func testPGDiscovery(t *testing.T, poll bool) {
	n := count(t, 120_000)
	c := erltest.StartCluster(t, erltest.ClusterOptions{Nodes: 3})
	nodes := c.Nodes()
	seed, other := nodes[0], nodes[1]
	cfg := agent.ClusterConfig{Routing: cluster.Shard, Discovery: &cluster.PG{
		Seeds: []string{seed.Node, other.Node}, Poll: poll, PollInterval: 200 * time.Millisecond}}
	a := clusterAgent(t, c, agent.ModeAcked, cfg, t.TempDir())
	s := newStream(64)

	waitMembers(t, a, 3)
	if d := a.Stats().Cluster.Discovery; d.Monitoring == poll {
		t.Fatalf("discovery monitoring %v, want %v (polling only when asked): %+v", d.Monitoring, !poll, d)
	}
	s.send(t, a, n/4)
	waitAcked(t, a, uint64(n/8))

	// A fourth Brain joins mid-stream: it takes its share.
	b4 := c.AddNode()
	m := waitMembers(t, a, 4)
	if sh := m[b4.Node]; sh.Shards == 0 {
		t.Fatalf("the new member owns no shard: %+v", m)
	}
	before := b4.Stats().Received
	s.send(t, a, n/4)
	waitAcked(t, a, uint64(s.sent))
	if got := b4.Stats().Received - before; got == 0 {
		t.Errorf("the new member processed nothing after it joined")
	} else {
		t.Logf("the new member owns %d of %d shards and processed %d of the %d records sent since it joined",
			m[b4.Node].Shards, a.Cluster().Shards(), got, n/4)
	}

	// A Brain leaves the group cleanly: its share moves; it processes nothing more.
	other.PGLeave("pharos_brain")
	m = waitMembers(t, a, 3)
	if _, still := m[other.Node]; still {
		t.Fatalf("the member that left is still routed to: %+v", m)
	}
	waitAcked(t, a, uint64(s.sent))
	left := other.Stats().Received
	s.send(t, a, n/4)
	waitAcked(t, a, uint64(s.sent))
	if got := other.Stats().Received - left; got != 0 {
		t.Errorf("the member that left the group processed %d more records", got)
	}

	// The seed in use is killed: discovery goes on through the next one.
	seed.Kill9()
	waitMembers(t, a, 2)
	if out := other.Eval("pg:join(pharos, pharos_brains, whereis(pharos_brain))"); out != "ok" {
		t.Fatalf("pg:join: %s", out)
	}
	m = waitMembers(t, a, 3)
	if _, back := m[other.Node]; !back {
		t.Fatalf("discovery did not see the member that joined again: %+v", m)
	}
	if d := a.Stats().Cluster.Discovery; d.Seed != other.Node {
		t.Errorf("discovery asks %s, want %s", d.Seed, other.Node)
	}
	s.send(t, a, n-s.sent)
	waitDrained(t, a, 120*time.Second)
	checkExactlyOnce(t, other, s)
}

// waitMembers waits until the agent routes to exactly n reachable members, and returns them by
// node.
func waitMembers(t *testing.T, a *agent.Agent, n int) map[string]cluster.MemberStats {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := a.Stats().Cluster
		up := map[string]cluster.MemberStats{}
		for _, m := range st.Members {
			if m.Up {
				up[m.Target.Node] = m
			}
		}
		if len(up) == n && len(st.Members) == n {
			return up
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d members (%d reachable) after 30 s, want %d: %+v", len(st.Members), len(up), n, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
