package node

// The gen.Connection methods of Conn: how each Ergo request becomes Erlang control messages.
//
//	Ergo                          Erlang
//	SendPID                       SEND_SENDER (SEND if the peer lacks FlagSendSender)
//	SendProcessID                 REG_SEND
//	SendAlias                     ALIAS_SEND
//	SendExit                      EXIT2
//	CallPID/ProcessID/Alias       the same sends with {'$gen_call', {From, Ref}, Request};
//	                              the {Ref, Reply} answer completes the call
//	LinkPID / UnlinkPID           LINK / UNLINK_ID (answered by UNLINK_ID_ACK)
//	MonitorPID / MonitorProcessID MONITOR_P by pid / by registered name; MONITOR_P_EXIT fires it
//	DemonitorPID / ProcessID      DEMONITOR_P
//	SendTerminatePID/ProcessID    EXIT to linked and MONITOR_P_EXIT to monitoring peer processes
//	events, aliases as link or monitor targets, remote spawn, proxies: ErrNoErlangEquivalent

import (
	"context"
	"net"

	"ergo.services/ergo/gen"
)

var _ gen.Connection = (*Conn)(nil)

// Node returns the peer as an Ergo remote node.
func (c *Conn) Node() gen.RemoteNode { return c.remote }

// SendPID sends message to the process to on the peer.
func (c *Conn) SendPID(from gen.PID, to gen.PID, _ gen.MessageOptions, message any) error {
	return c.sendControl(context.Background(), c.sendToPID(from, to), message, true)
}

// SendProcessID sends message to the process registered as to.Name on the peer.
func (c *Conn) SendProcessID(from gen.PID, to gen.ProcessID, _ gen.MessageOptions, message any) error {
	return c.sendControl(context.Background(), RegSend{From: from, To: to.Name}, message, true)
}

// SendAlias sends message to a process alias on the peer.
func (c *Conn) SendAlias(from gen.PID, to gen.Alias, _ gen.MessageOptions, message any) error {
	if c.peer.flags&FlagAlias == 0 {
		return ErrNoErlangEquivalent
	}
	return c.sendControl(context.Background(), AliasSend{From: from, Alias: gen.Ref(to)}, message, true)
}

// SendEvent: Erlang has no Ergo events.
func (c *Conn) SendEvent(gen.PID, gen.MessageOptions, gen.MessageEvent) error {
	return ErrNoErlangEquivalent
}

// SendExit sends an exit signal (erlang:exit/2) to a peer process.
func (c *Conn) SendExit(from gen.PID, to gen.PID, reason error) error {
	return c.sendControl(context.Background(), Exit2{From: from, To: to, Reason: encodeReason(reason)}, nil, false)
}

// SendResponse answers an Erlang process that called an Ergo process; the message is sent to
// the caller's pid as a plain message (Erlang callers match the reply themselves).
func (c *Conn) SendResponse(from gen.PID, to gen.PID, options gen.MessageOptions, response any) error {
	return c.SendPID(from, to, options, response)
}

// SendResponseError sends the error text to the caller's pid.
func (c *Conn) SendResponseError(from gen.PID, to gen.PID, options gen.MessageOptions, err error) error {
	return c.SendPID(from, to, options, err.Error())
}

// SendTerminatePID reports the end of the local process target to every peer process linked
// to or monitoring it.
func (c *Conn) SendTerminatePID(target gen.PID, reason error) error {
	raw := encodeReason(reason)
	var ctls []Control
	c.stateMu.Lock()
	for k := range c.links {
		if k.local == target {
			ctls = append(ctls, Exit{From: target, To: k.remote, Reason: raw})
			delete(c.links, k)
		}
	}
	for ref, mon := range c.monitorsIn {
		if mon.target.Name == "" && mon.target.PID == target {
			ctls = append(ctls, MonitorPExit{From: mon.target, To: mon.remote, Ref: ref, Reason: raw})
			delete(c.monitorsIn, ref)
		}
	}
	c.stateMu.Unlock()
	return c.sendAll(ctls)
}

// SendTerminateProcessID reports the end of the local process registered as target.Name to
// every peer process monitoring that name.
func (c *Conn) SendTerminateProcessID(target gen.ProcessID, reason error) error {
	raw := encodeReason(reason)
	var ctls []Control
	c.stateMu.Lock()
	for ref, mon := range c.monitorsIn {
		if mon.target.Name == target.Name {
			ctls = append(ctls, MonitorPExit{From: mon.target, To: mon.remote, Ref: ref, Reason: raw})
			delete(c.monitorsIn, ref)
		}
	}
	c.stateMu.Unlock()
	return c.sendAll(ctls)
}

func (c *Conn) sendAll(ctls []Control) error {
	var first error
	for _, ctl := range ctls {
		if err := c.sendControl(context.Background(), ctl, nil, false); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// SendTerminateAlias: peers cannot link to or monitor Ergo aliases; nothing to report.
func (c *Conn) SendTerminateAlias(gen.Alias, error) error { return nil }

// SendTerminateEvent: Erlang has no Ergo events; nothing to report.
func (c *Conn) SendTerminateEvent(gen.Event, error) error { return nil }

// CallPID sends {'$gen_call', {From, Ref}, Message} to a peer pid (a gen_server:call); the
// {Ref, Reply} answer is routed back to the caller as the call's result.
func (c *Conn) CallPID(from gen.PID, to gen.PID, options gen.MessageOptions, message any) error {
	return c.sendCall(c.sendToPID(from, to), from, options.Ref, message)
}

// CallProcessID makes a gen_server:call to a registered peer process.
func (c *Conn) CallProcessID(from gen.PID, to gen.ProcessID, options gen.MessageOptions, message any) error {
	return c.sendCall(RegSend{From: from, To: to.Name}, from, options.Ref, message)
}

// CallAlias makes a gen_server:call through a peer alias.
func (c *Conn) CallAlias(from gen.PID, to gen.Alias, options gen.MessageOptions, message any) error {
	if c.peer.flags&FlagAlias == 0 {
		return ErrNoErlangEquivalent
	}
	return c.sendCall(AliasSend{From: from, Alias: gen.Ref(to)}, from, options.Ref, message)
}

// LinkPID links the local process pid with the peer process target. Ergo records pid as a
// consumer of target itself; the other direction is recorded here, so that the end of pid
// reaches target as EXIT, as in Erlang.
func (c *Conn) LinkPID(pid gen.PID, target gen.PID) error {
	k := linkKey{local: pid, remote: target}
	c.stateMu.Lock()
	records := c.links[k]
	c.links[k] |= localOnRemote | remoteOnLocal
	c.stateMu.Unlock()
	if records&remoteOnLocal == 0 {
		if err := c.core.RouteLinkPID(target, pid); err != nil {
			c.log.Debug("node: link %s with %s: %v", pid, target, err)
		}
	}
	return c.sendControl(context.Background(), Link{From: pid, To: target}, nil, false)
}

// UnlinkPID removes the link, made by either side (UNLINK_ID; the peer answers UNLINK_ID_ACK).
// A link the peer already ended (EXIT, UNLINK_ID) is gone: nothing is sent.
func (c *Conn) UnlinkPID(pid gen.PID, target gen.PID) error {
	k := linkKey{local: pid, remote: target}
	c.stateMu.Lock()
	records := c.links[k]
	delete(c.links, k)
	c.unlinkID++
	id := c.unlinkID
	c.stateMu.Unlock()
	if records == 0 {
		return nil
	}
	if records&remoteOnLocal != 0 {
		c.core.RouteUnlinkPID(target, pid)
	}
	return c.sendControl(context.Background(), UnlinkID{ID: id, From: pid, To: target}, nil, false)
}

// LinkProcessID: Erlang links only to pids.
func (c *Conn) LinkProcessID(gen.PID, gen.ProcessID) error { return ErrNoErlangEquivalent }

// UnlinkProcessID: Erlang links only to pids.
func (c *Conn) UnlinkProcessID(gen.PID, gen.ProcessID) error { return ErrNoErlangEquivalent }

// LinkAlias: Erlang links only to pids.
func (c *Conn) LinkAlias(gen.PID, gen.Alias) error { return ErrNoErlangEquivalent }

// UnlinkAlias: Erlang links only to pids.
func (c *Conn) UnlinkAlias(gen.PID, gen.Alias) error { return ErrNoErlangEquivalent }

// LinkEvent: Erlang has no Ergo events.
func (c *Conn) LinkEvent(gen.PID, gen.Event) ([]gen.MessageEvent, error) {
	return nil, ErrNoErlangEquivalent
}

// UnlinkEvent: Erlang has no Ergo events.
func (c *Conn) UnlinkEvent(gen.PID, gen.Event) error { return ErrNoErlangEquivalent }

func (c *Conn) monitor(pid gen.PID, target Proc) error {
	if target.Name != "" && c.peer.flags&FlagDistMonitorName == 0 ||
		target.Name == "" && c.peer.flags&FlagDistMonitor == 0 {
		return ErrNoErlangEquivalent
	}
	ref := c.core.MakeRef()
	c.stateMu.Lock()
	c.monitorsOut[ref] = outMonitor{local: pid, target: target}
	c.stateMu.Unlock()
	if err := c.sendControl(context.Background(), MonitorP{From: pid, To: target, Ref: ref}, nil, false); err != nil {
		c.stateMu.Lock()
		delete(c.monitorsOut, ref)
		c.stateMu.Unlock()
		return err
	}
	return nil
}

func (c *Conn) demonitor(pid gen.PID, target Proc) error {
	var ctls []Control
	c.stateMu.Lock()
	for ref, mon := range c.monitorsOut {
		if mon.local == pid && mon.target == target {
			ctls = append(ctls, DemonitorP{From: pid, To: target, Ref: ref})
			delete(c.monitorsOut, ref)
		}
	}
	c.stateMu.Unlock()
	return c.sendAll(ctls)
}

// MonitorPID monitors a peer process by pid.
func (c *Conn) MonitorPID(pid gen.PID, target gen.PID) error {
	return c.monitor(pid, Proc{PID: target})
}

// DemonitorPID removes the monitors pid holds on target.
func (c *Conn) DemonitorPID(pid gen.PID, target gen.PID) error {
	return c.demonitor(pid, Proc{PID: target})
}

// MonitorProcessID monitors a peer process by registered name: the down message comes when that
// process ends, or when the node goes away.
func (c *Conn) MonitorProcessID(pid gen.PID, target gen.ProcessID) error {
	return c.monitor(pid, Proc{Name: target.Name})
}

// DemonitorProcessID removes the monitors pid holds on a registered name.
func (c *Conn) DemonitorProcessID(pid gen.PID, target gen.ProcessID) error {
	return c.demonitor(pid, Proc{Name: target.Name})
}

// MonitorAlias: Erlang monitors only processes.
func (c *Conn) MonitorAlias(gen.PID, gen.Alias) error { return ErrNoErlangEquivalent }

// DemonitorAlias: Erlang monitors only processes.
func (c *Conn) DemonitorAlias(gen.PID, gen.Alias) error { return ErrNoErlangEquivalent }

// MonitorEvent: Erlang has no Ergo events.
func (c *Conn) MonitorEvent(gen.PID, gen.Event) ([]gen.MessageEvent, error) {
	return nil, ErrNoErlangEquivalent
}

// DemonitorEvent: Erlang has no Ergo events.
func (c *Conn) DemonitorEvent(gen.PID, gen.Event) error { return ErrNoErlangEquivalent }

// RemoteSpawn: an Erlang node cannot start an Ergo behaviour.
func (c *Conn) RemoteSpawn(gen.Atom, gen.ProcessOptionsExtra) (gen.PID, error) {
	return gen.PID{}, ErrNoErlangEquivalent
}

// Join is called by Ergo with the socket the handshake ran on. The Conn already holds it (or
// the TLS session over it); a second socket for the same peer is refused.
func (c *Conn) Join(conn net.Conn, _ string, _ gen.NetworkDial, tail []byte) error {
	if len(tail) > 0 {
		return ErrNoErlangEquivalent
	}
	if conn != c.net && conn != c.rawNet {
		return ErrNoErlangEquivalent
	}
	return nil
}

// Terminate ends the connection.
func (c *Conn) Terminate(reason error) {
	c.shutdown(reason)
}
