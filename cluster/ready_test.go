package cluster_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/cluster"
	"github.com/pharos-node/pharos-node/internal/erltest"
	"github.com/pharos-node/pharos-node/node"
)

// TestReadyPolicies: three agents on one cluster of three Brain nodes (the payload mode, routing
// shard), ready while any, a quorum of, or all Brains are reachable. Killing one node, then a
// second, flips each as its policy says; the members' state and their metrics (label brain)
// say who is down; the records sent with one node left reach it, each of them.
func TestReadyPolicies(t *testing.T) {
	c := erltest.StartCluster(t, erltest.ClusterOptions{Nodes: 3, Store: "local", NoPG: true})
	nodes := c.Nodes()
	reg := prometheus.NewRegistry()
	agents := map[cluster.Ready]*agent.Agent{}
	for _, ready := range []cluster.Ready{cluster.ReadyAny, cluster.ReadyQuorum, cluster.ReadyAll} {
		cfg := agent.ClusterConfig{Targets: targets(c), Routing: cluster.Shard, Ready: ready, Shards: 8,
			HealthInterval: 100 * time.Millisecond}
		opts := agent.Options{
			NodeName:    "pharos_" + ready.String() + strconv.FormatInt(time.Now().UnixNano()%1e6, 36) + "@127.0.0.1",
			NodeOptions: node.Options{Cookie: c.Cookie, EPMDPort: c.Epmd.Port},
			Cluster:     &cfg, Delivery: fastDelivery(), Logger: testLogger(t),
		}
		if ready == cluster.ReadyAll {
			opts.Registerer = reg
		}
		a, err := agent.Start(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closeAgent(t, a, 20*time.Second) })
		agents[ready] = a
	}
	want := func(any, quorum, all bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			got := [3]bool{agents[cluster.ReadyAny].Ready(), agents[cluster.ReadyQuorum].Ready(), agents[cluster.ReadyAll].Ready()}
			if got == [3]bool{any, quorum, all} {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("ready (any, quorum, all) = %v, want %v", got, [3]bool{any, quorum, all})
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	want(true, true, true)
	cfg := fastDelivery()
	cfg.MaxPending = 5000
	if err := agents[cluster.ReadyAny].Reconfigure(cfg); err != nil {
		t.Errorf("reconfigure the shards: %v", err)
	}
	up := func(b *erltest.Brain) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "pharos_cluster_member_up" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == b.Node+"/pharos_brain" {
					return m.GetGauge().GetValue()
				}
			}
		}
		t.Fatalf("no pharos_cluster_member_up{brain=%q}", b.Node+"/pharos_brain")
		return 0
	}
	if up(nodes[2]) != 1 {
		t.Error("pharos_cluster_member_up of a reachable member is not 1")
	}
	if n := testutil.CollectAndCount(reg, "pharos_fsm_state"); n != 8*4 {
		t.Errorf("pharos_fsm_state has %d series, want 4 states for each of 8 shards", n)
	}

	nodes[2].Kill9()
	want(true, true, false)
	if up(nodes[2]) != 0 {
		t.Error("pharos_cluster_member_up of a killed member is not 0")
	}
	nodes[1].Kill9()
	want(true, false, false)
	for _, m := range agents[cluster.ReadyAll].Stats().Cluster.Members {
		if m.Up != (m.Target.Node == nodes[0].Node) || (m.Up && m.Shards != 8) || (!m.Up && (m.Shards != 0 || m.LastError == "")) {
			t.Errorf("member %+v", m)
		}
	}
	if s := agents[cluster.ReadyAll].State().String(); !strings.EqualFold(s, "disconnected") {
		t.Errorf("state %s with Brains down and ready all", s)
	}

	a := agents[cluster.ReadyAny]
	s := newStream(16)
	s.send(t, a, 4000)
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := nodes[0].Stats()
		ok := true
		for key, n := range s.perKey() {
			ok = ok && st.Sources[key].Unique == n
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the records did not all reach the one node left: %+v", st.Sources)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
