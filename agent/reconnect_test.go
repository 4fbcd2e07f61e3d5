package agent_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/internal/erltest"
)

// TestReconnectSoonAfterTheBrainReturns: ten agents lose their Brain (its node killed) with a
// retry drawn from [0, 60 s), as after a long outage with the default backoff (here from the
// first failure: base = cap = 1 minute). The default probes (an EPMD lookup about every second)
// notice the Brain's return, and the retry is drawn again within ProbeSpread (5 s): at least 9
// of the 10 must be Streaming within 10 s of the Brain's return (without probes, the chance is
// 1 in 6 each).
func TestReconnectSoonAfterTheBrainReturns(t *testing.T) {
	const agents = 10
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	var all []*agent.Agent
	for range agents {
		opts := agentOptions(t, b)
		opts.Delivery = fsm.DefaultConfig()
		opts.Delivery.BaseBackoff, opts.Delivery.MaxBackoff = time.Minute, time.Minute
		a, err := agent.Start(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		defer closeAgent(t, a, 5*time.Second)
		all = append(all, a)
	}
	for _, a := range all {
		waitState(t, a, 15*time.Second, fsm.Streaming)
	}
	b.Kill9()
	for _, a := range all {
		waitState(t, a, 15*time.Second, fsm.Disconnected)
	}
	time.Sleep(3 * time.Second) // a few probes find nothing
	b.Restart()
	back := time.Now()
	var mu sync.Mutex
	var took []time.Duration
	var wg sync.WaitGroup
	for _, a := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(back) < 70*time.Second {
				if a.State() == fsm.Streaming {
					mu.Lock()
					took = append(took, time.Since(back))
					mu.Unlock()
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	slices.Sort(took)
	var probes uint64
	for _, a := range all {
		probes += a.Stats().Manager.Probes
	}
	t.Logf("Streaming again after the Brain's return: %v (%d probes in all)", took, probes)
	within := 0
	for _, d := range took {
		if d <= 10*time.Second {
			within++
		}
	}
	if within < 9 {
		t.Fatalf("%d of %d agents Streaming within 10 s of the Brain's return, want 9: %v", within, agents, took)
	}
	if probes == 0 {
		t.Fatal("no probes")
	}
}
