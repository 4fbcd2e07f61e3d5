package cluster_test

import (
	"testing"
	"time"

	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/cluster"
	"github.com/pharos-node/pharos-node/internal/erltest"
)

// TestAckedKill9 is the must-show run, for each routing: three Brain nodes sharing the
// mnesia store, the acknowledged mode through a spill directory, records of 64 keys; one Brain
// node (the one owning the most shards) is killed with -9 mid-stream and restarted later. Over
// the cluster every record is processed exactly once, and every key's records in order.
// PHAROS_CLUSTER_COUNT sets the number of records (make cluster-must-show: 1,000,000).
func TestAckedKill9(t *testing.T) {
	for _, routing := range []cluster.Routing{cluster.Failover, cluster.Shard} {
		t.Run(routing.String(), func(t *testing.T) { testAckedKill9(t, routing) })
	}
}

func testAckedKill9(t *testing.T, routing cluster.Routing) {
	n := count(t, 200_000)
	c := erltest.StartCluster(t, erltest.ClusterOptions{Nodes: 3})
	a := clusterAgent(t, c, agent.ModeAcked, agent.ClusterConfig{Targets: targets(c), Routing: routing}, t.TempDir())
	s := newStream(64)
	start := time.Now()
	s.send(t, a, n/3)
	waitAcked(t, a, uint64(n/6))
	victim := busiest(t, a, c)
	t.Logf("%d records sent, %d acknowledged in %v; killing %s with -9", s.sent, a.Stats().Acked,
		time.Since(start).Round(time.Millisecond), victim.Node)
	victim.Kill9()
	s.send(t, a, n/3)
	waitAcked(t, a, uint64(n/2))
	t.Logf("%d records sent, %d acknowledged; restarting %s", s.sent, a.Stats().Acked, victim.Node)
	victim.Restart()
	s.send(t, a, n-s.sent)
	waitDrained(t, a, 120*time.Second)
	t.Logf("%d records acknowledged in %v; %+v", s.sent, time.Since(start).Round(time.Millisecond), a.Stats().Cluster.Members)
	checkExactlyOnce(t, c.Nodes()[0], s)
	if st := a.Stats().Cluster; st.Retargets == 0 {
		t.Errorf("no shard moved: %+v", st)
	}
}

// waitAcked waits until the Brains have acknowledged at least n records.
func waitAcked(t *testing.T, a *agent.Agent, n uint64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for a.Stats().Acked < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d records acknowledged after 60 s, want %d: %+v", a.Stats().Acked, n, a.Stats().Cluster)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// busiest is the Brain node that owns the most shards now.
func busiest(t *testing.T, a *agent.Agent, c *erltest.Cluster) *erltest.Brain {
	t.Helper()
	best, most := c.Nodes()[0], -1
	for _, m := range a.Stats().Cluster.Members {
		if m.Shards > most {
			for _, b := range c.Nodes() {
				if b.Node == m.Target.Node {
					best, most = b, m.Shards
				}
			}
		}
	}
	return best
}
