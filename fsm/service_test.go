package fsm

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pharos-node/pharos-node/tier"
)

// lockedSpill makes the fake disk tier safe for the test goroutine to inspect.
type lockedSpill struct {
	mu sync.Mutex
	s  fakeSpill
}

func (l *lockedSpill) Append(rec []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.Append(rec)
}
func (l *lockedSpill) Read(dst []tier.Record, n int) ([]tier.Record, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.Read(dst, n)
}
func (l *lockedSpill) Rewind() { l.mu.Lock(); defer l.mu.Unlock(); l.s.Rewind() }
func (l *lockedSpill) Trim(through uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.Trim(through)
}
func (l *lockedSpill) Len() int     { l.mu.Lock(); defer l.mu.Unlock(); return l.s.Len() }
func (l *lockedSpill) Bytes() int64 { l.mu.Lock(); defer l.mu.Unlock(); return l.s.Bytes() }
func (l *lockedSpill) strings() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.s.recs {
		out = append(out, string(r.Data))
	}
	return out
}

// panickyTransport crashes the manager at every connection attempt once armed.
type panickyTransport struct {
	*fakeSink
	mu    sync.Mutex
	armed bool
}

func (p *panickyTransport) arm() { p.mu.Lock(); p.armed = true; p.mu.Unlock() }

func (p *panickyTransport) Connect(ctx context.Context) error {
	p.mu.Lock()
	armed := p.armed
	p.mu.Unlock()
	if armed {
		panic("test: the transport crashes the manager")
	}
	return p.fakeSink.Connect(ctx)
}

// TestServiceRestartIntensity: a manager that crashes at every start is restarted by its
// supervisor (counted) until the restart intensity is exceeded; the supervisor then gives up,
// hands the tiers back (the ring's and the inbox's records to the disk tier: nothing accepted
// is lost), and Done closes with Err wrapping ErrRestartIntensity, for a daemon to exit
// non-zero.
func TestServiceRestartIntensity(t *testing.T) {
	node := startNode(t)
	sink := newFakeSink()
	sink.setUp(false) // records stay in the ring
	tr := &panickyTransport{fakeSink: sink}
	spill := &lockedSpill{}
	inbox := newInbox(t, 1000)
	metrics, err := NewMetrics(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := StartService(node, ServiceOptions{
		Name: "pharos_conn",
		Actor: ActorOptions{Config: actorConfig(), NewTransport: StaticTransport(tr), Ring: &lockedRing{r: newFakeRing(1000)},
			Spill: spill, Inbox: inbox, Logger: testLogger(t)},
		RestartIntensity: 2, RestartPeriod: 5 * time.Second, Metrics: metrics, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := recs("r", 20)
	for _, r := range want {
		if err := svc.Handle().Deliver([]byte(r)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "records held", func() bool { return svc.Snapshot().Held == len(want) })
	tr.arm()
	if err := svc.Handle().ConnectionLost(); err != nil { // the next attempt crashes, and every one after
		t.Fatal(err)
	}
	select {
	case <-svc.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the supervisor did not give up")
	}
	if err := svc.Err(); !errors.Is(err, ErrRestartIntensity) {
		t.Fatalf("Err = %v, want ErrRestartIntensity", err)
	}
	if got := spill.strings(); !slices.Equal(got, want) {
		t.Fatalf("handed back to disk %v, want %v", got, want)
	}
	if snap := svc.Snapshot(); snap.Running || snap.Restarts != 2 {
		t.Fatalf("snapshot %+v, want not running after 2 restarts", snap)
	}
	if err := svc.Handle().Deliver([]byte("late")); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("deliver after the supervisor gave up: %v, want ErrNotRunning", err)
	}
	if hb, err := svc.Stop(context.Background()); err != nil || hb.Spilled != len(want) {
		t.Fatalf("Stop after the end: %+v, %v", hb, err)
	}
}

// TestServiceReconfigure: a running manager takes a new tuning; what it cannot change live (the
// discipline, confirmations switched on or off, a MaxPending the ring cannot hold) is refused
// and nothing changes.
func TestServiceReconfigure(t *testing.T) {
	node := startNode(t)
	svc, err := StartService(node, ServiceOptions{
		Name: "pharos_conn",
		Actor: ActorOptions{Config: actorConfig(), NewTransport: StaticTransport(newFakeSink()), Ring: &lockedRing{r: newFakeRing(1000)},
			Inbox: newInbox(t, 1000), Logger: testLogger(t)},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop(context.Background()) //nolint:errcheck
	cfg := actorConfig()
	cfg.FlushInterval, cfg.DrainBatch = 30*time.Millisecond, 7
	if err := svc.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	if got := svc.opts.Live.Load(); got.FlushInterval != 30*time.Millisecond || got.DrainBatch != 7 {
		t.Fatalf("live configuration %+v", got)
	}
	bad := cfg
	bad.Delivery = DeliveryAcked
	bad.Acked = DefaultAckedConfig()
	if err := svc.Reconfigure(bad); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("a change of discipline: %v", err)
	}
	bad = cfg
	bad.Confirm = DefaultConfirmConfig()
	if err := svc.Reconfigure(bad); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("confirmations switched on: %v", err)
	}
	bad = cfg
	bad.MaxPending = 5000
	if err := svc.Reconfigure(bad); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("MaxPending above the ring: %v", err)
	}
	if got := svc.opts.Live.Load(); got.DrainBatch != 7 || got.MaxPending != cfg.MaxPending {
		t.Fatalf("a refused change changed %+v", got)
	}
}
