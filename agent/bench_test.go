package agent_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/internal/erltest"
	"github.com/pharos-node/pharos-node/node"
)

// BenchmarkPayloadConfirmations: what the payload mode's delivery confirmations cost, in one run
// against one reference Brain. Each variant delivers PHAROS_BENCH_COUNT records (default 200,000)
// through an agent (DeliverMetrics in requests of 100, as the HTTP ingest does), as fast as the
// manager takes them, timed from the first record until the Brain has processed the last; it
// reports the records/s and this process's CPU per record for the defaults (a round trip every
// 20 ms or 2,000 records) and for delivery.confirm_interval 0s (no confirmations).
func BenchmarkPayloadConfirmations(b *testing.B) {
	n := 200_000
	if v, err := strconv.Atoi(os.Getenv("PHAROS_BENCH_COUNT")); err == nil && v > 0 {
		n = v
	}
	brain := erltest.StartBrain(b, erltest.BrainOptions{})
	type variant struct {
		name    string
		confirm fsm.ConfirmConfig
	}
	variants := []variant{{"confirm", fsm.DefaultConfirmConfig()}, {"noconfirm", fsm.ConfirmConfig{}}}
	agents := make([]*agent.Agent, len(variants))
	for i, v := range variants {
		opts := agent.Options{
			NodeName:    fmt.Sprintf("pharos_bench_%s_%d@127.0.0.1", v.name, time.Now().UnixNano()%1e6),
			NodeOptions: agentNodeOptions(brain),
			Brain:       agent.Target{Node: brain.Node, Name: brain.Name},
			Delivery:    fsm.DefaultConfig(),
		}
		opts.Delivery.Confirm = v.confirm
		a, err := agent.Start(context.Background(), opts)
		if err != nil {
			b.Fatal(err)
		}
		defer a.Close(context.Background())
		agents[i] = a
		deliverBench(b, brain, a, "warmup-"+v.name, 20_000)
	}
	wall := make([]time.Duration, len(variants))
	cpu := make([]time.Duration, len(variants))
	total := 0
	for i := 0; b.Loop(); i++ {
		total += n
		for k, v := range variants {
			w, c := deliverBench(b, brain, agents[k], fmt.Sprintf("bench-%s-%d", v.name, i), n)
			wall[k] += w
			cpu[k] += c
		}
	}
	for k, v := range variants {
		b.ReportMetric(float64(total)/wall[k].Seconds(), v.name+"_rec/s")
		b.ReportMetric(float64(cpu[k].Microseconds())/float64(total), v.name+"_cpu_us/rec")
	}
	b.Logf("OTP %s, %d records per variant: with confirmations %.0f/s, %.2f µs CPU per record; without %.0f/s, %.2f µs",
		brain.Release.Version, total, float64(total)/wall[0].Seconds(), float64(cpu[0].Microseconds())/float64(total),
		float64(total)/wall[1].Seconds(), float64(cpu[1].Microseconds())/float64(total))
}

// agentNodeOptions is the node options for an agent in the Brain's cluster.
func agentNodeOptions(b *erltest.Brain) node.Options {
	return node.Options{Cookie: b.Cookie, EPMDPort: b.EpmdPort}
}

// deliverBench delivers n records of source src through a in requests of 100 and waits until the
// Brain has processed them; it returns the time and this process's CPU time.
func deliverBench(b *testing.B, brain *erltest.Brain, a *agent.Agent, src string, n int) (time.Duration, time.Duration) {
	b.Helper()
	batch := make([]etf.Metric, 100)
	cpu0, t0 := selfCPU(), time.Now()
	for i := 0; i < n; i += len(batch) {
		for k := range batch {
			batch[k] = seqMetric(src, i+k)
		}
		for done := 0; done < len(batch); {
			got, err := a.DeliverMetrics(batch[done:])
			done += got
			if err != nil {
				if !errors.Is(err, agent.ErrBusy) {
					b.Fatal(err)
				}
				time.Sleep(100 * time.Microsecond)
			}
		}
	}
	st, ok := brain.WaitStats(60*time.Second, func(s erltest.Stats) bool { return s.Sources[src].Received >= int64(n) })
	wall, cpu := time.Since(t0), selfCPU()-cpu0
	if !ok || !st.Sources[src].Exactly(int64(n)) {
		b.Fatalf("Brain got %+v of %s, want %d", st.Sources[src], src, n)
	}
	return wall, cpu
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
