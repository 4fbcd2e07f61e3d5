package agent_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ergo.services/ergo"
	"ergo.services/ergo/gen"

	"github.com/pharos-node/pharos-node/agent"
	"github.com/pharos-node/pharos-node/node"
	"github.com/pharos-node/pharos-node/spill"
)

// stuckConnector stands for a connection attempt that outlives Close's stop wait (it ignores
// ctx), so Close has to kill the manager.
type stuckConnector struct {
	entered, release chan struct{}
	once             sync.Once
	returned         atomic.Bool // Connect returned
}

func (c *stuckConnector) Connect(context.Context, gen.Atom) (*node.Conn, error) {
	c.once.Do(func() { close(c.entered) })
	<-c.release
	c.returned.Store(true)
	return nil, errors.New("no Brain")
}

func startIsolatedNode(t *testing.T, name string) gen.Node {
	t.Helper()
	n, err := ergo.StartNode(gen.Atom(name), gen.NodeOptions{
		Network: gen.NetworkOptions{Mode: gen.NetworkModeDisabled},
		Env:     map[gen.Env]any{"disable_metrics": true},
		Log:     gen.LogOptions{DefaultLogger: gen.DefaultLoggerOptions{Disable: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Stop(); n.Wait() })
	return n
}

// stuckAgentOptions are options for an agent on an isolated node of its caller's whose
// connection attempts get stuck in conn (until conn.release is closed), with Close's stop wait
// at about 1.05 s.
func stuckAgentOptions(t *testing.T, nodeName string) (agent.Options, *stuckConnector) {
	t.Helper()
	conn := &stuckConnector{entered: make(chan struct{}), release: make(chan struct{})}
	delivery := fastDelivery()
	delivery.ConnectTimeout = 50 * time.Millisecond
	delivery.DeliverTimeout = 50 * time.Millisecond
	return agent.Options{
		Node: startIsolatedNode(t, nodeName), Connector: conn,
		Brain:    agent.Target{Node: "brain@localhost", Name: "pharos_brain"},
		Delivery: delivery,
		Logger:   testLogger(t),
	}, conn
}

// spilledRecords is how many records the spill directory dir holds.
func spilledRecords(t *testing.T, dir string) int {
	t.Helper()
	l, err := spill.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Len()
}

// TestCloseWaitsForAKilledManager: a kill ends a manager inside a handler only when the handler
// returns. Close must not append the inbox's records through SeqSpill (not safe for concurrent
// use) or close the spill log while the killed manager may still use them: it waits for the
// manager's end (found in review: it went on at once).
func TestCloseWaitsForAKilledManager(t *testing.T) {
	opts, conn := stuckAgentOptions(t, "pharos_close_killed@localhost")
	dir := t.TempDir()
	opts.Mode, opts.SpillDir = agent.ModeAcked, dir
	a, err := agent.Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	<-conn.entered
	const records = 10
	deliverAll(t, a, "killed", 0, records)

	// Close gives up on ctx at 0.1 s and on the stop at about 1.15 s, then kills the manager,
	// which is still in its connection attempt until 1.4 s.
	release := sync.OnceFunc(func() { close(conn.release) })
	defer release() // also when the test fails: lets the manager end, and the node stop
	time.AfterFunc(1400*time.Millisecond, release)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = a.Close(ctx)
	if !conn.returned.Load() {
		t.Fatalf("Close returned (%v) while the killed manager was still in its handler", err)
	}
	if n := spilledRecords(t, dir); n != records || err != nil {
		t.Errorf("Close: %v; %d records in the spill directory, want %d", err, n, records)
	}
}

// TestCloseAccountsForTheInbox: records the agent accepted that are still in the manager's
// inbox when Close has to kill the manager (here: stuck in a connection attempt) go to the
// spill directory, or, without one, are counted in ErrRecordsLeft; never lost in silence.
func TestCloseAccountsForTheInbox(t *testing.T) {
	for _, withSpill := range []bool{false, true} {
		name := "no spill"
		if withSpill {
			name = "spill"
		}
		t.Run(name, func(t *testing.T) {
			opts, conn := stuckAgentOptions(t, "pharos_close_inbox@localhost")
			defer close(conn.release) // lets the killed manager's goroutine end
			dir := t.TempDir()
			if withSpill {
				opts.SpillDir = dir
			}
			a, err := agent.Start(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			<-conn.entered // the manager is stuck in its first attempt

			const records = 10
			deliverAll(t, a, "inbox", 0, records)
			if s := a.Stats(); s.Accepted != records {
				t.Fatalf("accepted %d", s.Accepted)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			err = a.Close(ctx) // waits, stops for 1.05 s, then kills the manager

			if withSpill {
				if n := spilledRecords(t, dir); n != records || err != nil {
					t.Errorf("Close: %v; %d records in the spill directory, want %d (accepted, never delivered)", err, n, records)
				}
				return
			}
			if !errors.Is(err, agent.ErrRecordsLeft) {
				t.Errorf("Close: %v, want ErrRecordsLeft: %d accepted records were never delivered", err, records)
			}
		})
	}
}
