package fsm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ergo.services/ergo"
	"ergo.services/ergo/act"
	"ergo.services/ergo/gen"
	"github.com/rs/zerolog"
)

// startNode starts an Ergo node with no network and Ergo's own metrics
// reporting off, stopped at the end of the test.
func startNode(t *testing.T) gen.Node {
	t.Helper()
	name := gen.Atom(fmt.Sprintf("fsm_%s@localhost", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "_"))))
	node, err := ergo.StartNode(name, gen.NodeOptions{
		Network: gen.NetworkOptions{Mode: gen.NetworkModeDisabled},
		Env:     map[gen.Env]any{"disable_metrics": true},
		Log:     gen.LogOptions{DefaultLogger: gen.DefaultLoggerOptions{Disable: true}},
	})
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() {
		node.Stop()
		node.Wait()
	})
	return node
}

func testLogger(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
}

func actorConfig() Config {
	return Config{
		BaseBackoff:     5 * time.Millisecond,
		MaxBackoff:      40 * time.Millisecond,
		MaxPending:      100,
		FlushInterval:   10 * time.Millisecond,
		DrainInterval:   5 * time.Millisecond,
		DrainBatch:      50,
		ConnectTimeout:  time.Second,
		DeliverTimeout:  time.Second,
		DropLogInterval: time.Second,
	}
}

// lockedRing makes the fake ring safe for the test goroutine to inspect
// while the actor uses it.
type lockedRing struct {
	mu sync.Mutex
	r  *fakeRing
}

func (l *lockedRing) Push(rec []byte) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Push(rec)
}
func (l *lockedRing) PutBackFront(recs [][]byte) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.PutBackFront(recs)
}
func (l *lockedRing) DrainUpTo(n int) [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.DrainUpTo(n)
}
func (l *lockedRing) Len() int      { l.mu.Lock(); defer l.mu.Unlock(); return l.r.Len() }
func (l *lockedRing) Bytes() int    { l.mu.Lock(); defer l.mu.Unlock(); return l.r.Bytes() }
func (l *lockedRing) Cap() int      { return l.r.Cap() }
func (l *lockedRing) CapBytes() int { return l.r.CapBytes() }

// testSupervisor is a one-for-one supervisor of the single spec it is given.
type testSupervisor struct{ act.Supervisor }

func (s *testSupervisor) Init(args ...any) (act.SupervisorSpec, error) {
	return act.SupervisorSpec{
		Type:     act.SupervisorTypeOneForOne,
		Children: []act.SupervisorChildSpec{args[0].(act.SupervisorChildSpec)},
		Restart:  act.SupervisorRestart{Strategy: act.SupervisorStrategyTransient, Intensity: 10, Period: 5},
	}, nil
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// pidRecorder wraps a transport and remembers the PID of each incarnation.
type pidRecorder struct {
	mu   sync.Mutex
	pids []gen.PID
}

func (r *pidRecorder) wrap(t Transport) func(gen.Process) (Transport, error) {
	return func(p gen.Process) (Transport, error) {
		r.mu.Lock()
		r.pids = append(r.pids, p.PID())
		r.mu.Unlock()
		return t, nil
	}
}

func (r *pidRecorder) last() (gen.PID, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pids[len(r.pids)-1], len(r.pids)
}

func startSupervised(t *testing.T, node gen.Node, opts ActorOptions, procOpts gen.ProcessOptions) Handle {
	t.Helper()
	spec, err := ChildSpec("pharos_conn", opts, procOpts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.Spawn(func() gen.ProcessBehavior { return &testSupervisor{} }, gen.ProcessOptions{}, spec); err != nil {
		t.Fatalf("spawn supervisor: %v", err)
	}
	return NewInboxHandle(node, "pharos_conn", opts.Inbox)
}

// newInbox is an Inbox for an actor test.
func newInbox(t *testing.T, limit int) *Inbox {
	t.Helper()
	inbox, err := NewInbox(limit)
	if err != nil {
		t.Fatal(err)
	}
	return inbox
}

// TestActorDeliversFromManyGoroutines: Deliver and DeliverMany from several
// goroutines at once; every record arrives, each goroutine's in its order.
func TestActorDeliversFromManyGoroutines(t *testing.T) {
	inbox := newInbox(t, 10_000)
	node := startNode(t)
	sink := newFakeSink()
	h := startSupervised(t, node, ActorOptions{
		Config: actorConfig(), NewTransport: StaticTransport(sink),
		Ring: &lockedRing{r: newFakeRing(1000)}, Logger: testLogger(t), Inbox: inbox,
	}, gen.ProcessOptions{})
	const goroutines, each = 4, 250
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if g%2 == 1 {
				for i := 0; i < each; i += 25 {
					var recs [][]byte
					for k := range 25 {
						recs = append(recs, fmt.Appendf(nil, "g%d-%04d", g, i+k))
					}
					if n, err := h.DeliverMany(recs); n != len(recs) || err != nil {
						t.Errorf("deliver many: %d of %d, %v", n, len(recs), err)
						return
					}
				}
				return
			}
			for i := range each {
				if err := h.Deliver(fmt.Appendf(nil, "g%d-%04d", g, i)); err != nil {
					t.Errorf("deliver: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	eventually(t, "all records", func() bool { return len(sink.snapshot()) == goroutines*each })
	// An empty record stops DeliverMany there: the ones before it are accepted.
	if n, err := h.DeliverMany([][]byte{[]byte("x0"), nil, []byte("x2")}); n != 1 || !errors.Is(err, ErrEmptyRecord) {
		t.Fatalf("DeliverMany with an empty record: %d, %v; want 1, ErrEmptyRecord", n, err)
	}
	eventually(t, "the record before the empty one", func() bool { return len(sink.snapshot()) == goroutines*each+1 })
	if got := sink.snapshot(); got[len(got)-1] != "x0" {
		t.Fatalf("last record %q, want x0", got[len(got)-1])
	}
	got := sink.snapshot()
	for g := range goroutines {
		var mine []string
		for _, r := range got {
			if strings.HasPrefix(r, fmt.Sprintf("g%d-", g)) {
				mine = append(mine, r)
			}
		}
		if !slices.IsSorted(mine) || len(mine) != each {
			t.Fatalf("goroutine %d: %d records, sorted %v", g, len(mine), slices.IsSorted(mine))
		}
	}
	if err := h.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h.Deliver([]byte("late")); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("deliver after stop: %v, want ErrNotRunning", err)
	}
	if err := h.Deliver(nil); !errors.Is(err, ErrEmptyRecord) {
		t.Fatalf("empty record: %v", err)
	}
	if n, err := h.DeliverMany([][]byte{[]byte("late")}); n != 0 || !errors.Is(err, ErrNotRunning) {
		t.Fatalf("deliver many after stop: %d, %v, want ErrNotRunning", n, err)
	}
}

// TestActorOutageAndRestart: records delivered while the sink is down wait
// in the ring; a crash of the manager loses nothing (the ring outlives the
// process) and the handle keeps working across the restart.
func TestActorOutageAndRestart(t *testing.T) {
	inbox := newInbox(t, 10_000)
	node := startNode(t)
	sink := newFakeSink()
	pids := &pidRecorder{}
	ring := &lockedRing{r: newFakeRing(1000)}
	h := startSupervised(t, node, ActorOptions{
		Config: actorConfig(), NewTransport: pids.wrap(sink), Ring: ring, Logger: testLogger(t), Inbox: inbox,
	}, gen.ProcessOptions{})
	eventually(t, "first connection", func() bool { sink.mu.Lock(); defer sink.mu.Unlock(); return sink.connects > 0 })

	sink.setUp(false)
	want := recs("r", 60)
	for _, r := range want[:30] {
		if err := h.Deliver([]byte(r)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "records buffered", func() bool { return ring.Len() == 30 })

	first, _ := pids.last()
	if err := node.Kill(first); err != nil { // a crash: exit signals from others than the parent are ignored
		t.Fatal(err)
	}
	eventually(t, "restart", func() bool { _, n := pids.last(); return n == 2 })
	for _, r := range want[30:] {
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
	sink.setUp(true)
	eventually(t, "backlog delivered", func() bool { return len(sink.snapshot()) == len(want) })
	if got := sink.snapshot(); !slices.Equal(got, want) {
		t.Fatalf("sink = %v", got)
	}
}

// blockingSink blocks Connect until released, to fill the mailbox.
type blockingSink struct {
	*fakeSink
	release chan struct{}
	entered chan struct{}
	once    sync.Once
}

func (b *blockingSink) Connect(ctx context.Context) error {
	b.once.Do(func() { close(b.entered) })
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return b.fakeSink.Connect(ctx)
}

// TestActorDeliverNeverBlocks: with the manager stuck in a connection
// attempt and a bounded inbox, Deliver returns ErrMailboxFull at once.
func TestActorDeliverNeverBlocks(t *testing.T) {
	inbox := newInbox(t, 8)
	node := startNode(t)
	sink := &blockingSink{fakeSink: newFakeSink(), release: make(chan struct{}), entered: make(chan struct{})}
	h, err := Spawn(node, "pharos_conn", ActorOptions{
		Config: actorConfig(), NewTransport: StaticTransport(sink),
		Ring: &lockedRing{r: newFakeRing(1000)}, Logger: testLogger(t), Inbox: inbox,
	}, gen.ProcessOptions{MailboxSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	<-sink.entered
	accepted := 0
	start := time.Now()
	for {
		err := h.Deliver([]byte(fmt.Sprintf("r%d", accepted)))
		if errors.Is(err, ErrMailboxFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		accepted++
		if accepted > 100 {
			t.Fatal("mailbox bound not enforced")
		}
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Deliver blocked for %v", took)
	}
	close(sink.release)
	eventually(t, "accepted records", func() bool { return len(sink.snapshot()) == accepted })
	if got := sink.snapshot(); !slices.Equal(got, recs("r", accepted)) {
		t.Fatalf("sink = %v", got)
	}
	if err := h.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// brainActor stands for the Brain's registered process.
type brainActor struct{ act.Actor }

// monitoringTransport connects by monitoring a registered process, the way
// the Brain transport over node/ will: its DOWN reaches the manager as a
// lost connection.
type monitoringTransport struct {
	p        gen.Process
	target   gen.ProcessID
	sink     *fakeSink
	connects atomic.Int64
}

func (m *monitoringTransport) Connect(ctx context.Context) error {
	m.connects.Add(1)
	// Ergo keeps a monitor in the process's target set after its DOWN, and
	// DemonitorProcessID only clears it once the name is registered again;
	// so always demonitor first (an error just means nothing to clear, or
	// the Brain is still away, which the Monitor call then reports).
	_ = m.p.DemonitorProcessID(m.target)
	if err := m.p.MonitorProcessID(m.target); err != nil {
		return fmt.Errorf("monitor %s: %w", m.target, err)
	}
	return m.sink.Connect(ctx)
}

func (m *monitoringTransport) Deliver(ctx context.Context, rec []byte) error {
	return m.sink.Deliver(ctx, rec)
}

// TestActorBrainDownIsALostConnection: the monitored process going away
// sends the manager to Disconnected (it retries at once, without waiting
// for a failed delivery), and it reconnects when the process is back.
func TestActorBrainDownIsALostConnection(t *testing.T) {
	node := startNode(t)
	spawnBrain := func() gen.PID {
		pid, err := node.SpawnRegister("brain", func() gen.ProcessBehavior { return &brainActor{} }, gen.ProcessOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return pid
	}
	brain := spawnBrain()
	sink := newFakeSink()
	transport := &monitoringTransport{target: gen.ProcessID{Name: "brain", Node: node.Name()}, sink: sink}
	h, err := Spawn(node, "pharos_conn", ActorOptions{
		Config: actorConfig(),
		NewTransport: func(p gen.Process) (Transport, error) {
			transport.p = p
			return transport, nil
		},
		Ring: &lockedRing{r: newFakeRing(1000)}, Logger: testLogger(t), Inbox: newInbox(t, 1000),
	}, gen.ProcessOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Deliver([]byte("before")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "first record", func() bool { return len(sink.snapshot()) == 1 })
	connects := transport.connects.Load()
	if err := node.SendExit(brain, errors.New("brain crashed")); err != nil {
		t.Fatal(err)
	}
	// No delivery needed: the DOWN alone makes the manager reconnect, and
	// the attempts fail while the Brain is away.
	eventually(t, "reconnect attempts", func() bool { return transport.connects.Load() > connects+1 })
	spawnBrain()
	if err := h.Deliver([]byte("after")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "record after restart", func() bool { return len(sink.snapshot()) == 2 })
	if err := h.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestActorOptionsValidation(t *testing.T) {
	var ce *ConfigError
	_, err := ChildSpec("x", ActorOptions{Config: actorConfig(), Ring: newFakeRing(1000)}, gen.ProcessOptions{})
	if !errors.As(err, &ce) || ce.Field != "NewTransport" {
		t.Fatalf("err = %v", err)
	}
	_, err = ChildSpec("x", ActorOptions{Config: actorConfig(), NewTransport: StaticTransport(newFakeSink())}, gen.ProcessOptions{})
	if !errors.As(err, &ce) || ce.Field != "Ring" {
		t.Fatalf("err = %v", err)
	}
	bad := actorConfig()
	bad.FlushInterval = 0
	_, err = ChildSpec("x", ActorOptions{Config: bad, NewTransport: StaticTransport(newFakeSink()), Ring: newFakeRing(1000)}, gen.ProcessOptions{})
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("err = %v", err)
	}
	if err := (Handle{}).Deliver([]byte("x")); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("zero handle: %v", err)
	}
	_, err = ChildSpec("x", ActorOptions{Config: actorConfig(), NewTransport: StaticTransport(newFakeSink()), Ring: newFakeRing(1000)}, gen.ProcessOptions{})
	if !errors.As(err, &ce) || ce.Field != "Inbox" {
		t.Fatalf("no inbox: %v", err)
	}
	if err := NewHandle(startNode(t), "x").Deliver([]byte("x")); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("deliver through a handle without an inbox: %v", err)
	}
}

// TestMachineActorRunsAPlainMachine: the generic adapter runs a bare
// Machine; its state timeout travels through the mailbox.
func TestMachineActorRunsAPlainMachine(t *testing.T) {
	node := startNode(t)
	states := make(chan door, 16)
	terminated := make(chan error, 1)
	spec := MachineActorSpec[doorEvent]{
		New: func(p gen.Process, timers TimerFunc) (Runnable[doorEvent], error) {
			return NewMachine(MachineSpec[door, *doorData, doorEvent]{
				Initial: closed,
				Data:    &doorData{},
				Handle: func(s door, ev Event[doorEvent], _ *doorData) Result[door, doorEvent] {
					if ev.Kind == EventStateTimeout {
						return NextState[door, doorEvent](closed)
					}
					return NextState(open, SetStateTimeout(5*time.Millisecond, doorEvent("close")))
				},
				Enter: func(_, to door, _ *doorData) []Action[doorEvent] {
					states <- to
					return nil
				},
				Timers: timers,
			})
		},
		Translate: func(message any) (doorEvent, bool) {
			s, ok := message.(string)
			return doorEvent(s), ok
		},
		OnTerminate: func(_ Runnable[doorEvent], reason error) { terminated <- reason },
	}
	if _, err := node.SpawnRegister("door", spec.Factory(), gen.ProcessOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := <-states; got != closed { // Start's enter call
		t.Fatalf("initial %v", got)
	}
	if err := node.Send(gen.Atom("door"), "push"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []door{open, closed} {
		select {
		case got := <-states:
			if got != want {
				t.Fatalf("state %v, want %v", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("timed out waiting for %v", want)
		}
	}
	if err := NewHandle(node, "door").Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if reason := <-terminated; !errors.Is(reason, gen.TerminateReasonNormal) {
		t.Fatalf("terminated with %v", reason)
	}
}
