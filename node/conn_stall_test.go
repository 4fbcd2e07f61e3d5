package node

// Misbehaving peers that must not make the connection hang, leak goroutines or block unrelated
// work.

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"ergo.services/ergo/gen"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pharos-node/pharos-node/etf"
)

// tickEvery makes the fake peer tick until the test ends (writes that cannot go through are
// abandoned after a second: the peer only wants to look alive).
func (p *peer) tickEvery(t *testing.T, d time.Duration) {
	stop := make(chan struct{})
	done := make(chan struct{})
	t.Cleanup(func() { close(stop); <-done })
	go func() {
		defer close(done)
		tk := time.NewTicker(d)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				p.conn.SetWriteDeadline(time.Now().Add(time.Second))
				p.conn.Write([]byte{0, 0, 0, 0})
			}
		}
	}()
}

// fillBuffer makes the peer stop reading and fills the Conn's buffer until a fast-path send
// finds no room: that send gives up when its context ends (and not later), sending nothing.
func fillBuffer(t *testing.T, c *Conn, p *peer) {
	t.Helper()
	p.conn.SetReadDeadline(time.Now().Add(-time.Second)) // the peer reads nothing more
	fillUntilFull(t, c)
}

// fillUntilFull sends to c, whose peer reads nothing, until a fast-path send finds no room.
func fillUntilFull(t *testing.T, c *Conn) {
	t.Helper()
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		start := time.Now()
		err = c.SendBinary(ctx, local, "pharos_brain", []byte("0123456789"))
		cancel()
		if err != nil {
			assert.Less(t, time.Since(start), time.Second, "the send waited for its context only")
		}
	}
	require.ErrorIs(t, err, ErrSendBufferFull)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

// requireDropped waits for the Conn to end on its own with want, and for the send that was
// waiting for room (its result on released) to be released with ErrConnectionClosed.
func requireDropped(t *testing.T, c *Conn, served chan error, released <-chan error, want error) {
	t.Helper()
	select {
	case err := <-served:
		served <- err // for startConn's cleanup
	case <-time.After(3 * time.Second):
		t.Fatalf("the peer was not dropped (ticks in: %d, err %v), want %v", c.Stats().TicksIn, c.Err(), want)
	}
	require.ErrorIs(t, c.Err(), want)
	select {
	case err := <-released:
		require.ErrorIs(t, err, ErrConnectionClosed)
	case <-time.After(2 * time.Second):
		t.Fatal("a send waiting for room was not released when the connection ended")
	}
}

// A peer that keeps ticking but never reads what we write: the writer is stuck in a socket write
// and every Ergo send (they wait for room without a deadline) waits with it. Nothing was
// written for the tick time: the peer must be dropped, and the waiting senders released.
func TestConnDropsAPeerThatTicksButNeverReads(t *testing.T) {
	c, p, _, served := startConn(t, func(o *connOptions) {
		o.highWater = 64
		o.tickTime = 400 * time.Millisecond
	})
	p.tickEvery(t, 50*time.Millisecond)
	fillBuffer(t, c, p)
	released := make(chan error, 1)
	go func() {
		released <- c.SendProcessID(local, gen.ProcessID{Name: "x"}, gen.MessageOptions{}, []byte("an Ergo send"))
	}()
	requireDropped(t, c, served, released, ErrPeerNotReading)
}

// A net_adm:ping (is_auth to net_kernel) arriving while our buffer is full: the reader answers
// it, and must not wait for room to do so, or it stops reading everything behind it.
func TestConnReaderDoesNotWaitForRoomToAnswerIsAuth(t *testing.T) {
	core := &noNetKernelCore{fakeCore: newFakeCore()}
	c, p, _, _ := startConnWithCore(t, core, func(o *connOptions) {
		o.highWater = 64
		o.tickTime = 3 * time.Second
	})
	fillBuffer(t, c, p)
	isAuth := appendTupleHeader([]byte{etf.TagVersion}, 3)
	isAuth = appendAtom(isAuth, "$gen_call")
	isAuth = appendTupleHeader(isAuth, 2)
	isAuth = appendPid(isAuth, remote)
	isAuth = appendRef(isAuth, gen.Ref{Node: "brain@h", Creation: 3, ID: [3]uint64{9, 0, 0}})
	isAuth = appendTupleHeader(isAuth, 2)
	isAuth = appendAtom(isAuth, "is_auth")
	isAuth = appendAtom(isAuth, "brain@h")
	go func() {
		p.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		p.conn.Write(appendFrame(nil, RegSend{From: remote, To: "net_kernel"}, isAuth))
		p.conn.Write(appendFrame(nil, RegSend{From: remote, To: "sink"}, []byte{131, 97, 1}))
	}()
	select {
	case s := <-core.routed:
		require.Equal(t, "regsend 'sink'", s)
	case <-time.After(time.Second):
		t.Fatalf("the reader stopped after the is_auth (answered %d)", core.isAuth.Load())
	}
}

// noNetKernelCore has no net_kernel process, as a real node: the Conn answers is_auth itself.
type noNetKernelCore struct {
	*fakeCore
	isAuth atomic.Int64
}

func (f *noNetKernelCore) RouteSendProcessID(from gen.PID, to gen.ProcessID, o gen.MessageOptions, m any) error {
	if to.Name == "net_kernel" {
		f.isAuth.Add(1)
		return gen.ErrProcessUnknown
	}
	return f.fakeCore.RouteSendProcessID(from, to, o, m)
}
