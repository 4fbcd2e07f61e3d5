package node

import (
	"testing"
	"time"

	"ergo.services/ergo/gen"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// exitCore is fakeCore with the exit routes.
type exitCore struct{ *fakeCore }

func (f exitCore) RouteSendExit(from, to gen.PID, reason error) error {
	f.record("exit %d->%d %v", from.ID, to.ID, reason)
	return nil
}

func (f exitCore) RouteTerminatePID(target gen.PID, reason error) error {
	f.record("terminate %d %v", target.ID, reason)
	return nil
}

func noneRouted(t *testing.T, core *fakeCore) {
	t.Helper()
	select {
	case s := <-core.routed:
		t.Fatalf("routed %q", s)
	case <-time.After(100 * time.Millisecond):
	}
}

// An EXIT for a link that does not exist is dropped, as Erlang drops it; a normal one for a
// link the peer made is a message, not an exit signal.
func TestConnExitNeedsALink(t *testing.T) {
	core := newFakeCore()
	_, p, _, _ := startConnWithCore(t, exitCore{core})
	p.sendControl(Exit{From: remote, To: local, Reason: appendAtom(nil, "shutdown")}, nil)
	noneRouted(t, core)

	p.sendControl(Link{From: remote, To: local}, nil)
	assert.Equal(t, "link 77->1001", routed(t, core))
	p.sendControl(Exit{From: remote, To: local, Reason: appendAtom(nil, "normal")}, nil)
	assert.Equal(t, "unlink 77->1001", routed(t, core))
	assert.Equal(t, "send 1001", routed(t, core))
	assert.Equal(t, gen.MessageExitPID{PID: remote, Reason: gen.TerminateReasonNormal}, <-core.values)

	p.sendControl(Link{From: remote, To: local}, nil)
	assert.Equal(t, "link 77->1001", routed(t, core))
	p.sendControl(Exit{From: remote, To: local, Reason: appendAtom(nil, "shutdown")}, nil)
	assert.Equal(t, "unlink 77->1001", routed(t, core))
	assert.Equal(t, "exit 77->1001 shutdown", routed(t, core))
}

// A link made by a local process holds both of its records in gen.Core (so that the local
// process's end reaches the peer); the peer's UNLINK_ID undoes both, and a later UnlinkPID
// sends nothing: the link is gone.
func TestConnLocalLinkIsSymmetric(t *testing.T) {
	c, p, core, _ := startConn(t)
	require.NoError(t, c.LinkPID(local, remote))
	assert.Equal(t, "link 77->1001", routed(t, core), "the remote process consumes the local one")
	ctl, _ := p.nextControl()
	assert.Equal(t, Link{From: local, To: remote}, ctl)

	p.sendControl(UnlinkID{ID: 9, From: remote, To: local}, nil)
	ack, _ := p.nextControl()
	assert.Equal(t, UnlinkIDAck{ID: 9, From: local, To: remote}, ack)
	got := []string{routed(t, core), routed(t, core)}
	assert.ElementsMatch(t, []string{"unlink 77->1001", "unlink 1001->77"}, got)

	require.NoError(t, c.UnlinkPID(local, remote))
	require.NoError(t, c.LinkPID(local, remote)) // the next frame is this LINK, not an UNLINK_ID
	routed(t, core)
	ctl, _ = p.nextControl()
	assert.Equal(t, Link{From: local, To: remote}, ctl)
}
