package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/brain"
	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/internal/erltest"
	"github.com/pharos-node/pharos-node/internal/testlog"
	"github.com/pharos-node/pharos-node/node"
)

func TestMain(m *testing.M) {
	code := 0
	func() {
		defer func() {
			if err := erltest.CheckNoLeaks(); err != nil {
				fmt.Fprintln(os.Stderr, err)
				code = 1
			}
		}()
		goleak.VerifyTestMain(exitCode{m, &code},
			goleak.IgnoreTopFunction("ergo.services/ergo/node.(*node).SetCTRLC.func1"),
			goleak.IgnoreAnyFunction("ergo.services/ergo/node.(*node).SetCTRLC.func1"))
	}()
	os.Exit(code)
}

// exitCode runs the tests for goleak.VerifyTestMain and keeps their exit code, so that
// CheckNoLeaks runs after goleak and before the process exits.
type exitCode struct {
	m    *testing.M
	code *int
}

func (e exitCode) Run() int { *e.code = e.m.Run(); return *e.code }

// count is how many records a must-show test streams: PHAROS_CLUSTER_COUNT, else def.
func count(t *testing.T, def int) int {
	if v := os.Getenv("PHAROS_CLUSTER_COUNT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("PHAROS_CLUSTER_COUNT: %v", err)
		}
		return n
	}
	return def
}

// fastDelivery is a manager configuration with short timers, for tests.
func fastDelivery() fsm.Config {
	c := fsm.DefaultConfig()
	c.BaseBackoff = 20 * time.Millisecond
	c.MaxBackoff = 300 * time.Millisecond
	c.FlushInterval = 10 * time.Millisecond
	c.DrainInterval = 10 * time.Millisecond
	c.ConnectTimeout = 3 * time.Second
	c.DeliverTimeout = 3 * time.Second
	c.DropLogInterval = time.Second
	c.Acked.AckTimeout = 5 * time.Second
	return c
}

// testLogger writes to t.Log at info level, and nowhere once the test has ended.
func testLogger(t *testing.T) zerolog.Logger { return testlog.New(t, zerolog.InfoLevel) }

// targets are the Brains of the cluster's nodes.
func targets(c *erltest.Cluster) []brain.Target {
	var ts []brain.Target
	for _, b := range c.Nodes() {
		for _, name := range b.Names() {
			ts = append(ts, brain.Target{Node: b.Node, Name: name})
		}
	}
	return ts
}

// clusterAgent starts an agent of the cluster c in mode with cfg.
func clusterAgent(t *testing.T, c *erltest.Cluster, mode agent.Mode, cfg agent.ClusterConfig, spillDir string) *agent.Agent {
	t.Helper()
	cfg.HealthInterval = 200 * time.Millisecond
	a, err := agent.Start(context.Background(), agent.Options{
		NodeName:    "pharos_" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36) + "@127.0.0.1",
		NodeOptions: node.Options{Cookie: c.Cookie, EPMDPort: c.Epmd.Port},
		Cluster:     &cfg,
		Mode:        mode,
		Delivery:    fastDelivery(),
		SpillDir:    spillDir,
		Logger:      testLogger(t),
	})
	if err != nil {
		t.Fatalf("start the agent: %v", err)
	}
	t.Cleanup(func() { closeAgent(t, a, 30*time.Second) })
	return a
}

func closeAgent(t *testing.T, a *agent.Agent, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := a.Close(ctx); err != nil && !errors.Is(err, agent.ErrClosed) {
		t.Errorf("close: %v", err)
	}
}

// stream delivers records 0..n-1 spread over keys sources, key-K numbered from 0 in its seq tag,
// in chunks (DeliverMetrics), waiting while the agent is busy; at calls at(i) before record i
// of each chunk boundary it crosses.
type stream struct {
	keys int
	next []int // per key, the next seq
	sent int
}

func newStream(keys int) *stream { return &stream{keys: keys, next: make([]int, keys)} }

func (s *stream) metric(i int) etf.Metric {
	k := i % s.keys
	seq := s.next[k]
	s.next[k]++
	return etf.Metric{Name: "cluster.seq", Kind: etf.Counter, Value: float64(seq),
		Tags:        []etf.Tag{{Key: "seq", Value: strconv.Itoa(seq)}},
		TimestampMs: 1_700_000_000_000 + int64(i), Source: "key-" + strconv.Itoa(k)}
}

// send delivers n more records.
func (s *stream) send(t *testing.T, a *agent.Agent, n int) {
	t.Helper()
	batch := make([]etf.Metric, 0, 512)
	for n > 0 {
		batch = batch[:0]
		for len(batch) < cap(batch) && len(batch) < n {
			batch = append(batch, s.metric(s.sent+len(batch)))
		}
		for off := 0; off < len(batch); {
			k, err := a.DeliverMetrics(batch[off:])
			off += k
			if err != nil {
				if !errors.Is(err, agent.ErrBusy) {
					t.Fatalf("deliver: %v", err)
				}
				time.Sleep(time.Millisecond)
			}
		}
		s.sent += len(batch)
		n -= len(batch)
	}
}

// perKey is how many records each key got.
func (s *stream) perKey() map[string]int64 {
	out := map[string]int64{}
	for k, n := range s.next {
		out["key-"+strconv.Itoa(k)] = int64(n)
	}
	return out
}

// waitDrained waits until the agent holds nothing.
func waitDrained(t *testing.T, a *agent.Agent, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for a.Unacknowledged() > 0 || a.Cluster().InboxLen() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not drained after %v: %d held; %+v", timeout, a.Unacknowledged(), a.Stats().Cluster)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkExactlyOnce checks, in the cluster's tables, that every key's records arrived once each
// and in order, and that the shards' NextSeqs add up to the records sent.
func checkExactlyOnce(t *testing.T, via *erltest.Brain, s *stream) {
	t.Helper()
	st := via.ClusterStats()
	var acked int64
	for _, n := range st.Acked {
		acked += n
	}
	if acked != int64(s.sent) {
		t.Errorf("the shards' NextSeqs add up to %d, want %d: %v", acked, s.sent, st.Acked)
	}
	bad := 0
	for key, n := range s.perKey() {
		if k := st.Keys[key]; !k.Exactly(n) {
			bad++
			if bad <= 10 {
				t.Errorf("%s: %+v, want %d records once each, in order", key, k, n)
			}
		}
	}
	if bad == 0 {
		t.Logf("exactly once, in order: %d records over %d keys and %d shards", s.sent, len(s.next), len(st.Acked))
	}
}
