package cluster_test

import (
	"testing"
	"time"

	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/internal/erltest"
)

// TestStoresNotSharedAreDetected: two Brain nodes that keep their acknowledged-mode state each
// for itself (the local store); when the first is killed, the shard's new owner answers a NextSeq
// behind what the first acknowledged: the router counts it (Stats.NotShared) and logs an error
// that names the cure, and nothing is lost going that way (the records are renumbered from the
// new owner's NextSeq, docs/design.md).
func TestStoresNotSharedAreDetected(t *testing.T) {
	c := erltest.StartCluster(t, erltest.ClusterOptions{Nodes: 2, Store: "local", NoPG: true})
	a := clusterAgent(t, c, agent.ModeAcked, agent.ClusterConfig{Targets: targets(c)}, "")
	s := newStream(4)
	s.send(t, a, 1000)
	waitAcked(t, a, 1000)
	c.Nodes()[0].Kill9()
	s.send(t, a, 1000)
	waitAcked(t, a, 2000)
	if n := a.Stats().Cluster.NotShared; n != 1 {
		t.Errorf("NotShared = %d, want 1", n)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := c.Nodes()[1].Stats()
		ok := true
		for key, n := range s.perKey() {
			ok = ok && st.Sources[key].Unique == n/2 && st.Sources[key].MaxSeq == n-1 && st.Sources[key].Duplicates == 0
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second half did not reach the second node whole: %+v", st.Sources)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
