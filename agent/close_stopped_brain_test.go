package agent_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/etf"
	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/internal/erltest"
	"github.com/pharos-node/pharos-node/spill"
)

// TestCloseWithABrainThatStoppedReading: the Brain is SIGSTOPped mid-stream, so the
// connection's buffer fills and sends wait for room. Close still returns in bounded time (its
// ctx, then the manager's stop, each send bounded by DeliverTimeout: not the tick time, and
// not forever as when the tick loop itself waited behind the full buffer), and every record
// accepted is either handed to the connection or in the spill directory.
func TestCloseWithABrainThatStoppedReading(t *testing.T) {
	for _, tc := range []struct {
		name       string
		mode       agent.Mode
		queueLimit int // payload mode's check of the Brain's mailbox, by calls to its node
	}{{"payload", agent.ModePayload, 0}, {"payload-queue-limit", agent.ModePayload, 50_000}, {"acked", agent.ModeAcked, 0}} {
		mode := tc.mode
		t.Run(tc.name, func(t *testing.T) {
			b := erltest.StartBrain(t, erltest.BrainOptions{})
			opts := agentOptions(t, b)
			opts.Mode = mode
			opts.SpillDir = t.TempDir()
			opts.BrainQueue = agent.QueueLimit{Max: tc.queueLimit, Every: 5 * time.Millisecond}
			a, err := agent.Start(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			deliverAll(t, a, "before", 0, 100)
			waitState(t, a, 10*time.Second, fsm.Streaming)
			b.Stop()
			defer b.Cont()
			// Records of about 2 KB, for a second: far more than the socket and the
			// connection's buffer hold.
			value := strings.Repeat("v", 200)
			for i, end := 0, time.Now().Add(time.Second); time.Now().Before(end); i++ {
				m := seqMetric("during", i)
				for k := range 10 {
					m.Tags = append(m.Tags, etf.Tag{Key: "k" + string(rune('a'+k)), Value: value})
				}
				if err := a.DeliverMetric(m); errors.Is(err, agent.ErrBusy) {
					time.Sleep(time.Millisecond)
				} else if err != nil {
					t.Fatal(err)
				}
			}
			before := a.Stats()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			start := time.Now()
			err = a.Close(ctx)
			took := time.Since(start)
			cancel()
			if err != nil {
				t.Fatalf("Close: %v", err)
			}
			// ctx (1 s) + the manager's stop (DeliverTimeout 3 s + 1 s) + a send in progress
			limit := 10 * time.Second
			if took > limit {
				t.Fatalf("Close took %v with a stopped Brain, want under %v", took, limit)
			}
			l, err := spill.Open(opts.SpillDir)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			after := a.Stats()
			// payload: confirmed in the Brain's mailbox (what was written and not confirmed is
			// kept, and spilled at Close)
			handedOver := after.Confirmed
			if mode == agent.ModeAcked {
				handedOver = after.Acked // acked: only what the Brain acknowledged leaves the log
			}
			t.Logf("Close took %v; accepted %d, handed over %d, in the spill directory %d (before Close: %+v)",
				took, after.Accepted, handedOver, l.Len(), before)
			if got := handedOver + uint64(l.Len()); got != after.Accepted || after.Dropped != 0 {
				t.Fatalf("accepted %d, handed over %d + spilled %d = %d, dropped %d: records unaccounted for",
					after.Accepted, handedOver, l.Len(), got, after.Dropped)
			}
		})
	}
}
