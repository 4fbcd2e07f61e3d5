package faults

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/pharos-node/pharos-node/internal/testlog"

	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/node"
)

// suiteDelivery is the manager's configuration in the suite: the defaults, but reconnect
// backoff capped at 1 s, so recovery shows the fault, not a long backoff drawn during it.
func suiteDelivery() fsm.Config {
	c := fsm.DefaultConfig()
	c.BaseBackoff = 100 * time.Millisecond
	c.MaxBackoff = time.Second
	return c
}

// agentSender is an embedded agent (package agent) with a spill directory.
type agentSender struct {
	a      *agent.Agent
	source string
}

// startAgent starts an agent in mode m on the host, with the suite's configuration changed by
// tune (if not nil), and closes it in t.Cleanup.
func startAgent(t *testing.T, e env, m agent.Mode, tune func(*fsm.Config)) sender {
	t.Helper()
	cfg := suiteDelivery()
	if tune != nil {
		tune(&cfg)
	}
	a, err := agent.Start(context.Background(), agent.Options{
		NodeName:    "faults_" + randomHex(4) + "@" + e.ns.HostAddr.String(),
		NodeOptions: node.Options{Cookie: e.brain.Cookie, EPMDPort: e.brain.EpmdPort, TickTime: tickTime},
		Brain:       agent.Target{Node: e.brain.Node, Name: e.brain.Name},
		Mode:        m,
		Delivery:    cfg,
		SpillDir:    t.TempDir(),
		Logger:      testLogger(t, e.source),
	})
	if err != nil {
		t.Fatalf("agent.Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Close(ctx); err != nil {
			t.Logf("%s: close: %v", e.source, err)
		}
	})
	return &agentSender{a: a, source: e.source}
}

func (s *agentSender) offer(seqs []int) ([]int, error) {
	for i, seq := range seqs {
		err := s.a.DeliverMetric(seqMetric(s.source, seq))
		if errors.Is(err, agent.ErrBusy) {
			return seqs[i:], nil
		}
		if err != nil {
			return seqs[i:], err
		}
	}
	return nil, nil
}

func (s *agentSender) state() string { return s.a.State().String() }

func (s *agentSender) counters() counters {
	st := s.a.Stats()
	return counters{Accepted: st.Accepted, Delivered: st.Delivered, Acked: st.Acked, PossiblyLost: st.PossiblyLost,
		Reconnects: st.Reconnects, Held: st.RingRecords + st.SpillRecords, State: st.State.String()}
}

// seqMetric is record number seq of source, with the seq tag the reference Brain tracks.
func seqMetric(source string, seq int) etf.Metric {
	return etf.Metric{
		Name: "faults.seq", Kind: etf.Counter, Value: float64(seq),
		Tags:        []etf.Tag{{Key: "seq", Value: strconv.Itoa(seq)}},
		TimestampMs: time.Now().UnixMilli(), Source: source,
	}
}

// testLogger writes warnings and errors to t.Log, prefixed with who logs, and nothing once the
// test has ended.
func testLogger(t *testing.T, who string) zerolog.Logger {
	return testlog.New(t, zerolog.WarnLevel).With().Str("sender", who).Logger()
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b)
}
