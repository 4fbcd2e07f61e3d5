package agent_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/internal/erltest"
	"github.com/pharos-node/pharos-node/internal/testlog"
	"github.com/pharos-node/pharos-node/node"
)

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
	return c
}

// testLogger writes to t.Log at info level, and nowhere once the test has ended.
func testLogger(t *testing.T) zerolog.Logger { return testlog.New(t, zerolog.InfoLevel) }

// agentOptions targets the Brain b with an agent-owned node.
func agentOptions(t *testing.T, b *erltest.Brain) agent.Options {
	return agent.Options{
		NodeName:    "pharos_" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36) + "@127.0.0.1",
		NodeOptions: node.Options{Cookie: b.Cookie, EPMDPort: b.EpmdPort},
		Brain:       agent.Target{Node: b.Node, Name: b.Name},
		Delivery:    fastDelivery(),
		Logger:      testLogger(t),
	}
}

// seqMetric is record number i of source, with the seq tag the reference Brain tracks.
func seqMetric(source string, i int) etf.Metric {
	return etf.Metric{
		Name: "test.seq", Kind: etf.Counter, Value: float64(i),
		Tags:        []etf.Tag{{Key: "seq", Value: strconv.Itoa(i)}},
		TimestampMs: time.Now().UnixMilli(), Source: source,
	}
}

// chunkedMetric is record number i of a stream split into sources of chunk records each
// (source-0, source-1, ...), each numbered from 0: the reference Brain's sequence tracking
// costs time in proportion to the numbers it has seen out of order, so a stream whose start is
// lost on purpose is tracked in chunks.
func chunkedMetric(source string, chunk, i int) etf.Metric {
	return seqMetric(source+"-"+strconv.Itoa(i/chunk), i%chunk)
}

// deliverAll delivers records from..to-1 of source, waiting while the manager is busy.
func deliverAll(t *testing.T, a *agent.Agent, source string, from, to int) {
	t.Helper()
	deliverRange(t, a, from, to, func(i int) etf.Metric { return seqMetric(source, i) })
}

// deliverRange delivers record(i) for i in from..to-1, waiting while the manager is busy.
func deliverRange(t *testing.T, a *agent.Agent, from, to int, record func(i int) etf.Metric) {
	t.Helper()
	for i := from; i < to; i++ {
		for {
			err := a.DeliverMetric(record(i))
			if err == nil {
				break
			}
			if !errors.Is(err, agent.ErrBusy) {
				t.Fatalf("deliver %d: %v", i, err)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// waitState polls the agent's state.
func waitState(t *testing.T, a *agent.Agent, timeout time.Duration, want ...fsm.State) fsm.State {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := a.State()
		for _, w := range want {
			if s == w {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("state %v after %v, want one of %v", s, timeout, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func closeAgent(t *testing.T, a *agent.Agent, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := a.Close(ctx); err != nil && !errors.Is(err, agent.ErrClosed) {
		t.Errorf("close: %v", err)
	}
}
