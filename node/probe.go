package node

// Probe: does a registered process exist on the peer, and how long is a round trip?
//
// Two control messages go out back to back from the node's core pid:
//
//	MONITOR_P   {19, Core, Name, Ref1}                       monitor the name
//	REG_SEND    net_kernel ! {'$gen_call', {Core, Ref2}, {is_auth, Self}}
//
// The peer handles them in order. If Name is not registered, its runtime answers the monitor at
// once with MONITOR_P_EXIT noproc, before net_kernel even sees the request; net_kernel's reply
// {Ref2, yes} therefore proves both that the connection works end to end and that Name existed.
// The monitor is then removed with DEMONITOR_P.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"ergo.services/ergo/gen"

	"github.com/pharos-node/pharos-node/etf"
)

// ErrNoSuchProcess: no process is registered under the name on the peer.
var ErrNoSuchProcess = errors.New("node: no process registered under that name")

// ProbeError reports a failed probe.
type ProbeError struct {
	Peer gen.Atom
	Name gen.Atom
	Err  error
}

func (e *ProbeError) Error() string {
	return fmt.Sprintf("probe %s on %s: %v", e.Name, e.Peer, e.Err)
}

func (e *ProbeError) Unwrap() error { return e.Err }

type waiter chan error

// Probe checks that a process is registered as name on the peer and returns the round trip.
// Everything sent before a successful Probe has been received by the peer node.
func (c *Conn) Probe(ctx context.Context, name gen.Atom) (time.Duration, error) {
	fail := func(err error) (time.Duration, error) {
		return 0, &ProbeError{Peer: c.Peer(), Name: name, Err: err}
	}
	from := c.core.PID()
	monRef, callRef := c.core.MakeRef(), c.core.MakeRef()
	monitorDone, callDone := make(waiter, 1), make(waiter, 1)
	target := Proc{Name: name}

	c.stateMu.Lock()
	c.monitorsOut[monRef] = outMonitor{local: from, target: target, notify: monitorDone}
	c.waiters[callRef] = callDone
	c.stateMu.Unlock()
	defer func() {
		c.stateMu.Lock()
		_, monitorLive := c.monitorsOut[monRef]
		delete(c.monitorsOut, monRef)
		delete(c.waiters, callRef)
		c.stateMu.Unlock()
		if monitorLive {
			// without waiting: ctx may be over, and a lingering monitor costs the peer little
			c.sendControlNow(DemonitorP{From: from, To: target, Ref: monRef}, nil, false)
		}
	}()

	start := c.opts.now()
	if err := c.sendControl(ctx, MonitorP{From: from, To: target, Ref: monRef}, nil, false); err != nil {
		return fail(err)
	}
	request := RawTerm(append([]byte{etf.TagVersion}, appendAtom(appendTupleHeader(nil, 2), "is_auth")...))
	request = append(request, appendAtom(nil, string(c.self))...)
	if err := c.enqueue(ctx, func(dst []byte) ([]byte, error) {
		dst, fs := beginFrame(dst)
		dst = RegSend{From: from, To: "net_kernel"}.appendTerm(dst)
		dst, err := c.appendGenCall(dst, genCallTerm{from: from, ref: callRef, message: request})
		if err != nil {
			return dst, err
		}
		return finishFrame(dst, fs), nil
	}); err != nil {
		return fail(err)
	}
	select {
	case err := <-monitorDone:
		if errors.Is(err, gen.ErrProcessUnknown) {
			return fail(ErrNoSuchProcess)
		}
		return fail(fmt.Errorf("the process ended: %w", err))
	case <-callDone:
		// MONITOR_P_EXIT noproc would have come first: the name is registered.
		select {
		case err := <-monitorDone:
			if errors.Is(err, gen.ErrProcessUnknown) {
				return fail(ErrNoSuchProcess)
			}
		default:
		}
		return c.opts.now().Sub(start), nil
	case <-c.done:
		return fail(c.Err())
	case <-ctx.Done():
		return fail(ctx.Err())
	}
}
