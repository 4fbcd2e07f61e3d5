package node

// Misbehaving peers against a real Ergo node: a fake Brain (our own acceptHandshake on a TCP
// listener) and silent listeners that accept and never answer.

import (
	"context"
	"crypto/rand"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"ergo.services/ergo/act"
	"ergo.services/ergo/gen"
	"github.com/stretchr/testify/require"
)

const robustCookie = "robust"

// silentListener accepts connections and never answers; it returns the port.
func silentListener(t *testing.T) uint16 {
	t.Helper()
	addr := fakePeer(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	return uint16(addr.(*net.TCPAddr).Port)
}

// fakePeer accepts connections and hands each to serve in its own goroutine; all end with the
// test.
func fakePeer(t *testing.T, serve func(c net.Conn)) net.Addr {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); serve(c) }()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr()
}

// fakeBrain is an Erlang node played by the test: it accepts one connection, runs the
// handshake, and then sends what the test tells it; frames from the Go node arrive on frames.
type fakeBrain struct {
	port   uint16
	conn   chan net.Conn
	frames chan []byte
}

func startFakeBrain(t *testing.T, name string) *fakeBrain {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := &fakeBrain{port: uint16(l.Addr().(*net.TCPAddr).Port), conn: make(chan net.Conn, 1), frames: make(chan []byte, 1024)}
	var wg sync.WaitGroup
	var accepted net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := l.Accept()
		if err != nil {
			return
		}
		accepted = c
		p := handshakeParams{name: name, creation: 7, flags: DefaultFlags, require: Mandatory,
			cookie: robustCookie, lenSize: 2, timeout: 5 * time.Second, rand: rand.Reader}
		if _, err := acceptHandshake(c, p); err != nil {
			t.Errorf("fake brain handshake: %v", err)
			c.Close()
			return
		}
		b.conn <- c
		fr := &frameReader{r: c, limit: 1 << 20}
		for {
			f, err := fr.next()
			if err != nil {
				return
			}
			if len(f) > 0 {
				select {
				case b.frames <- append([]byte(nil), f...):
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		l.Close()
		if accepted != nil {
			accepted.Close()
		}
		wg.Wait()
	})
	return b
}

// sinkActor reports what it gets on out; a robustCall makes it call, and report the result.
type sinkActor struct {
	act.Actor
	out chan any
}

type robustCall struct {
	to      gen.ProcessID
	timeout int
}

type robustCallResult struct {
	err  error
	took time.Duration
}

func (a *sinkActor) Init(args ...any) error {
	a.out = args[0].(chan any)
	return nil
}

func (a *sinkActor) HandleMessage(from gen.PID, message any) error {
	if c, ok := message.(robustCall); ok {
		start := time.Now()
		_, err := a.CallWithTimeout(c.to, "request", c.timeout)
		a.out <- robustCallResult{err: err, took: time.Since(start)}
		return nil
	}
	a.out <- message
	return nil
}

// startRobustNode starts a Go node with static routes to the fake Brain and to other@127.0.0.1
// (a silent listener), connects it to the Brain and spawns "sink".
func startRobustNode(t *testing.T) (*Node, *Conn, net.Conn, *fakeBrain, chan any) {
	t.Helper()
	brain := startFakeBrain(t, "brain@127.0.0.1")
	n, err := Start("pharos_robust@127.0.0.1", Options{
		Cookie: robustCookie,
		Static: map[gen.Atom]StaticRoute{
			"brain@127.0.0.1": {Host: "127.0.0.1", Port: brain.port},
			"other@127.0.0.1": {Host: "127.0.0.1", Port: silentListener(t)},
		},
		HandshakeTimeout: 2 * time.Second,
		Log:              gen.LogOptions{Level: gen.LogLevelError},
	})
	require.NoError(t, err)
	t.Cleanup(n.StopForce)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := n.Connect(ctx, "brain@127.0.0.1")
	require.NoError(t, err)
	var bc net.Conn
	select {
	case bc = <-brain.conn:
	case <-time.After(2 * time.Second):
		t.Fatal("the fake brain has no connection")
	}
	out := make(chan any, 16)
	_, err = n.SpawnRegister("sink", func() gen.ProcessBehavior { return &sinkActor{} }, gen.ProcessOptions{}, out)
	require.NoError(t, err)
	return n, c, bc, brain, out
}

// A peer sends a message addressed to a pid of a third node (Erlang never does; a misbehaving
// or confused peer may). The reader hands it to gen.Core, which treats it as a remote send: it
// dials the third node from the reading goroutine, and every frame behind waits for the dial and
// handshake (here a silent listener: the whole handshake timeout).
func TestReaderDoesNotDialForeignDestinations(t *testing.T) {
	_, _, bc, _, out := startRobustNode(t)
	foreign := gen.PID{Node: "other@127.0.0.1", ID: 5, Creation: 1}
	from := gen.PID{Node: "brain@127.0.0.1", ID: 9, Creation: 7}
	bc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := bc.Write(appendFrame(nil, SendSender{From: from, To: foreign}, []byte{131, 97, 1}))
	require.NoError(t, err)
	start := time.Now()
	_, err = bc.Write(appendFrame(nil, RegSend{From: from, To: "sink"}, []byte{131, 97, 2}))
	require.NoError(t, err)
	select {
	case m := <-out:
		require.EqualValues(t, 2, m)
		require.Less(t, time.Since(start), time.Second, "the reader waited behind a dial of another node")
	case <-time.After(5 * time.Second):
		t.Fatal("nothing delivered")
	}
}

// A gen_server call through Ergo whose connection ends before the reply: the caller should learn
// it at once, not after its whole timeout.
func TestCallFailsWhenTheConnectionEnds(t *testing.T) {
	n, c, bc, brain, out := startRobustNode(t)
	require.NoError(t, n.Send(gen.Atom("sink"), robustCall{to: gen.ProcessID{Name: "rex", Node: "brain@127.0.0.1"}, timeout: 5}))
	select {
	case <-brain.frames: // the $gen_call
	case <-time.After(2 * time.Second):
		t.Fatal("no call arrived")
	}
	bc.Close() // the Brain's node goes away
	<-c.Done()
	select {
	case r := <-out:
		res := r.(robustCallResult)
		require.Error(t, res.err)
		require.Less(t, res.took, 2*time.Second, "the call waited for its timeout: %v", res.err)
	case <-time.After(7 * time.Second):
		t.Fatal("the call never returned")
	}
}
