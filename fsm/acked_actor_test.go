package fsm

import (
	"github.com/pharos-node/pharos-node/tier"

	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"ergo.services/ergo/act"
	"ergo.services/ergo/gen"
	"github.com/pharos-node/pharos-node/etf"
)

// batchTerm is the pharos_batch a local test Brain receives.
type batchTerm struct {
	replyTo  gen.PID
	sourceID string
	firstSeq uint64
	payloads [][]byte
}

// ackingBrain is a registered actor with pharos_acked.erl's semantics; it
// answers with the term the etf decoder would produce.
type ackingBrain struct {
	act.Actor
	mu    *sync.Mutex
	brain *fakeBrain
}

func (b *ackingBrain) HandleMessage(from gen.PID, message any) error {
	m, ok := message.(batchTerm)
	if !ok {
		return nil
	}
	msg := batchMessage{sourceID: m.sourceID, firstSeq: m.firstSeq}
	for _, p := range m.payloads {
		msg.payloads = append(msg.payloads, string(p))
	}
	b.mu.Lock()
	ack := b.brain.handle(msg)
	b.mu.Unlock()
	// Like Erlang's !, a send to a dead ReplyTo (a crashed manager) is not
	// an error of the Brain's.
	_ = b.Send(m.replyTo, etf.Tuple{etf.Atom("pharos_ack"), []byte(ack.SourceID), int64(ack.NextSeq)})
	return nil
}

// localAckTransport sends batches to the registered Brain from the manager
// actor, with the actor's pid as ReplyTo.
type localAckTransport struct {
	p     gen.Process
	brain gen.Atom
}

func (t *localAckTransport) Connect(ctx context.Context) error { return ctx.Err() }

func (t *localAckTransport) SendBatch(_ context.Context, sourceID string, firstSeq uint64, payloads [][]byte) error {
	copied := make([][]byte, len(payloads))
	copy(copied, payloads)
	return t.p.Send(t.brain, batchTerm{replyTo: t.p.PID(), sourceID: sourceID, firstSeq: firstSeq, payloads: copied})
}

// TestActorAckedSurvivesCrash: the acknowledged mode under Ergo, the
// Brain's acks decoded as etf terms; the manager is killed mid-stream and
// restarted by its supervisor over the same MemoryLog; the Brain processes
// every record once, in order.
func TestActorAckedSurvivesCrash(t *testing.T) {
	node := startNode(t)
	mu := &sync.Mutex{}
	brain := newFakeBrain()
	if _, err := node.SpawnRegister("brain", func() gen.ProcessBehavior { return &ackingBrain{mu: mu, brain: brain} }, gen.ProcessOptions{}); err != nil {
		t.Fatal(err)
	}
	log, err := tier.NewMemoryLog(100_000, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := actorConfig()
	cfg.Delivery = DeliveryAcked
	cfg.Acked = AckedConfig{BatchSize: 50, BatchDelay: 2 * time.Millisecond, Window: 4, AckTimeout: time.Second}
	pids := &pidRecorder{}
	inbox, err := NewInbox(100_000)
	if err != nil {
		t.Fatal(err)
	}
	h := startSupervised(t, node, ActorOptions{
		Config: cfg,
		Inbox:  inbox,
		NewAckTransport: func(p gen.Process) (AckTransport, error) {
			pids.mu.Lock()
			pids.pids = append(pids.pids, p.PID())
			pids.mu.Unlock()
			return &localAckTransport{p: p, brain: "brain"}, nil
		},
		Log:    log,
		Logger: testLogger(t),
	}, gen.ProcessOptions{})
	processed := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(brain.processed[log.SourceID()])
	}
	deliver := func(recs []string) {
		for _, r := range recs {
			for {
				err := h.Deliver([]byte(r))
				if err == nil {
					break
				}
				if !errors.Is(err, ErrNotRunning) {
					t.Fatal(err)
				}
				time.Sleep(time.Millisecond) // between the crash and the restart
			}
		}
	}
	want := recs("r", 3000)
	deliver(want[:1500])
	// A crash loses the mailbox, not the log or the inbox: crash once every
	// record is in the log, some of them still unacknowledged.
	eventually(t, "records in the log", func() bool { return log.NextSeq() == 1500 })
	first, _ := pids.last()
	if err := node.Kill(first); err != nil { // a crash: exit signals from others than the parent are ignored
		t.Fatal(err)
	}
	// What reaches the dying actor's mailbox is lost with it (doc.go): wait
	// for the restart.
	eventually(t, "restart", func() bool { _, n := pids.last(); return n == 2 })
	deliver(want[1500:])
	eventually(t, "every record", func() bool { return len(processed()) >= len(want) && log.Len() == 0 })
	if got := processed(); !slices.Equal(got, want) {
		t.Fatalf("processed %d records, first difference at %d", len(got), firstDiff(got, want))
	}
	if _, n := pids.last(); n != 2 {
		t.Fatalf("%d incarnations, want 2", n)
	}
	if err := h.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// countingAckTransport counts connections: after the first, each one is a
// reconnect (an acknowledgement timeout, here).
type countingAckTransport struct {
	localAckTransport
	connects *int64
	mu       *sync.Mutex
}

func (t *countingAckTransport) Connect(ctx context.Context) error {
	t.mu.Lock()
	*t.connects++
	t.mu.Unlock()
	return t.localAckTransport.Connect(ctx)
}

// TestActorAckedFloodKeepsAcks: producers deliver as fast as the manager
// takes records, with a small mailbox bound. Acknowledgements reach the
// manager through its mailbox; with one mailbox message per record the
// mailbox was full whenever producers were ahead, Ergo dropped the acks
// that arrived then, and the manager sat out an acknowledgement timeout
// (a 30 s stall at the default) before resending. Through the Inbox the
// mailbox holds at most one notification besides acks and timers: every
// record is processed once, with no reconnect.
func TestActorAckedFloodKeepsAcks(t *testing.T) {
	node := startNode(t)
	mu := &sync.Mutex{}
	brain := newFakeBrain()
	if _, err := node.SpawnRegister("brain", func() gen.ProcessBehavior { return &ackingBrain{mu: mu, brain: brain} }, gen.ProcessOptions{}); err != nil {
		t.Fatal(err)
	}
	log, err := tier.NewMemoryLog(1_000_000, nil)
	if err != nil {
		t.Fatal(err)
	}
	inbox, err := NewInbox(256)
	if err != nil {
		t.Fatal(err)
	}
	cfg := actorConfig()
	cfg.Delivery = DeliveryAcked
	cfg.Acked = AckedConfig{BatchSize: 100, BatchDelay: 2 * time.Millisecond, Window: 8, AckTimeout: 2 * time.Second}
	var connects int64
	h, err := Spawn(node, "pharos_conn", ActorOptions{
		Config: cfg,
		NewAckTransport: func(p gen.Process) (AckTransport, error) {
			return &countingAckTransport{localAckTransport: localAckTransport{p: p, brain: "brain"}, connects: &connects, mu: mu}, nil
		},
		Log: log, Logger: testLogger(t), Inbox: inbox,
	}, gen.ProcessOptions{MailboxSize: 256})
	if err != nil {
		t.Fatal(err)
	}
	want := recs("r", 100_000)
	for _, r := range want {
		for {
			err := h.Deliver([]byte(r))
			if err == nil {
				break
			}
			if !errors.Is(err, ErrMailboxFull) {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Microsecond)
		}
	}
	processed := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(brain.processed[log.SourceID()])
	}
	eventually(t, "every record processed", func() bool { return processed() == len(want) && log.Len() == 0 })
	mu.Lock()
	got, n := slices.Clone(brain.processed[log.SourceID()]), connects
	mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("processed %d records, first difference at %d", len(got), firstDiff(got, want))
	}
	if n != 1 {
		t.Fatalf("%d connections, want 1: acknowledgements were lost and timed out", n)
	}
	if err := h.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}
