package agent_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/fsm"
	"github.com/pharos-node/pharos-node/internal/erltest"
)

// startQueueSampler starts a process on the Brain's node that samples the Brain process's
// message queue every millisecond; the returned function reads the largest length seen.
func startQueueSampler(t *testing.T, b *erltest.Brain) func() int {
	t.Helper()
	b.Eval(`Pid = spawn(fun() ->
		Loop = fun L(Max) ->
			receive {get, From} -> From ! {max, Max}, L(Max)
			after 1 ->
				N = case whereis(` + b.Name + `) of
					undefined -> 0;
					P -> case process_info(P, message_queue_len) of {message_queue_len, Q} -> Q; _ -> 0 end
				end,
				L(max(N, Max))
			end
		end,
		Loop(0) end), register(queue_sampler, Pid), ok`)
	t.Cleanup(func() { b.Eval(`exit(whereis(queue_sampler), kill), ok`) })
	return func() int {
		out := b.Eval(`queue_sampler ! {get, self()}, receive {max, M} -> M after 5000 -> -1 end`)
		n, err := strconv.Atoi(out)
		if err != nil || n < 0 {
			t.Fatalf("queue sampler: %q", out)
		}
		return n
	}
}

// TestSlowBrainIsNotFlooded: delivery confirmations say that records reached the Brain's
// mailbox, not that the Brain processed them, so pacing by them alone lets a slow Brain's
// mailbox grow by the whole backlog. With brain.QueueLimit the payload mode never takes the
// mailbox past the limit: the transport sends while its bound on the queue (last measured plus
// sent since) is below it, and the manager waits in Throttled, connected, at each refusal.
// Without the limit the same backlog lands in the mailbox at once.
func TestSlowBrainIsNotFlooded(t *testing.T) {
	const n, limit = 3_000, 500
	for _, tc := range []struct {
		name  string
		limit int
	}{{"limit", limit}, {"no-limit", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			b := erltest.StartBrain(t, erltest.BrainOptions{})
			opts := agentOptions(t, b)
			opts.BrainQueue = agent.QueueLimit{Max: tc.limit}
			a, err := agent.Start(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			defer closeAgent(t, a, 10*time.Second)
			src := "slow-" + tc.name
			deliverAll(t, a, src, 0, 10)
			waitState(t, a, 10*time.Second, fsm.Streaming)
			peak := startQueueSampler(t, b)
			b.SetDelay(1) // at most 1,000 messages a second
			deliverAll(t, a, src, 10, n)
			time.Sleep(2 * time.Second)
			got := peak()
			stats := a.Stats()
			t.Logf("Brain's mailbox peaked at %d messages (limit %d); agent %+v", got, tc.limit, stats)
			if tc.limit > 0 {
				if got > tc.limit {
					t.Fatalf("the Brain's mailbox reached %d messages, over the limit %d", got, tc.limit)
				}
				if stats.Manager.Busy == 0 || stats.Reconnects != 0 {
					t.Fatalf("want waits for a busy Brain and no reconnect: %+v", stats)
				}
			} else if got < 3*limit {
				t.Fatalf("without a limit the mailbox peaked at %d only: the test shows nothing", got)
			}
			b.SetDelay(0)
			st, ok := b.WaitStats(30*time.Second, func(s erltest.Stats) bool { return s.Sources[src].Received >= n })
			if !ok || !st.Sources[src].Exactly(n) {
				t.Fatalf("Brain got %+v, want exactly %d in order", st.Sources[src], n)
			}
		})
	}
}

// TestBrainThatKeepsUpIsNotBusy: with brain.QueueLimit, a Brain that keeps up is never taken for
// busy. Records sent past the limit of the bound (last measured plus sent since) are preceded by
// a new measurement, not refused: 20,000 records at about 20,000 a second through a limit of
// 1,000 messages arrive with no wait in Throttled.
func TestBrainThatKeepsUpIsNotBusy(t *testing.T) {
	const n = 20_000
	b := erltest.StartBrain(t, erltest.BrainOptions{})
	opts := agentOptions(t, b)
	opts.BrainQueue = agent.QueueLimit{Max: 1_000}
	a, err := agent.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAgent(t, a, 10*time.Second)
	deliverAll(t, a, "keeps-up", 0, 10)
	waitState(t, a, 10*time.Second, fsm.Streaming)
	for i := 10; i < n; i += 500 {
		deliverAll(t, a, "keeps-up", i, min(i+500, n))
		time.Sleep(25 * time.Millisecond)
	}
	st, ok := b.WaitStats(30*time.Second, func(s erltest.Stats) bool { return s.Sources["keeps-up"].Received >= n })
	if !ok || !st.Sources["keeps-up"].Exactly(n) {
		t.Fatalf("Brain got %+v, want exactly %d in order", st.Sources["keeps-up"], n)
	}
	if stats := a.Stats(); stats.Manager.Busy != 0 {
		t.Fatalf("a Brain that keeps up was taken for busy %d times: %+v", stats.Manager.Busy, stats)
	}
}
