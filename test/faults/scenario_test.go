package faults

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pharos-node/pharos-node/internal/erltest"
	"github.com/pharos-node/pharos-node/internal/netfault"
)

// The suite's figures. A blackhole must outlast the tick time, or nothing notices it.
const (
	tickTime     = 4 * time.Second  // net_ticktime of the Brain and of every sender
	rate         = 2000             // records per second, per sender
	warmup       = 2 * time.Second  // streaming before the fault
	tail         = 3 * time.Second  // streaming after it
	blackholeFor = 20 * time.Second // the 20 s blackhole
	lossPercent  = 30               // per packet and direction
	lossFor      = 20 * time.Second
	flapDown     = 5 * time.Second // longer than the tick time: each down drops the connection
	flapUp       = 2 * time.Second
	flapCycles   = 3
	drainTimeout = 90 * time.Second // for everything held to reach the Brain after the fault
	// detectWithin bounds the detection of a fault that cuts the link for longer than the
	// tick time: a node drops a peer silent for the tick time; three times that leaves room
	// for a loaded machine.
	detectWithin = 3 * tickTime
)

// fault is one network fault, injected on the namespace's link; inject returns when the fault
// is over, with the spans it was in force.
type fault struct {
	name   string
	breaks bool // the fault cuts the link past the tick time: every sender must notice
	inject func(ctx context.Context, ns *netfault.Namespace) ([]netfault.Window, error)
}

func faultsUnderTest() []fault {
	return []fault{
		{name: "blackhole 20s", breaks: true, inject: func(ctx context.Context, ns *netfault.Namespace) ([]netfault.Window, error) {
			return hold(ctx, ns.Blackhole, ns.Heal, blackholeFor)
		}},
		{name: fmt.Sprintf("loss %d%% 20s", lossPercent), inject: func(ctx context.Context, ns *netfault.Namespace) ([]netfault.Window, error) {
			return hold(ctx, func() error { return ns.Loss(lossPercent) }, ns.Heal, lossFor)
		}},
		{name: fmt.Sprintf("flap %dx(%v down, %v up)", flapCycles, flapDown, flapUp), breaks: true,
			inject: func(ctx context.Context, ns *netfault.Namespace) ([]netfault.Window, error) {
				return ns.Flap(ctx, flapDown, flapUp, flapCycles)
			}},
	}
}

// hold puts a fault in force for d.
func hold(ctx context.Context, on, off func() error, d time.Duration) ([]netfault.Window, error) {
	w := netfault.Window{Start: time.Now()}
	if err := on(); err != nil {
		return nil, err
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	err := off()
	w.End = time.Now()
	return []netfault.Window{w}, err
}

// sender is one delivery path under test: an agent in some mode, or the daemon.
type sender interface {
	// offer hands the records numbered seqs to the sender and returns those it refused for now
	// (busy); err is for anything else.
	offer(seqs []int) (refused []int, err error)
	// state is the connection manager's state ("streaming", ...).
	state() string
	// counters reads the sender's counters.
	counters() counters
}

// counters are what a sender says it did.
type counters struct {
	Accepted, Delivered, Acked, PossiblyLost, Reconnects uint64
	Held                                                 int // records in the ring and on disk
	State                                                string
}

// env is what a mode needs to start its sender.
type env struct {
	brain  *erltest.Brain
	ns     *netfault.Namespace
	source string // the records' source, which the Brain tracks
}

// mode is a way of delivering, and what it promises.
type mode struct {
	label string
	start func(t *testing.T, e env) sender // stops it in t.Cleanup
	acked bool                             // drained when everything is acknowledged
	check func(t *testing.T, r result)
}

// result is what one mode did through one fault.
type result struct {
	fault, mode, otp string
	accepted         int
	refusals         int // offers refused for a while (busy), all accepted later
	arrived          erltest.SourceStats
	lost, duplicated int
	counted          uint64 // possibly_lost
	detection        time.Duration
	recovery         time.Duration // -1: never noticed, so nothing to recover from
	disconnects      int
}

// eachFault runs every fault under test at once, each in a subtest with a Brain of its own,
// through the modes modes gives. (Subtests started with t.Parallel would run only
// GOMAXPROCS at a time; the suite mostly waits, so it runs them all.)
func eachFault(t *testing.T, modes func() []mode) {
	var wg sync.WaitGroup
	for _, f := range faultsUnderTest() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(f.name, func(t *testing.T) { runFault(t, f, modes()) })
		}()
	}
	wg.Wait()
}

// runFault runs every mode through one fault, each on its own source, against one Brain in a
// namespace of its own.
func runFault(t *testing.T, f fault, modes []mode) {
	ns := netfault.New(t)
	b := erltest.StartBrain(t, erltest.BrainOptions{Netns: ns, Host: ns.Addr.String(), TickTime: tickTime})
	senders := make([]sender, len(modes))
	sources := make([]string, len(modes))
	for i, m := range modes {
		sources[i] = strings.NewReplacer(" ", "_", ",", "", "%", "pc").Replace(f.name + "/" + m.label)
		senders[i] = m.start(t, env{brain: b, ns: ns, source: sources[i]})
	}
	for i, s := range senders {
		waitUp(t, modes[i].label, s, 30*time.Second)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }() // also when a check below ends the test early
	watches := make([]*watch, len(senders))
	feeds := make([]*feed, len(senders))
	feedCtx, stopFeeds := context.WithCancel(ctx)
	for i, s := range senders {
		watches[i], feeds[i] = newWatch(), newFeed()
		wg.Add(2)
		go func() { defer wg.Done(); watches[i].run(ctx, s) }()
		go func() { defer wg.Done(); feeds[i].run(feedCtx, s) }()
	}
	time.Sleep(warmup)
	windows, err := f.inject(ctx, ns)
	time.Sleep(tail)
	stopFeeds()
	for _, fd := range feeds {
		fd.wait()
	}
	require.NoError(t, err, "inject %s", f.name)

	stats := drain(t, b, modes, senders, sources, feeds)
	cancel()
	wg.Wait()

	for i, m := range modes {
		c := senders[i].counters()
		r := result{fault: f.name, mode: m.label, otp: b.Release.Version, accepted: feeds[i].sent,
			refusals: feeds[i].refusals, arrived: stats[i], counted: c.PossiblyLost}
		r.lost = r.accepted - int(r.arrived.Unique)
		r.duplicated = int(r.arrived.Duplicates)
		r.detection, r.recovery, r.disconnects = watches[i].measure(windows)
		t.Run(m.label, func(t *testing.T) {
			require.NoError(t, feeds[i].err, "feeding %s", m.label)
			report(t, r)
			if f.breaks {
				require.GreaterOrEqual(t, r.detection, time.Duration(0), "the fault cut the link past the tick time: the sender must notice")
				require.LessOrEqual(t, r.detection, detectWithin, "detection")
			}
			m.check(t, r)
		})
	}
}

// waitUp waits until a sender streams.
func waitUp(t *testing.T, label string, s sender, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !up(s.state()) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: state %s after %v, want streaming", label, s.state(), timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func up(state string) bool { return state == "streaming" || state == "throttled" }

// drain waits until every sender holds nothing and has handed (acknowledged mode: had
// acknowledged) everything it accepted, and the Brain's count of each source stopped moving,
// and returns the Brain's tracking of each source.
func drain(t *testing.T, b *erltest.Brain, modes []mode, senders []sender, sources []string, feeds []*feed) []erltest.SourceStats {
	t.Helper()
	deadline := time.Now().Add(drainTimeout)
	var last erltest.Stats
	stable := 0
	for {
		s := b.Stats()
		done := true
		for i, snd := range senders {
			c := snd.counters()
			handed := c.Delivered
			if modes[i].acked {
				handed = c.Acked
			}
			if !up(c.State) || c.Held > 0 || handed < uint64(feeds[i].sent) {
				done = false
			}
			if s.Sources[sources[i]] != last.Sources[sources[i]] {
				done = false
			}
		}
		if done {
			stable++
		} else {
			stable = 0
		}
		if stable >= 3 { // nothing moved for three polls in a row
			out := make([]erltest.SourceStats, len(sources))
			for i, src := range sources {
				out[i] = s.Sources[src]
			}
			return out
		}
		if time.Now().After(deadline) {
			for i, snd := range senders {
				t.Logf("%s: %+v; accepted %d; at the Brain %+v", modes[i].label, snd.counters(), feeds[i].sent, s.Sources[sources[i]])
			}
			t.Fatalf("not drained %v after the fault", drainTimeout)
		}
		if os.Getenv("FAULT_DEBUG") != "" {
			for i, snd := range senders {
				t.Logf("drain %s: %+v; accepted %d; at the Brain %+v", modes[i].label, snd.counters(), feeds[i].sent, s.Sources[sources[i]])
			}
		}
		last = s
		time.Sleep(300 * time.Millisecond)
	}
}

// report logs r as a row of the suite's table, and appends it to FAULT_TABLE if set.
func report(t *testing.T, r result) {
	row := fmt.Sprintf("| %s | %s | %s | %d | %d | %d | %d | %s | %s | %d |", r.fault, r.mode, r.otp, r.accepted,
		r.lost, r.duplicated, r.counted, seconds(r.detection), seconds(r.recovery), r.disconnects)
	t.Logf("fault table row: %s (refusals while busy: %d; at the Brain: %+v)", row, r.refusals, r.arrived)
	if path := os.Getenv("FAULT_TABLE"); path != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		require.NoError(t, err)
		defer f.Close()
		_, err = fmt.Fprintln(f, row)
		require.NoError(t, err)
	}
}

func seconds(d time.Duration) string {
	if d < 0 {
		return "none"
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}
