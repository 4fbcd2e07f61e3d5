package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"ergo.services/ergo/gen"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pharos-node/pharos-node/etf"
)

// fakeCore records what a Conn routes to the node. Methods a test does not expect panic
// (through the nil embedded interface).
type fakeCore struct {
	gen.Core
	name   gen.Atom
	refs   atomic.Uint64
	routed chan string
	values chan any
}

func newFakeCore() *fakeCore {
	return &fakeCore{name: "pharos@h", routed: make(chan string, 256), values: make(chan any, 256)}
}

func (f *fakeCore) record(format string, args ...any) { f.routed <- fmt.Sprintf(format, args...) }
func (f *fakeCore) Name() gen.Atom                    { return f.name }
func (f *fakeCore) PID() gen.PID                      { return gen.PID{Node: f.name, ID: 1, Creation: 1} }
func (f *fakeCore) Creation() int64                   { return 1 }
func (f *fakeCore) MakeRef() gen.Ref {
	return gen.Ref{Node: f.name, Creation: 1, ID: [3]uint64{f.refs.Add(1), 0, 0}}
}
func (f *fakeCore) RouteSendPID(from, to gen.PID, _ gen.MessageOptions, m any) error {
	f.values <- m
	f.record("send %d", to.ID)
	return nil
}
func (f *fakeCore) RouteSendProcessID(from gen.PID, to gen.ProcessID, _ gen.MessageOptions, m any) error {
	f.values <- m
	f.record("regsend %s", to.Name)
	return nil
}
func (f *fakeCore) RouteLinkPID(pid, target gen.PID) error {
	f.record("link %d->%d", pid.ID, target.ID)
	return nil
}
func (f *fakeCore) RouteUnlinkPID(pid, target gen.PID) error {
	f.record("unlink %d->%d", pid.ID, target.ID)
	return nil
}
func (f *fakeCore) RouteTerminateProcessID(target gen.ProcessID, reason error) error {
	f.record("down %s %v", target.Name, reason)
	return nil
}
func (f *fakeCore) RouteSendResponse(from, to gen.PID, o gen.MessageOptions, m any) error {
	f.values <- m
	f.record("response %d", o.Ref.ID[0])
	return nil
}

func (f *fakeCore) RouteSendResponseError(from, to gen.PID, o gen.MessageOptions, err error) error {
	f.record("response error %d %v", o.Ref.ID[0], err)
	return nil
}

type testLog struct {
	gen.Log
	t *testing.T
}

func (l testLog) Warning(format string, args ...any) { l.t.Logf("warning: "+format, args...) }
func (l testLog) Debug(format string, args ...any)   { l.t.Logf("debug: "+format, args...) }

// peer is the fake BEAM end of a Conn under test.
type peer struct {
	t      *testing.T
	conn   net.Conn
	frames chan []byte
}

func (p *peer) send(frame []byte) {
	p.t.Helper()
	p.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
	_, err := p.conn.Write(frame)
	require.NoError(p.t, err)
}

func (p *peer) sendControl(c Control, msg []byte) { p.send(appendFrame(nil, c, msg)) }

// next returns the next non-tick frame body (after 'p').
func (p *peer) next() []byte {
	p.t.Helper()
	for {
		select {
		case f, ok := <-p.frames:
			require.True(p.t, ok, "connection closed")
			if len(f) > 0 {
				require.Equal(p.t, byte(passThrough), f[0])
				return f[1:]
			}
		case <-time.After(2 * time.Second):
			p.t.Fatal("no frame from the Conn")
		}
	}
}

func (p *peer) nextControl() (Control, []byte) {
	p.t.Helper()
	c, msg, err := decodeControl(p.next())
	require.NoError(p.t, err)
	return c, msg
}

type connOpt func(*connOptions)

// startConn runs a Conn against a fake peer; everything stops in t.Cleanup.
func startConn(t *testing.T, opts ...connOpt) (*Conn, *peer, *fakeCore, chan error) {
	t.Helper()
	core := newFakeCore()
	c, p, _, served := startConnWithCore(t, core, opts...)
	return c, p, core, served
}

// startConnWithCore is startConn with the caller's gen.Core.
func startConnWithCore(t *testing.T, core gen.Core, opts ...connOpt) (*Conn, *peer, gen.Core, chan error) {
	t.Helper()
	co := NewProto(ProtoOptions{TickTime: 2 * time.Second}).opts
	for _, o := range opts {
		o(&co)
	}
	a, b := net.Pipe()
	c := newConn(core, testLog{t: t}, a, peerInfo{name: "brain@h", flags: DefaultFlags, creation: 3}, co)
	served := make(chan error, 1)
	go func() { served <- c.serve() }()
	p := &peer{t: t, conn: b, frames: make(chan []byte, 1024)}
	go func() {
		defer close(p.frames)
		fr := &frameReader{r: b, limit: 1 << 20}
		for {
			f, err := fr.next()
			if err != nil {
				return
			}
			p.frames <- append([]byte(nil), f...)
		}
	}()
	t.Cleanup(func() {
		c.Terminate(nil)
		b.Close()
		select {
		case <-served:
		case <-time.After(5 * time.Second):
			t.Error("serve did not return")
		}
	})
	return c, p, core, served
}

func routed(t *testing.T, core *fakeCore) string {
	t.Helper()
	select {
	case s := <-core.routed:
		return s
	case <-time.After(2 * time.Second):
		t.Fatal("nothing routed")
		return ""
	}
}

var (
	local  = gen.PID{Node: "pharos@h", ID: 1001, Creation: 1}
	remote = gen.PID{Node: "brain@h", ID: 77, Creation: 3}
)

func TestConnIgnoresUnknownAndMalformedControlMessages(t *testing.T) {
	c, p, core, _ := startConn(t)
	p.sendControl(Unknown{Code: 99}, nil)                              // unknown op
	p.send([]byte{0, 0, 0, 3, 'p', 131, 200})                          // unreadable control
	p.send([]byte{0, 0, 0, 2, 'D', 0})                                 // a distribution header we did not negotiate
	p.sendControl(RegSend{From: remote, To: "sink"}, []byte{131, 201}) // unreadable message
	msg, err := etf.Marshal(etf.Tuple{etf.Atom("hello"), []byte("x")})
	require.NoError(t, err)
	p.sendControl(RegSend{From: remote, To: "sink"}, msg)
	assert.Equal(t, "regsend 'sink'", routed(t, core))
	assert.Equal(t, etf.Tuple{gen.Atom("hello"), []byte("x")}, <-core.values)
	assert.Equal(t, uint64(4), c.Stats().Ignored)
	assert.NoError(t, c.Err(), "still up")
}

func TestConnAnswersUnlinkIDWithAck(t *testing.T) {
	_, p, core, _ := startConn(t)
	p.sendControl(Link{From: remote, To: local}, nil)
	assert.Equal(t, "link 77->1001", routed(t, core))
	p.sendControl(UnlinkID{ID: 7, From: remote, To: local}, nil)
	ack, _ := p.nextControl()
	assert.Equal(t, UnlinkIDAck{ID: 7, From: local, To: remote}, ack)
	assert.Equal(t, "unlink 77->1001", routed(t, core))
}

func TestConnTicks(t *testing.T) {
	t.Run("answers and sends ticks", func(t *testing.T) {
		c, p, _, _ := startConn(t, func(o *connOptions) { o.tickTime = 400 * time.Millisecond })
		stop := make(chan struct{})
		go func() { // a live peer ticks every 100 ms
			tk := time.NewTicker(100 * time.Millisecond)
			defer tk.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tk.C:
					p.conn.Write([]byte{0, 0, 0, 0})
				}
			}
		}()
		time.Sleep(time.Second)
		close(stop)
		assert.NoError(t, c.Err())
		st := c.Stats()
		assert.GreaterOrEqual(t, st.TicksIn, uint64(5))
		assert.GreaterOrEqual(t, st.TicksOut, st.TicksIn)
	})
	t.Run("drops a silent peer", func(t *testing.T) {
		c, _, _, served := startConn(t, func(o *connOptions) { o.tickTime = 400 * time.Millisecond })
		start := time.Now()
		select {
		case err := <-served:
			served <- err
		case <-time.After(2 * time.Second):
			t.Fatal("a silent peer was not dropped")
		}
		took := time.Since(start)
		assert.GreaterOrEqual(t, took, 350*time.Millisecond)
		assert.Less(t, took, 1500*time.Millisecond)
		var se *SilentPeerError
		require.ErrorAs(t, c.Err(), &se)
		assert.ErrorIs(t, c.Err(), ErrPeerSilent)
	})
}

func TestConnSendsInOrderIncludingRawTerms(t *testing.T) {
	c, p, _, _ := startConn(t)
	to := gen.ProcessID{Name: "pharos_brain", Node: "brain@h"}
	go func() {
		for i := 0; i < 100; i++ {
			var err error
			if i%2 == 0 {
				err = c.SendProcessID(local, to, gen.MessageOptions{}, int64(i))
			} else {
				raw, _ := etf.Marshal(int64(i))
				err = c.SendProcessID(local, to, gen.MessageOptions{}, RawTerm(raw))
			}
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := 0; i < 100; i++ {
		ctl, msg := p.nextControl()
		require.Equal(t, RegSend{From: local, To: "pharos_brain"}, ctl)
		v, err := etf.Unmarshal(msg)
		require.NoError(t, err)
		require.Equal(t, int64(i), v)
	}
	require.Error(t, c.SendProcessID(local, to, gen.MessageOptions{}, RawTerm{1, 2}), "raw terms start with 131")
	require.Error(t, c.SendProcessID(local, to, gen.MessageOptions{}, make(chan int)), "no term for a channel")
	require.NoError(t, c.SendBinary(context.Background(), local, "pharos_brain", []byte("abc")))
	_, msg := p.nextControl()
	v, err := etf.Unmarshal(msg)
	require.NoError(t, err)
	require.Equal(t, []byte("abc"), v)
}

func TestConnMonitorByName(t *testing.T) {
	c, p, core, _ := startConn(t)
	target := gen.ProcessID{Name: "pharos_brain", Node: "brain@h"}
	require.NoError(t, c.MonitorProcessID(local, target))
	ctl, _ := p.nextControl()
	mon := ctl.(MonitorP)
	assert.Equal(t, Proc{Name: "pharos_brain"}, mon.To)
	p.sendControl(MonitorPExit{From: mon.To, To: local, Ref: mon.Ref, Reason: appendAtom(nil, "killed")}, nil)
	assert.Equal(t, "down 'pharos_brain' kill", routed(t, core))

	// demonitor sends DEMONITOR_P with the same ref
	require.NoError(t, c.MonitorProcessID(local, target))
	ctl, _ = p.nextControl()
	mon = ctl.(MonitorP)
	require.NoError(t, c.DemonitorProcessID(local, target))
	ctl, _ = p.nextControl()
	assert.Equal(t, DemonitorP{From: local, To: mon.To, Ref: mon.Ref}, ctl)

	require.ErrorIs(t, c.LinkProcessID(local, target), ErrNoErlangEquivalent)
	_, err := c.MonitorEvent(local, gen.Event{})
	require.ErrorIs(t, err, gen.ErrUnsupported)
}

func TestConnCallGetsReply(t *testing.T) {
	c, p, core, _ := startConn(t)
	ref := gen.Ref{Node: "pharos@h", Creation: 1, ID: [3]uint64{55, 0, 0}}
	require.NoError(t, c.CallProcessID(local, gen.ProcessID{Name: "pharos_brain"}, gen.MessageOptions{Ref: ref}, gen.Atom("ping")))
	_, msg := p.nextControl()
	v, err := etf.NewDecoder(etf.Limits{}, etf.WithErgoTypes()).Unmarshal(msg)
	require.NoError(t, err)
	req := v.(etf.Tuple)
	require.Equal(t, gen.Atom("$gen_call"), req[0])
	from := req[1].(etf.Tuple)
	require.Equal(t, local, from[0])
	require.Equal(t, ref, from[1])
	reply, err := etf.Marshal(etf.Tuple{from[1], etf.Atom("pong")})
	require.NoError(t, err)
	p.sendControl(SendSender{From: remote, To: local}, reply)
	assert.Equal(t, "response 55", routed(t, core))
	assert.Equal(t, gen.Atom("pong"), <-core.values)
}

func TestConnBackpressureAndClose(t *testing.T) {
	c, p, _, _ := startConn(t, func(o *connOptions) { o.highWater = 64 })
	// the peer stops reading: senders block once 64 bytes are pending, and a closed connection
	// releases them with an error.
	p.conn.SetReadDeadline(time.Now().Add(-time.Second))
	errs := make(chan error, 1)
	go func() {
		for {
			if err := c.SendProcessID(local, gen.ProcessID{Name: "x"}, gen.MessageOptions{}, []byte("0123456789")); err != nil {
				errs <- err
				return
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-errs:
		t.Fatalf("sender did not block: %v", err)
	default:
	}
	c.Terminate(errors.New("test over"))
	select {
	case err := <-errs:
		require.ErrorIs(t, err, ErrConnectionClosed)
	case <-time.After(2 * time.Second):
		t.Fatal("blocked sender not released")
	}
}

// A peer that stops reading fills the buffer: a fast-path send gives up when its context ends,
// sending nothing, and the connection still ends on its own once the peer has been silent for
// the tick time, though the tick it would send cannot be written.
func TestConnSendGivesUpOnAFullBuffer(t *testing.T) {
	c, p, _, served := startConn(t, func(o *connOptions) {
		o.highWater = 64
		o.tickTime = 400 * time.Millisecond
	})
	assert.False(t, c.Congested())
	fillBuffer(t, c, p)
	assert.True(t, c.Congested(), "a send waits: the buffer holds its high-water mark")
	out := c.Stats().MessagesOut

	// A send without a deadline waits, and is released when the silent peer is dropped.
	released := make(chan error, 1)
	go func() { released <- c.SendBinary(context.Background(), local, "pharos_brain", []byte("0123456789")) }()
	requireDropped(t, c, served, released, ErrPeerSilent)
	assert.Equal(t, out, c.Stats().MessagesOut, "the refused sends were not counted as sent")
}

func TestConnRefusesFramesOverTheLimit(t *testing.T) {
	c, p, _, served := startConn(t, func(o *connOptions) { o.maxFrame = 1024 })
	p.send([]byte{0, 0, 0x10, 0}) // announces 4096 bytes
	select {
	case err := <-served:
		served <- err
		require.ErrorIs(t, err, ErrFrameTooLarge)
	case <-time.After(2 * time.Second):
		t.Fatal("an oversized frame was accepted")
	}
	require.ErrorIs(t, c.Err(), ErrFrameTooLarge)
	var tooLarge *FrameTooLargeError
	require.ErrorAs(t, c.Err(), &tooLarge)
	require.Equal(t, FrameTooLargeError{Size: 4096, Limit: 1024}, *tooLarge)
	require.Contains(t, c.Err().Error(), "4096")
}
