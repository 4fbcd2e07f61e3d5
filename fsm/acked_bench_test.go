package fsm

import (
	"github.com/pharos-node/pharos-node/tier"

	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// ackingTransport is a no-op AckTransport that remembers the ack each batch
// would get, for the benchmark loop to hand back (a transport must not call
// the manager from inside SendBatch).
type ackingTransport struct {
	pending []uint64
}

func (t *ackingTransport) Connect(context.Context) error { return nil }

func (t *ackingTransport) SendBatch(_ context.Context, _ string, firstSeq uint64, payloads [][]byte) error {
	t.pending = append(t.pending, firstSeq+uint64(len(payloads)))
	return nil
}

func noTimers(time.Duration, TimeoutID) func() bool { return func() bool { return true } }

// BenchmarkAckedManager measures the acknowledged path of the manager
// alone (MemoryLog, system clock, no-op transport whose acks come straight
// back): records/s through numbering, batching, the window and the trims.
//
// take=1 hands records over one by one (Deliver); take=256 as the agent
// does, through the inbox, which the manager takes 256 at a time.
func BenchmarkAckedManager(b *testing.B) {
	for _, take := range []int{1, 256} {
		for _, batch := range []int{100, 1000} {
			b.Run(fmt.Sprintf("take=%d/batch=%d", take, batch), func(b *testing.B) { benchAckedManager(b, take, batch) })
		}
	}
}

func benchAckedManager(b *testing.B, take, batch int) {
	cfg := DefaultConfig()
	cfg.Delivery = DeliveryAcked
	cfg.Acked.BatchSize = batch
	log, err := tier.NewMemoryLog(1<<20, nil)
	if err != nil {
		b.Fatal(err)
	}
	tr := &ackingTransport{}
	inbox, err := NewInbox(take)
	if err != nil {
		b.Fatal(err)
	}
	m, err := NewManager(ManagerOptions{Config: cfg, AckTransport: tr, Log: log, Timers: noTimers, Inbox: inbox})
	if err != nil {
		b.Fatal(err)
	}
	m.Start()
	m.Fire(1) // the zero-delay attempt: connect and probe
	m.Ack(log.SourceID(), 0)
	tr.pending = tr.pending[:0]
	rec := make([]byte, 100)
	recs := slices.Repeat([][]byte{rec}, take)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += take {
		if take == 1 {
			m.Deliver(rec)
		} else {
			if _, err := inbox.putMany(recs[:min(take, b.N-i)], func() error { return nil }, false); err != nil {
				b.Fatal(err)
			}
			m.TakeInbox()
		}
		for _, next := range tr.pending {
			m.Ack(log.SourceID(), next)
		}
		tr.pending = tr.pending[:0]
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	if s := m.Stats(); s.Acked+uint64(log.Len()) != uint64(b.N) || s.Resent != 0 {
		b.Fatalf("stats %+v, log %d", s, log.Len())
	}
}

// BenchmarkUnackedManager is the one-message-per-record path with a no-op
// transport, for comparison.
func BenchmarkUnackedManager(b *testing.B) {
	cfg := DefaultConfig()
	m, err := NewManager(ManagerOptions{Config: cfg, Transport: noopTransport{}, Ring: newFakeRing(cfg.MaxPending + 1), Timers: noTimers})
	if err != nil {
		b.Fatal(err)
	}
	m.Start()
	m.Fire(1)
	rec := make([]byte, 100)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		m.Deliver(rec)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

type noopTransport struct{}

func (noopTransport) Connect(context.Context) error         { return nil }
func (noopTransport) Deliver(context.Context, []byte) error { return nil }
