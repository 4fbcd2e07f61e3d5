package cluster_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/cluster"
	"github.com/pharos-node/pharos-node/internal/erltest"
	"github.com/pharos-node/pharos-node/node"
)

// TestReconnectSoonAfterTheBrainReturns: a shard's manager in a long backoff (a retry drawn from
// up to 10 minutes) connects within seconds of its Brain's return: the shard's transport is an
// fsm.Prober that finds the shard owned again once the router's health probes see the member
// live. The records buffered meanwhile arrive.
func TestReconnectSoonAfterTheBrainReturns(t *testing.T) {
	c := erltest.StartCluster(t, erltest.ClusterOptions{Nodes: 1, Store: "local", NoPG: true})
	b := c.Nodes()[0]
	cfg := fastDelivery()
	cfg.BaseBackoff, cfg.MaxBackoff = 10*time.Minute, 10*time.Minute
	cfg.ProbeInterval, cfg.ProbeSpread = 100*time.Millisecond, 500*time.Millisecond
	a, err := agent.Start(context.Background(), agent.Options{
		NodeName:    "pharos_probe" + strconv.FormatInt(time.Now().UnixNano()%1e6, 36) + "@127.0.0.1",
		NodeOptions: node.Options{Cookie: c.Cookie, EPMDPort: c.Epmd.Port},
		Cluster:     &agent.ClusterConfig{Targets: targets(c), Routing: cluster.Failover, HealthInterval: 100 * time.Millisecond},
		Delivery:    cfg,
		Logger:      testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeAgent(t, a, 20*time.Second) })
	s := newStream(4)
	s.send(t, a, 100)
	waitConfirmed(t, a, 100, 15*time.Second)

	b.Kill9()
	waitFor(t, 15*time.Second, "the shard disconnected", func() bool {
		st := a.Stats()
		return st.Transitions["streaming->disconnected"] > 0 || st.Transitions["connecting->disconnected"] > 0
	})
	s.send(t, a, 100) // buffered
	time.Sleep(time.Second)
	b.Restart()
	back := time.Now()
	waitConfirmed(t, a, 200, 10*time.Second)
	if st := a.Stats(); st.Dropped != 0 || st.PossiblyLost != 0 {
		t.Errorf("dropped %d, possibly lost %d", st.Dropped, st.PossiblyLost)
	}
	t.Logf("the records buffered during the outage confirmed %v after the Brain's return", time.Since(back).Round(time.Millisecond))
}

func waitConfirmed(t *testing.T, a *agent.Agent, n uint64, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "records confirmed", func() bool { return a.Stats().Confirmed >= n })
}

func waitFor(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
	}
}
