package fsm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pharos-node/pharos-node/tier"
)

// Fakes for the acknowledged mode: a Brain with pharos_acked.erl's dedup
// semantics, the network between it and the manager (queues the test
// drives, with losses, drops and delays), and a disk log that survives a
// manager restart with a lazily persisted trim point. All are driven from
// the test's goroutine.

// fakeBrain is test/erlang/src/pharos_acked.erl: per SourceId, the NextSeq
// acknowledged so far (persistent: it survives a Brain restart, as the
// reference Brain's state file), and what it processed, in order.
type fakeBrain struct {
	next      map[string]uint64
	processed map[string][]string
}

func newFakeBrain() *fakeBrain {
	return &fakeBrain{next: map[string]uint64{}, processed: map[string][]string{}}
}

// handle is handle_batch/3: a batch starting above NextSeq is not processed
// and re-acknowledges the old NextSeq; records below NextSeq are dropped.
func (b *fakeBrain) handle(m batchMessage) Ack {
	next := b.next[m.sourceID]
	if m.firstSeq <= next {
		seq := m.firstSeq
		for _, p := range m.payloads {
			if seq >= next {
				b.processed[m.sourceID] = append(b.processed[m.sourceID], p)
				next = seq + 1
			}
			seq++
		}
	}
	b.next[m.sourceID] = next
	return Ack{SourceID: m.sourceID, NextSeq: next}
}

// batchMessage is a pharos_batch on its way to the Brain.
type batchMessage struct {
	replyTo  int // the manager incarnation that sent it
	sourceID string
	firstSeq uint64
	payloads []string
}

// ackMessage is a pharos_ack on its way back.
type ackMessage struct {
	replyTo int
	ack     Ack
}

var errNetDown = errors.New("fake net: not connected")

// fakeNet is the AckTransport and the wire: batches queue in toBrain until
// the test lets the Brain take them, acks queue in toSender until the test
// hands them to the manager. Erlang keeps the order of messages between two
// processes, so the queues are FIFO; a drop keeps a prefix and loses the
// rest.
type fakeNet struct {
	brain       *fakeBrain
	incarnation int // the current manager's "pid"
	up          bool
	connected   bool
	failSendN   int
	toBrain     []batchMessage
	toSender    []ackMessage
	sent        []batchMessage // every batch ever sent, probes excluded
	probes      int
	connects    int
}

func newFakeNet() *fakeNet { return &fakeNet{brain: newFakeBrain(), up: true, incarnation: 1} }

func (n *fakeNet) Connect(ctx context.Context) error {
	n.connects++
	if !n.up {
		return errNetDown
	}
	n.connected = true
	return ctx.Err()
}

func (n *fakeNet) SendBatch(ctx context.Context, sourceID string, firstSeq uint64, payloads [][]byte) error {
	if !n.connected {
		return errNetDown
	}
	if n.failSendN > 0 {
		n.failSendN--
		return fmt.Errorf("fake net: injected send failure")
	}
	m := batchMessage{replyTo: n.incarnation, sourceID: sourceID, firstSeq: firstSeq, payloads: make([]string, len(payloads))}
	for i, p := range payloads {
		m.payloads[i] = string(p)
	}
	n.toBrain = append(n.toBrain, m)
	if len(payloads) == 0 {
		n.probes++
	} else {
		n.sent = append(n.sent, m)
	}
	return ctx.Err()
}

// brainTakes lets the Brain process up to k queued batches (all if k < 0).
func (n *fakeNet) brainTakes(k int) {
	if k < 0 || k > len(n.toBrain) {
		k = len(n.toBrain)
	}
	for _, m := range n.toBrain[:k] {
		n.toSender = append(n.toSender, ackMessage{replyTo: m.replyTo, ack: n.brain.handle(m)})
	}
	n.toBrain = append([]batchMessage(nil), n.toBrain[k:]...)
}

// acksArrive hands up to k queued acks (all if k < 0) to the manager; acks
// for an earlier incarnation go to a dead pid and vanish.
func (n *fakeNet) acksArrive(m *Manager, k int) {
	if k < 0 || k > len(n.toSender) {
		k = len(n.toSender)
	}
	queue := n.toSender[:k]
	n.toSender = append([]ackMessage(nil), n.toSender[k:]...)
	for _, a := range queue {
		if a.replyTo == n.incarnation {
			m.Ack(a.ack.SourceID, a.ack.NextSeq)
		}
	}
}

// exchange runs the Brain and the acks until both queues are empty.
func (n *fakeNet) exchange(m *Manager) {
	for len(n.toBrain) > 0 || len(n.toSender) > 0 {
		n.brainTakes(-1)
		n.acksArrive(m, -1)
	}
}

// drop breaks the connection: the first keepToBrain batches and
// keepToSender acks had arrived, the rest are lost.
func (n *fakeNet) drop(keepToBrain, keepToSender int) {
	n.connected = false
	n.brainTakes(keepToBrain)
	n.toBrain = nil
	n.toSender = n.toSender[:min(keepToSender, len(n.toSender))]
}

func (n *fakeNet) processed(sourceID string) []string { return n.brain.processed[sourceID] }

// fakeDiskLog is a SeqLog that survives a manager restart, numbered as a
// spill directory is: appends are durable, numbers dense from nextSeq,
// Renumber and ClearUnsent durable at once (failRenumber and failClear make
// them fail); the trim point is persisted only by persistTrim (as the spill
// directory persists it lazily), so a crash brings trimmed records back.
// jumpOnCrash > 0 makes the numbering jump after a crash (a hole, as
// records lost to damage leave). osCrash is a crash of the machine: what
// was not fsynced is gone and the numbering goes on from what survived,
// with the next number marked unsent.
type fakeDiskLog struct {
	sourceID    string
	recs        []tier.Record // every record not durably trimmed, in order
	nextSeq     uint64
	trimmed     int // recs[:trimmed] are trimmed
	durable     int // trimmed, as persisted
	cursor      int // index in recs
	jumpOnCrash uint64
	full        bool
	unsynced    int    // records at the end of recs appended since the last fsync
	durableNext uint64 // one past the last record persistTrim forgot

	renumbered   [][2]uint64 // the Renumber calls that succeeded: {from, to}
	failRenumber bool
	markerSet    bool
	markerFrom   uint64
	failClear    bool
}

var errDiskFull = errors.New("fake disk: full")

func newFakeDiskLog(sourceID string) *fakeDiskLog { return &fakeDiskLog{sourceID: sourceID} }

func (l *fakeDiskLog) SourceID() string { return l.sourceID }

func (l *fakeDiskLog) Append(rec []byte) (uint64, error) {
	if l.full {
		return 0, errDiskFull
	}
	seq := l.nextSeq
	l.nextSeq++
	l.recs = append(l.recs, tier.Record{Seq: seq, Data: append([]byte(nil), rec...)})
	l.unsynced++
	return seq, nil
}

func (l *fakeDiskLog) Read(dst []tier.Record, n int) ([]tier.Record, error) {
	l.cursor = max(l.cursor, l.trimmed)
	for ; n > 0 && l.cursor < len(l.recs); n-- {
		dst = append(dst, l.recs[l.cursor])
		l.cursor++
	}
	return dst, nil
}

func (l *fakeDiskLog) Rewind() { l.cursor = l.trimmed }

func (l *fakeDiskLog) Trim(through uint64) error {
	for l.trimmed < len(l.recs) && l.recs[l.trimmed].Seq <= through {
		l.trimmed++
	}
	return nil
}

func (l *fakeDiskLog) Renumber(from, to uint64) error {
	if l.failRenumber {
		return errDiskFull
	}
	i := l.trimmed
	for i < len(l.recs) && l.recs[i].Seq != from {
		i++
	}
	if i == len(l.recs) && from != l.nextSeq {
		return fmt.Errorf("fake disk: renumber from %d: no such record", from)
	}
	shift := to - from
	for j := i; j < len(l.recs); j++ {
		l.recs[j].Seq += shift
	}
	l.nextSeq += shift
	if l.markerSet && l.markerFrom >= from {
		l.markerFrom += shift
	}
	l.renumbered = append(l.renumbered, [2]uint64{from, to})
	return nil
}

func (l *fakeDiskLog) UnsentFrom() (uint64, bool) { return l.markerFrom, l.markerSet }

func (l *fakeDiskLog) ClearUnsent() error {
	if l.failClear {
		return errDiskFull
	}
	l.markerSet = false
	return nil
}

func (l *fakeDiskLog) live() []tier.Record { return l.recs[l.trimmed:] }

func (l *fakeDiskLog) Len() int { return len(l.live()) }

func (l *fakeDiskLog) Bytes() int64 {
	var n int64
	for _, r := range l.live() {
		n += int64(len(r.Data))
	}
	return n
}

// persistTrim makes the trim point durable and forgets what it covers.
func (l *fakeDiskLog) persistTrim() {
	k := l.trimmed
	if k > 0 {
		l.durableNext = l.recs[k-1].Seq + 1
	}
	l.recs = append([]tier.Record(nil), l.recs[k:]...)
	l.cursor = max(0, l.cursor-k)
	l.trimmed, l.durable = 0, 0
	l.unsynced = min(l.unsynced, len(l.recs))
}

func (l *fakeDiskLog) fsync() { l.unsynced = 0 }

// crash is a process kill: the trim point goes back to the durable one.
func (l *fakeDiskLog) crash() {
	l.trimmed = l.durable
	l.cursor = l.trimmed
	l.nextSeq += l.jumpOnCrash
}

// osCrash is a crash of the machine: it returns the records it lost.
func (l *fakeDiskLog) osCrash() []tier.Record {
	lost := slices.Clone(l.recs[len(l.recs)-l.unsynced:])
	l.recs = l.recs[:len(l.recs)-l.unsynced]
	l.unsynced = 0
	l.trimmed = min(l.durable, len(l.recs))
	l.cursor = l.trimmed
	l.nextSeq = l.durableNext
	if n := len(l.recs); n > 0 {
		l.nextSeq = l.recs[n-1].Seq + 1
	}
	if !l.markerSet || l.nextSeq < l.markerFrom {
		l.markerSet, l.markerFrom = true, l.nextSeq
	}
	return lost
}

// ---------------------------------------------------------------------------
// ackHarness: a Manager in the acknowledged mode on a fake clock.
// ---------------------------------------------------------------------------

type ackHarness struct {
	t       fatalfer
	clock   *fakeClock
	net     *fakeNet
	log     SeqLog
	cfg     Config
	metrics *Metrics
	manager *Manager
	inbox   *Inbox // for deliverTaken
	stored  func(records [][]byte)
}

// ackedTestConfig: batches of 4, 10 ms delay, a window of 2, 1 s ack
// timeout, 100 ms base backoff without jitter surprises (fixedRand).
func ackedTestConfig() Config {
	cfg := testConfig()
	cfg.Delivery = DeliveryAcked
	cfg.Acked = AckedConfig{BatchSize: 4, BatchDelay: 10 * time.Millisecond, Window: 2, AckTimeout: time.Second}
	return cfg
}

func newAckHarness(t fatalfer, cfg Config, log SeqLog, net *fakeNet, clock *fakeClock, metrics *Metrics) *ackHarness {
	t.Helper()
	inbox, err := NewInbox(1 << 20)
	if err != nil {
		t.Fatalf("NewInbox: %v", err)
	}
	h := &ackHarness{t: t, clock: clock, net: net, log: log, cfg: cfg, metrics: metrics, inbox: inbox}
	h.manager = h.build()
	return h
}

func (h *ackHarness) build() *Manager {
	h.t.Helper()
	var m *Manager
	m, err := NewManager(ManagerOptions{
		Config:       h.cfg,
		AckTransport: h.net,
		Log:          h.log,
		Clock:        h.clock,
		Rand:         fixedRand{frac: 0.5},
		Metrics:      h.metrics,
		Inbox:        h.inbox,
		Stored:       h.stored,
		Timers: func(after time.Duration, id TimeoutID) func() bool {
			timer := h.clock.AfterFunc(after, func() { m.Fire(id) })
			return timer.Stop
		},
	})
	if err != nil {
		h.t.Fatalf("NewManager: %v", err)
	}
	return m
}

// restart is a kill -9 of the manager's process and a start over the same
// log: the old incarnation's timers die with it, its acks find no one.
func (h *ackHarness) restart() {
	h.manager.Close()
	switch d := h.log.(type) {
	case *fakeDiskLog:
		d.crash()
	case *poisonLog:
		d.crash()
		d.lent = nil // the crash ends every Read's loan
	}
	h.net.incarnation++
	h.net.connected = false
	h.manager = h.build()
	h.manager.Start()
}

func (h *ackHarness) deliver(recs ...string) {
	for _, r := range recs {
		h.manager.Deliver([]byte(r))
	}
}

// deliverTaken hands recs over as an agent does: through the inbox, which
// the manager takes at once (one event for all of them).
func (h *ackHarness) deliverTaken(recs ...string) {
	h.t.Helper()
	h.put(recs...)
	h.manager.TakeInbox()
}

// put leaves recs in the inbox, for a later TakeInbox (or Start).
func (h *ackHarness) put(recs ...string) {
	h.t.Helper()
	data := make([][]byte, len(recs))
	for i, r := range recs {
		data[i] = []byte(r)
	}
	if n, err := h.inbox.putMany(data, func() error { return nil }, false); err != nil || n != len(recs) {
		h.t.Fatalf("inbox: %d of %d, %v", n, len(recs), err)
	}
}

// startSynced starts the manager, lets the probe through and answers it.
func (h *ackHarness) startSynced() {
	h.t.Helper()
	h.manager.Start()
	h.clock.Advance(0)
	h.net.exchange(h.manager)
	if h.manager.State() != Streaming || !ackedOf(h.manager).synced {
		h.t.Fatalf("not synchronised: state %v", h.manager.State())
	}
}

func (h *ackHarness) mustState(want State) {
	h.t.Helper()
	if got := h.manager.State(); got != want {
		h.t.Fatalf("state = %v, want %v", got, want)
	}
}

// firstSeqs lists the FirstSeq of the batches sent from index from on.
func (n *fakeNet) firstSeqs(from int) []uint64 {
	var out []uint64
	for _, m := range n.sent[from:] {
		out = append(out, m.firstSeq)
	}
	return out
}

// poisonLog wraps a fakeDiskLog and holds the manager to SeqLog's contract ("Data
// stays valid until the record is trimmed") the way spill.WithReadsReleasedByTrim does: the
// bytes Read hands out are overwritten as soon as a Trim covers them, so a payload used after
// its trim reaches the Brain as garbage.
type poisonLog struct {
	*fakeDiskLog
	lent []tier.Record
}

func (p *poisonLog) Read(dst []tier.Record, n int) ([]tier.Record, error) {
	start := len(dst)
	dst, err := p.fakeDiskLog.Read(dst, n)
	for i := start; i < len(dst); i++ {
		c := slices.Clone(dst[i].Data)
		dst[i].Data = c
		p.lent = append(p.lent, tier.Record{Seq: dst[i].Seq, Data: c})
	}
	return dst, err
}

func (p *poisonLog) Trim(through uint64) error {
	err := p.fakeDiskLog.Trim(through)
	k := 0
	for _, r := range p.lent {
		if r.Seq <= through {
			for i := range r.Data {
				r.Data[i] = 'X'
			}
			continue
		}
		p.lent[k] = r
		k++
	}
	clear(p.lent[k:])
	p.lent = p.lent[:k]
	return err
}
