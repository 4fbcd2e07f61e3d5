package agent_test

import (
	"context"
	"errors"
	"sync"
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
}

func (c *stuckConnector) Connect(context.Context, gen.Atom) (*node.Conn, error) {
	c.once.Do(func() { close(c.entered) })
	<-c.release
	return nil, errors.New("no Brain")
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
			n, err := ergo.StartNode(gen.Atom("pharos_close_inbox@localhost"), gen.NodeOptions{
				Network: gen.NetworkOptions{Mode: gen.NetworkModeDisabled},
				Env:     map[gen.Env]any{"disable_metrics": true},
				Log:     gen.LogOptions{DefaultLogger: gen.DefaultLoggerOptions{Disable: true}},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { n.Stop(); n.Wait() }()
			conn := &stuckConnector{entered: make(chan struct{}), release: make(chan struct{})}
			defer close(conn.release) // lets the killed manager's goroutine end

			delivery := fastDelivery()
			delivery.ConnectTimeout = 50 * time.Millisecond
			delivery.DeliverTimeout = 50 * time.Millisecond
			opts := agent.Options{
				Node: n, Connector: conn,
				Brain:    agent.Target{Node: "brain@localhost", Name: "pharos_brain"},
				Delivery: delivery,
				Logger:   testLogger(t),
			}
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
				l, oerr := spill.Open(dir)
				if oerr != nil {
					t.Fatal(oerr)
				}
				defer l.Close()
				if l.Len() != records || err != nil {
					t.Errorf("Close: %v; %d records in the spill directory, want %d (accepted, never delivered)", err, l.Len(), records)
				}
				return
			}
			if !errors.Is(err, agent.ErrRecordsLeft) {
				t.Errorf("Close: %v, want ErrRecordsLeft: %d accepted records were never delivered", err, records)
			}
		})
	}
}
