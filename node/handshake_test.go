package node

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"math/rand"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pharos-node/pharos-node/internal/erltest"
)

// faultConn is a net.Conn with fault hooks: it fails every write after writesLeft writes, or
// closes itself once that many writes went through.
type faultConn struct {
	net.Conn
	mu         sync.Mutex
	writesLeft int // -1: no fault
	closeOnly  bool
}

var errInjected = errors.New("injected write fault")

func (f *faultConn) Write(b []byte) (int, error) {
	f.mu.Lock()
	if f.writesLeft == 0 {
		f.mu.Unlock()
		if f.closeOnly {
			f.Conn.Close()
			return 0, io.ErrClosedPipe
		}
		return 0, errInjected
	}
	if f.writesLeft > 0 {
		f.writesLeft--
	}
	f.mu.Unlock()
	return f.Conn.Write(b)
}

func params(name, cookie string, seed int64) handshakeParams {
	return handshakeParams{
		name: name, creation: 42, flags: DefaultFlags, require: Mandatory, cookie: cookie,
		lenSize: 2, timeout: 2 * time.Second, rand: rand.New(rand.NewSource(seed)),
	}
}

type hsResult struct {
	peer peerInfo
	err  error
}

// runBoth runs dialHandshake on one end of a pipe and acceptHandshake on the other.
func runBoth(t *testing.T, a, b handshakeParams, wrapA, wrapB func(net.Conn) net.Conn) (hsResult, hsResult) {
	t.Helper()
	ca, cb := net.Pipe()
	var connA, connB net.Conn = ca, cb
	if wrapA != nil {
		connA = wrapA(ca)
	}
	if wrapB != nil {
		connB = wrapB(cb)
	}
	done := make(chan hsResult, 1)
	go func() {
		p, err := acceptHandshake(connB, b)
		if err != nil {
			cb.Close() // as dist_util does: a failed accept closes the socket
		}
		done <- hsResult{p, err}
	}()
	pa, errA := dialHandshake(connA, a)
	if errA != nil {
		ca.Close()
	}
	rb := <-done
	ca.Close()
	cb.Close()
	return hsResult{pa, errA}, rb
}

func TestHandshakeBothSides(t *testing.T) {
	a := params("pharos@127.0.0.1", "secret", 1)
	a.expect = "brain@127.0.0.1"
	b := params("brain@127.0.0.1", "secret", 2)
	ra, rb := runBoth(t, a, b, nil, nil)
	require.NoError(t, ra.err)
	require.NoError(t, rb.err)
	assert.Equal(t, "brain@127.0.0.1", ra.peer.name)
	assert.Equal(t, "pharos@127.0.0.1", rb.peer.name)
	assert.Equal(t, uint32(42), ra.peer.creation)
	assert.Equal(t, DefaultFlags, rb.peer.flags)
	assert.Zero(t, rb.peer.flags&FlagPublished, "hidden")
}

func TestHandshakeWrongCookie(t *testing.T) {
	ra, rb := runBoth(t, params("a@h", "one", 1), params("b@h", "two", 2), nil, nil)
	require.ErrorIs(t, ra.err, ErrWrongCookie)
	require.ErrorIs(t, rb.err, ErrWrongCookie)
	var he *HandshakeError
	require.ErrorAs(t, ra.err, &he)
	assert.Equal(t, PhaseRecvAck, he.Phase)
	require.ErrorAs(t, rb.err, &he)
	assert.Equal(t, PhaseRecvReply, he.Phase)
	assert.NotContains(t, ra.err.Error(), "one")
	assert.NotContains(t, rb.err.Error(), "two")
}

func TestHandshakeFlagRefusal(t *testing.T) {
	// the acceptor requires a flag the dialler does not announce: it answers not_allowed
	b := params("b@h", "c", 2)
	b.require = Mandatory | FlagDistMonitor
	a := params("a@h", "c", 1)
	a.flags = DefaultFlags &^ FlagDistMonitor
	ra, rb := runBoth(t, a, b, nil, nil)
	require.ErrorIs(t, ra.err, ErrNotAllowed)
	var fe *FlagError
	require.ErrorAs(t, ra.err, &fe)
	assert.True(t, fe.ByPeer)
	require.ErrorAs(t, rb.err, &fe)
	assert.Equal(t, FlagDistMonitor, fe.Missing)
	assert.Contains(t, rb.err.Error(), "DIST_MONITOR")

	// the peer lacks a flag we require: the dialler names it
	a = params("a@h", "c", 1)
	a.require = Mandatory | FlagAlias
	b = params("b@h", "c", 2)
	b.flags = DefaultFlags &^ FlagAlias
	ra, _ = runBoth(t, a, b, nil, nil)
	require.ErrorAs(t, ra.err, &fe)
	assert.Equal(t, FlagAlias, fe.Missing)
	assert.Contains(t, ra.err.Error(), "ALIAS")
}

func TestHandshakeRefusesPublished(t *testing.T) {
	a := params("a@h", "c", 1)
	a.flags |= FlagPublished
	_, err := dialHandshake(nil, a)
	require.Error(t, err)
	a.flags = DefaultFlags | FlagFragments
	_, err = dialHandshake(nil, a)
	require.Error(t, err)
	_, err = NewHandshake(HandshakeOptions{Flags: DefaultFlags | FlagPublished})
	require.Error(t, err)
}

func TestHandshakeOverTLSUsesFourByteFrames(t *testing.T) {
	a, b := params("a@h", "c", 1), params("b@h", "c", 2)
	a.lenSize, b.lenSize = 4, 4
	ra, rb := runBoth(t, a, b, nil, nil)
	require.NoError(t, ra.err)
	require.NoError(t, rb.err)
	// a 2-byte peer against a 4-byte one fails, without hanging
	a.lenSize = 2
	ra, rb = runBoth(t, a, b, nil, nil)
	require.Error(t, ra.err)
	require.Error(t, rb.err)
}

func TestHandshakeWriteFaultsAtEveryStep(t *testing.T) {
	for writes := 0; writes < 4; writes++ {
		for _, side := range []string{"dialler", "acceptor"} {
			for _, closeOnly := range []bool{false, true} {
				wrap := func(c net.Conn) net.Conn { return &faultConn{Conn: c, writesLeft: writes, closeOnly: closeOnly} }
				var ra, rb hsResult
				if side == "dialler" {
					ra, rb = runBoth(t, params("a@h", "c", 1), params("b@h", "c", 2), wrap, nil)
				} else {
					ra, rb = runBoth(t, params("a@h", "c", 1), params("b@h", "c", 2), nil, wrap)
				}
				if ra.err == nil && rb.err == nil {
					// the dialler writes 2 messages, the acceptor 3: later faults never fire
					continue
				}
				require.Error(t, ra.err, "writes=%d side=%s", writes, side)
				var he *HandshakeError
				require.ErrorAs(t, ra.err, &he)
			}
		}
	}
}

func TestHandshakeSilentPeerTimesOut(t *testing.T) {
	ca, cb := net.Pipe()
	defer ca.Close()
	defer cb.Close()
	go io.Copy(io.Discard, cb) // reads, never answers
	a := params("a@h", "c", 1)
	a.timeout = 100 * time.Millisecond
	start := time.Now()
	_, err := dialHandshake(ca, a)
	require.Error(t, err)
	require.Less(t, time.Since(start), 2*time.Second)
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout())
}

// scripted plays the acceptor's side from fixed frames.
func scripted(t *testing.T, frames ...[]byte) net.Conn {
	t.Helper()
	ca, cb := net.Pipe()
	t.Cleanup(func() { ca.Close(); cb.Close() })
	go func() {
		if _, err := readHandshakeFrame(cb, 2, 1<<16); err != nil {
			return
		}
		for _, f := range frames {
			if err := writeHandshakeFrame(cb, 2, f); err != nil {
				return
			}
		}
		io.Copy(io.Discard, cb)
	}()
	return ca
}

func TestHandshakeStatusAnswers(t *testing.T) {
	for status, want := range map[string]error{
		"nok":         ErrSimultaneousConnect,
		"not_allowed": ErrNotAllowed,
		"bogus":       ErrUnexpectedMessage,
	} {
		_, err := dialHandshake(scripted(t, []byte("s"+status)), params("a@h", "c", 1))
		require.ErrorIs(t, err, want, status)
	}
	_, err := dialHandshake(scripted(t, []byte("x")), params("a@h", "c", 1))
	var he *HandshakeError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, byte('x'), he.Tag)
	assert.Equal(t, PhaseRecvStatus, he.Phase)
}

func TestHandshakeAcceptsOldNameMessageWithComplement(t *testing.T) {
	ca, cb := net.Pipe()
	defer ca.Close()
	defer cb.Close()
	b := params("b@h", "c", 2)
	done := make(chan hsResult, 1)
	go func() { p, err := acceptHandshake(cb, b); done <- hsResult{p, err} }()

	low := uint32(DefaultFlags & 0xffffffff)
	msg := []byte{'n', 0, 5, byte(low >> 24), byte(low >> 16), byte(low >> 8), byte(low)}
	msg = append(msg, "a@h"...)
	require.NoError(t, writeHandshakeFrame(ca, 2, msg))
	st, err := readHandshakeFrame(ca, 2, 1<<16)
	require.NoError(t, err)
	require.Equal(t, "sok", string(st))
	ch, err := readHandshakeFrame(ca, 2, 1<<16)
	require.NoError(t, err)
	require.Equal(t, byte('N'), ch[0])
	challenge := uint32(ch[9])<<24 | uint32(ch[10])<<16 | uint32(ch[11])<<8 | uint32(ch[12])
	high := uint32(DefaultFlags >> 32)
	require.NoError(t, writeHandshakeFrame(ca, 2, []byte{'c', byte(high >> 24), byte(high >> 16), byte(high >> 8), byte(high), 0, 0, 0, 7}))
	sum := digest("c", challenge)
	require.NoError(t, writeHandshakeFrame(ca, 2, append([]byte{'r', 0, 0, 0, 1}, sum[:]...)))
	ack, err := readHandshakeFrame(ca, 2, 1<<16)
	require.NoError(t, err)
	want := digest("c", 1)
	require.True(t, bytes.Equal(append([]byte{'a'}, want[:]...), ack))
	r := <-done
	require.NoError(t, r.err)
	assert.Equal(t, DefaultFlags, r.peer.flags)
	assert.Equal(t, uint32(7), r.peer.creation)
}

func TestDigestMatchesErlang(t *testing.T) {
	rel := erltest.FromEnv(t)
	got := rel.Eval(t, `io:format("~s", [binary:encode_hex(erlang:md5("cookie" ++ integer_to_list(4123456789)))])`)
	sum := digest("cookie", 4123456789)
	assert.Equal(t, strings.ToUpper(hex.EncodeToString(sum[:])), got)
}

func TestFlagsString(t *testing.T) {
	assert.Equal(t, "DIST_MONITOR|UNLINK_ID|bit40", (FlagDistMonitor | FlagUnlinkID | 1<<40).String())
	assert.Equal(t, "none", Flags(0).String())
	assert.Zero(t, DefaultFlags&unsupported)
	assert.Zero(t, DefaultFlags.Missing(Mandatory))
	assert.Equal(t, FlagV4NC|FlagUnlinkID, (Mandatory25 | FlagMandatory25Digest).Missing(Mandatory))
	assert.Zero(t, FlagMandatory25Digest.Missing(Mandatory25), "the digest flag stands for the OTP 25 set")
}
