package fsm_test

import (
	"github.com/pharos-node/pharos-node/tier"

	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/pharos-node/pharos-node/fsm"
)

// printingBrain is an AckTransport that prints each pharos_batch and keeps
// the ack the Brain would send.
type printingBrain struct{ acks []uint64 }

func (b *printingBrain) Connect(context.Context) error { return nil }

func (b *printingBrain) SendBatch(_ context.Context, _ string, firstSeq uint64, payloads [][]byte) error {
	fmt.Printf("pharos_batch FirstSeq=%d Payloads=%q\n", firstSeq, payloads)
	b.acks = append(b.acks, firstSeq+uint64(len(payloads)))
	return nil
}

// The acknowledged mode driven by hand: connect and probe, synchronise on
// the Brain's NextSeq, then batches of three, each trimmed from the log
// when its cumulative ack comes back.
func ExampleManager_acked() {
	cfg := fsm.DefaultConfig()
	cfg.Delivery = fsm.DeliveryAcked
	cfg.Acked.BatchSize = 3
	log, err := tier.NewMemoryLog(1000, bytes.NewReader(make([]byte, 16)))
	if err != nil {
		panic(err)
	}
	brain := &printingBrain{}
	var pending []fsm.TimeoutID // the runner's "timer wheel"
	m, err := fsm.NewManager(fsm.ManagerOptions{
		Config: cfg, AckTransport: brain, Log: log,
		Timers: func(_ time.Duration, id fsm.TimeoutID) func() bool {
			pending = append(pending, id)
			return func() bool { return true }
		},
	})
	if err != nil {
		panic(err)
	}
	m.Start()
	m.Fire(pending[0]) // the connection attempt: connect, then the probe
	m.Ack(log.SourceID(), 0)
	for _, r := range []string{"a", "b", "c", "d", "e", "f"} {
		m.Deliver([]byte(r))
	}
	for _, next := range brain.acks[1:] {
		m.Ack(log.SourceID(), next)
	}
	s := m.Stats()
	fmt.Printf("acked %d, in flight %d, held %d\n", s.Acked, s.InFlight, log.Len())
	// Output:
	// pharos_batch FirstSeq=0 Payloads=[]
	// pharos_batch FirstSeq=0 Payloads=["a" "b" "c"]
	// pharos_batch FirstSeq=3 Payloads=["d" "e" "f"]
	// acked 6, in flight 0, held 0
}
