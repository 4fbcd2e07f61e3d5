package fsm

import (
	"github.com/pharos-node/pharos-node/tier"

	"container/heap"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// In-memory fakes for the manager's seams. Except fakeSink (used by the
// actor test), they are driven from one goroutine.

// ---------------------------------------------------------------------------
// fakeClock: a manual clock with a timer heap. Timers fire only inside
// Advance, in time order, never synchronously from AfterFunc.
// ---------------------------------------------------------------------------

type fakeClock struct {
	now    time.Time
	seq    uint64
	timers timerHeap
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

type fakeTimer struct {
	when    time.Time
	seq     uint64
	f       func()
	index   int
	stopped bool
	fired   bool
}

func (t *fakeTimer) Stop() bool {
	if t.stopped || t.fired {
		return false
	}
	t.stopped = true
	return true
}

type timerHeap []*fakeTimer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if !h[i].when.Equal(h[j].when) {
		return h[i].when.Before(h[j].when)
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int)   { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *timerHeap) Push(x any)     { t := x.(*fakeTimer); t.index = len(*h); *h = append(*h, t) }
func (h *timerHeap) Pop() any       { old := *h; t := old[len(old)-1]; *h = old[:len(old)-1]; return t }
func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.seq++
	t := &fakeTimer{when: c.now.Add(max(d, 0)), seq: c.seq, f: f}
	heap.Push(&c.timers, t)
	return t
}

// Advance moves time forward by d, firing every due timer in order
// (including timers armed by the callbacks, if due).
func (c *fakeClock) Advance(d time.Duration) {
	target := c.now.Add(d)
	for c.timers.Len() > 0 {
		next := c.timers[0]
		if next.when.After(target) {
			break
		}
		heap.Pop(&c.timers)
		if next.stopped {
			continue
		}
		c.now = next.when
		next.fired = true
		next.f()
	}
	c.now = target
}

// NextDue is the time of the earliest live timer.
func (c *fakeClock) NextDue() (time.Time, bool) {
	for c.timers.Len() > 0 {
		if c.timers[0].stopped {
			heap.Pop(&c.timers)
			continue
		}
		return c.timers[0].when, true
	}
	return time.Time{}, false
}

// ---------------------------------------------------------------------------
// fakeRing
// ---------------------------------------------------------------------------

type fakeRing struct {
	recs      [][]byte
	limit     int
	byteLimit int // 0: none
}

func newFakeRing(capacity int) *fakeRing { return &fakeRing{limit: capacity} }

func (r *fakeRing) Push(rec []byte) int {
	r.recs = append(r.recs, rec)
	return r.evict()
}

func (r *fakeRing) PutBackFront(recs [][]byte) int {
	r.recs = append(append([][]byte(nil), recs...), r.recs...)
	return r.evict()
}

func (r *fakeRing) evict() int {
	over := max(len(r.recs)-r.limit, 0)
	for r.byteLimit > 0 && over < len(r.recs) && r.bytesFrom(over) > r.byteLimit {
		over++
	}
	if over > 0 {
		r.recs = append([][]byte(nil), r.recs[over:]...)
	}
	return over
}

func (r *fakeRing) bytesFrom(i int) int {
	n := 0
	for _, b := range r.recs[i:] {
		n += len(b)
	}
	return n
}

func (r *fakeRing) DrainUpTo(n int) [][]byte {
	n = min(max(n, 0), len(r.recs))
	out := append([][]byte(nil), r.recs[:n]...)
	r.recs = append([][]byte(nil), r.recs[n:]...)
	return out
}

func (r *fakeRing) Len() int { return len(r.recs) }
func (r *fakeRing) Cap() int { return r.limit }
func (r *fakeRing) CapBytes() int {
	if r.byteLimit == 0 {
		return math.MaxInt
	}
	return r.byteLimit
}
func (r *fakeRing) Bytes() int {
	n := 0
	for _, b := range r.recs {
		n += len(b)
	}
	return n
}

// ---------------------------------------------------------------------------
// fakeSpill: a log with a cursor; limit 0 means unlimited.
// ---------------------------------------------------------------------------

var errSpillFull = errors.New("fake spill: full")

type fakeSpill struct {
	cursor  int // index in recs of the next record Read returns
	recs    []tier.Record
	nextSeq uint64
	limit   int
	readErr error
}

func (s *fakeSpill) Append(rec []byte) error {
	if s.limit > 0 && len(s.recs) >= s.limit {
		return errSpillFull
	}
	s.nextSeq++
	s.recs = append(s.recs, tier.Record{Seq: s.nextSeq, Data: rec})
	return nil
}

func (s *fakeSpill) Read(dst []tier.Record, n int) ([]tier.Record, error) {
	if s.readErr != nil {
		return dst, s.readErr
	}
	s.cursor = min(s.cursor, len(s.recs))
	n = min(max(n, 0), len(s.recs)-s.cursor)
	dst = append(dst, s.recs[s.cursor:s.cursor+n]...)
	s.cursor += n
	return dst, nil
}

func (s *fakeSpill) Rewind() { s.cursor = 0 }

func (s *fakeSpill) Trim(through uint64) error {
	i := 0
	for i < len(s.recs) && s.recs[i].Seq <= through {
		i++
	}
	s.recs = append([]tier.Record(nil), s.recs[i:]...)
	s.cursor = max(0, s.cursor-i)
	return nil
}

func (s *fakeSpill) Len() int { return len(s.recs) }
func (s *fakeSpill) Bytes() int64 {
	var n int64
	for _, r := range s.recs {
		n += int64(len(r.Data))
	}
	return n
}

// ---------------------------------------------------------------------------
// fakeTransport: a sink that can be down, fail the next N deliveries, and
// records every call.
// ---------------------------------------------------------------------------

var (
	errDown        = errors.New("fake transport: sink down")
	errInjected    = errors.New("fake transport: injected delivery failure")
	errConnRefused = errors.New("fake transport: connection refused")
)

type fakeTransport struct {
	up           bool
	failDeliverN int // fail the next N Deliver calls even if up
	failAfter    int // >0: let failAfter-1 more deliveries through, fail the next
	failConnectN int
	busy         bool // refuse deliveries with ErrPeerBusy (the connection stays up)
	sink         [][]byte
	connectCalls int
	deliverCalls int
	probeCalls   int
	onConnect    func()
}

func (f *fakeTransport) Connect(ctx context.Context) error {
	f.connectCalls++
	if f.onConnect != nil {
		f.onConnect()
	}
	if f.failConnectN > 0 {
		f.failConnectN--
		return errConnRefused
	}
	if !f.up {
		return errDown
	}
	return ctx.Err()
}

func (f *fakeTransport) Deliver(ctx context.Context, rec []byte) error {
	f.deliverCalls++
	if !f.up {
		return errDown
	}
	if f.busy {
		return fmt.Errorf("%w: fake transport", ErrPeerBusy)
	}
	if f.failDeliverN > 0 {
		f.failDeliverN--
		return errInjected
	}
	if f.failAfter > 0 {
		f.failAfter--
		if f.failAfter == 0 {
			return errInjected
		}
	}
	f.sink = append(f.sink, rec)
	return ctx.Err()
}

// fakeBatchTransport adds DeliverBatch: it sends record by record through
// Deliver's rules, so a failure in the middle is a partial batch.
type fakeBatchTransport struct {
	*fakeTransport
	batches int
}

func (f *fakeBatchTransport) DeliverBatch(ctx context.Context, recs [][]byte) (int, error) {
	f.batches++
	for i, r := range recs {
		if err := f.Deliver(ctx, r); err != nil {
			return i, err
		}
	}
	return len(recs), nil
}

// fakeProber adds Probe to a fakeTransport: the peer is reachable when up.
type fakeProber struct{ *fakeTransport }

func (f fakeProber) Probe(context.Context) error {
	f.probeCalls++
	if !f.up {
		return errDown
	}
	return nil
}

// ---------------------------------------------------------------------------
// fixedRand: Int64N returns floor(n * frac).
// ---------------------------------------------------------------------------

type fixedRand struct{ frac float64 }

func (r fixedRand) Int64N(n int64) int64 {
	v := int64(float64(n) * r.frac)
	return min(max(v, 0), n-1)
}

// ---------------------------------------------------------------------------
// harness: a Manager on a fake clock with fake seams.
// ---------------------------------------------------------------------------

// fatalfer is what the harness needs from *testing.T and *rapid.T.
type fatalfer interface {
	Helper()
	Fatalf(format string, args ...any)
}

type harness struct {
	t         fatalfer
	clock     *fakeClock
	transport *fakeTransport
	ring      *fakeRing
	spill     *fakeSpill // nil: RAM only
	manager   *Manager
	cfg       Config
	armed     []TimeoutID // every ID handed to the timer function
}

type harnessOption func(*harnessSetup)

type harnessSetup struct {
	cfg       Config
	ringCap   int
	ringBytes int
	spill     *fakeSpill
	rnd       Rand
	batch     bool
	transport *fakeTransport
	clock     *fakeClock
	metrics   *Metrics
	inbox     *Inbox
	prober    bool
}

func withSpill(s *fakeSpill) harnessOption { return func(h *harnessSetup) { h.spill = s } }
func withRingCap(n int) harnessOption      { return func(h *harnessSetup) { h.ringCap = n } }
func withRingBytes(n int) harnessOption    { return func(h *harnessSetup) { h.ringBytes = n } }
func withConfig(c Config) harnessOption    { return func(h *harnessSetup) { h.cfg = c } }
func withMetrics(m *Metrics) harnessOption { return func(h *harnessSetup) { h.metrics = m } }
func withBatch() harnessOption             { return func(h *harnessSetup) { h.batch = true } }
func withRand(r Rand) harnessOption        { return func(h *harnessSetup) { h.rnd = r } }
func withClock(c *fakeClock) harnessOption { return func(h *harnessSetup) { h.clock = c } }
func withInbox(in *Inbox) harnessOption    { return func(h *harnessSetup) { h.inbox = in } }
func withProber() harnessOption            { return func(h *harnessSetup) { h.prober = true } }
func withTransport(t *fakeTransport) harnessOption {
	return func(h *harnessSetup) { h.transport = t }
}

// testConfig is small and fast: 100 ms base, 1.6 s cap, 4 pending,
// 50 ms flush, 30 ms drain pace, 2 per flush.
func testConfig() Config {
	return Config{
		BaseBackoff:     100 * time.Millisecond,
		MaxBackoff:      1600 * time.Millisecond,
		MaxPending:      4,
		FlushInterval:   50 * time.Millisecond,
		DrainInterval:   30 * time.Millisecond,
		DrainBatch:      2,
		ConnectTimeout:  time.Second,
		DeliverTimeout:  time.Second,
		DropLogInterval: time.Second,
	}
}

func newHarness(t fatalfer, opts ...harnessOption) *harness {
	t.Helper()
	setup := harnessSetup{cfg: testConfig(), ringCap: 16, rnd: fixedRand{frac: 0.5}}
	for _, o := range opts {
		o(&setup)
	}
	if setup.transport == nil {
		setup.transport = &fakeTransport{up: true}
	}
	if setup.clock == nil {
		setup.clock = newFakeClock()
	}
	h := &harness{
		t:         t,
		clock:     setup.clock,
		transport: setup.transport,
		ring:      &fakeRing{limit: setup.ringCap, byteLimit: setup.ringBytes},
		spill:     setup.spill,
		cfg:       setup.cfg,
	}
	var transport Transport = h.transport
	if setup.batch {
		transport = &fakeBatchTransport{fakeTransport: h.transport}
	}
	if setup.prober {
		transport = fakeProber{h.transport}
	}
	var spill Spill
	if h.spill != nil {
		spill = h.spill
	}
	m, err := NewManager(ManagerOptions{
		Config:    setup.cfg,
		Transport: transport,
		Ring:      h.ring,
		Spill:     spill,
		Clock:     h.clock,
		Rand:      setup.rnd,
		Metrics:   setup.metrics,
		Inbox:     setup.inbox,
		Timers: func(after time.Duration, id TimeoutID) func() bool {
			h.armed = append(h.armed, id)
			timer := h.clock.AfterFunc(after, func() { h.manager.Fire(id) })
			return timer.Stop
		},
	})
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	h.manager = m
	return h
}

// settle fires the timers due now (e.g. Connecting's zero-delay attempt).
func (h *harness) settle() { h.clock.Advance(0) }

func (h *harness) cast(e EventType) { h.manager.Cast(ManagerEvent{Type: e}) }

func (h *harness) deliver(rec string) { h.manager.Deliver([]byte(rec)) }

func (h *harness) mustState(want State) {
	h.t.Helper()
	if got := h.manager.State(); got != want {
		h.t.Fatalf("state = %v, want %v", got, want)
	}
}

func (h *harness) sinkStrings() []string {
	out := make([]string, len(h.transport.sink))
	for i, b := range h.transport.sink {
		out[i] = string(b)
	}
	return out
}

func (h *harness) ringStrings() []string {
	out := make([]string, len(h.ring.recs))
	for i, b := range h.ring.recs {
		out[i] = string(b)
	}
	return out
}

func (h *harness) spillStrings() []string {
	if h.spill == nil {
		return nil
	}
	out := make([]string, len(h.spill.recs))
	for i, r := range h.spill.recs {
		out[i] = string(r.Data)
	}
	return out
}

func recs(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// fakeSink is a goroutine-safe transport for the actor tests.
type fakeSink struct {
	mu        sync.Mutex
	up        bool
	sink      [][]byte
	connects  int
	delivered chan struct{} // one token per delivered record, never blocks
}

func newFakeSink() *fakeSink {
	return &fakeSink{up: true, delivered: make(chan struct{}, 1<<16)}
}

func (s *fakeSink) setUp(up bool) {
	s.mu.Lock()
	s.up = up
	s.mu.Unlock()
}

func (s *fakeSink) Connect(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.connects++
	if !s.up {
		return errDown
	}
	return ctx.Err()
}

func (s *fakeSink) Deliver(ctx context.Context, rec []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.up {
		return errDown
	}
	s.sink = append(s.sink, rec)
	select {
	case s.delivered <- struct{}{}:
	default:
	}
	return ctx.Err()
}

func (s *fakeSink) snapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.sink))
	for i, b := range s.sink {
		out[i] = string(b)
	}
	return out
}

// ackedOf and unackedOf reach a manager's discipline, for tests that look
// inside or swap its transport.
func ackedOf(m *Manager) *ackedData     { return m.data.mode.(*ackedMode).acked }
func unackedOf(m *Manager) *unackedMode { return m.data.mode.(*unackedMode) }
